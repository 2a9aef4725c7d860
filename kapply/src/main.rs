use std::process::ExitCode;

fn main() -> ExitCode {
    let args = kpipe_core::cli::parse::<kapply::Args>();
    kpipe_core::run_async("kapply", kapply::run(args))
}
