//! kubesim: the Kubernetes API simulator (`kubesim serve`).
use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = kubesim::Args::parse();
    kpipe_core::run_async("kubesim", kubesim::run(args))
}
