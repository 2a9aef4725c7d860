use std::process::ExitCode;

fn main() -> ExitCode {
    let args = kpipe_core::cli::parse::<manifest_gen::Args>();
    kpipe_core::run("manifest-gen", || manifest_gen::run(args))
}
