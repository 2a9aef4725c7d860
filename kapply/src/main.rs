use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = kapply::Args::parse();
    kpipe_core::run_async("kapply", kapply::run(args))
}
