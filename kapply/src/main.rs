use clap::Parser;

/// Not built yet.
#[derive(Parser)]
#[command(name = "kapply", version)]
struct Args {}

fn main() -> std::process::ExitCode {
    let _ = Args::parse();
    kpipe_core::run("kapply", || Err(kpipe_core::Error::runtime("not implemented yet")))
}
