//! Generates the CRI's prost messages and tonic services from `proto/api.proto` at build time.
//! `protox` parses the proto in Rust, so the build needs no `protoc`. The tonic client and
//! server stubs only with the `server` feature; without it, the messages alone.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    let descriptors = protox::compile(["proto/api.proto"], ["proto"])?;
    let server = std::env::var_os("CARGO_FEATURE_SERVER").is_some();
    tonic_prost_build::configure()
        .build_client(server)
        .build_server(server)
        .compile_fds(descriptors)?;
    Ok(())
}
