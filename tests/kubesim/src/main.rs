fn main() -> std::process::ExitCode {
    kpipe_core::run("kubesim", || Err(kpipe_core::Error::runtime("not implemented yet")))
}
