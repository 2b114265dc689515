//! Compiles the wire types with protox (a pure-Rust protobuf compiler), so no
//! system `protoc` is needed to build primacy.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["primacy/journal.proto"], ["proto"])?;
    prost_build::Config::new().bytes(["."]).compile_fds(fds)?;
    Ok(())
}
