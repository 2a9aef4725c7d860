use clap::Parser;
use manifest_gen::Args;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Args::parse();
    kpipe_core::run("manifest-gen", || manifest_gen::run(args))
}
