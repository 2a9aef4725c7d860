use std::process::ExitCode;

fn main() -> ExitCode {
    let args = kpipe_core::cli::parse::<certwait::Args>();
    kpipe_core::run_async("certwait", certwait::run(args))
}
