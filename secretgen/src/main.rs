use clap::Parser;

/// Not built yet.
#[derive(Parser)]
#[command(name = "secretgen", version)]
struct Args {}

fn main() -> std::process::ExitCode {
    let _ = Args::parse();
    kpipe_core::run("secretgen", || Err(kpipe_core::Error::runtime("not implemented yet")))
}
