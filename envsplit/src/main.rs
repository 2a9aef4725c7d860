use std::process::ExitCode;

fn main() -> ExitCode {
    let args = kpipe_core::cli::parse::<envsplit::Args>();
    kpipe_core::run("envsplit", || envsplit::run(args))
}
