use std::process::ExitCode;

fn main() -> ExitCode {
    let args = kpipe_core::cli::parse::<secretgen::Args>();
    kpipe_core::run("secretgen", || secretgen::run(args))
}
