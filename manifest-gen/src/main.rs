use clap::Parser;

/// Not built yet.
#[derive(Parser)]
#[command(name = "manifest-gen", version)]
struct Args {}

fn main() -> std::process::ExitCode {
    let _ = Args::parse();
    kpipe_core::run("manifest-gen", || Err(kpipe_core::Error::runtime("not implemented yet")))
}
