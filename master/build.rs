//! Compiles the master's wire types and gRPC services with protox (a
//! pure-Rust protobuf compiler), as journal-core does, so no system `protoc`
//! is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["primacy/meta.proto", "primacy/rpc.proto"], ["proto"])?;
    // Decode failures of a request are INVALID_ARGUMENT, not INTERNAL
    // (master/src/proto/codec.rs).
    tonic_prost_build::configure()
        .bytes(".")
        .codec_path("crate::proto::codec::Codec")
        .compile_fds(fds)?;
    Ok(())
}
