fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/raftpeer.proto");
    println!("cargo:rerun-if-changed=proto/format.proto");
    let fds = protox::compile(["proto/raftpeer.proto", "proto/format.proto"], ["proto"])?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
