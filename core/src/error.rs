//! Errors as values, and the one place that maps them to messages and exit codes.
//!
//! Every tool's `main` is `kpipe_core::run("tool", || lib::run(args))`: the library
//! returns an [`Error`], this module prints `tool: message` on stderr and exits with
//! the code the contract gives (2 bad input or usage, 1 runtime failure, 124 timeout,
//! 130/143 stopped by SIGINT/SIGTERM).
//! A closed pipe on stdout (`| head`) ends the tool quietly (141); a closed stdout
//! (`>&-`) is a write error (1).

use std::fmt;
use std::io;
use std::process::ExitCode;

/// Exit codes shared by every kpipe tool.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A runtime failure: the API server said no, a certificate failed, I/O broke.
    pub const FAILURE: u8 = 1;
    /// Bad input or usage: nothing was done.
    pub const BAD_INPUT: u8 = 2;
    /// Gave up waiting, as timeout(1) does.
    pub const TIMEOUT: u8 = 124;
    /// Downstream closed the pipe: the conventional 128 + SIGPIPE.
    pub const BROKEN_PIPE: u8 = 141;
}

/// What went wrong, and therefore how the tool exits.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input (file, stream, flag value) is wrong; nothing was written or applied.
    #[error("{0}")]
    Input(String),
    /// Something failed at run time (API, network, I/O other than a closed pipe).
    #[error("{0}")]
    Runtime(String),
    /// A wait ran out of time; the message is the diagnosis.
    #[error("{0}")]
    Timeout(String),
    /// Several objects failed; each was already reported, this is the summary.
    #[error("{0}")]
    Summary(String),
    /// Downstream closed its end of the pipe: exit quietly.
    #[error("broken pipe")]
    BrokenPipe,
    /// Stopped by SIGINT/SIGTERM; the message says what was not done.
    #[error("{1}")]
    Interrupted(Signal, String),
}

/// Which signal asked the tool to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// 128 + the signal's number, as the shell reports it.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

impl Error {
    /// Bad input at a place in a file: `FILE:LINE: what`.
    pub fn at(source: &str, line: usize, what: impl fmt::Display) -> Self {
        Error::Input(format!("{source}:{line}: {what}"))
    }

    pub fn input(what: impl fmt::Display) -> Self {
        Error::Input(what.to_string())
    }

    pub fn runtime(what: impl fmt::Display) -> Self {
        Error::Runtime(what.to_string())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) => exit::BAD_INPUT,
            Error::Runtime(_) | Error::Summary(_) => exit::FAILURE,
            Error::Timeout(_) => exit::TIMEOUT,
            Error::BrokenPipe => exit::BROKEN_PIPE,
            Error::Interrupted(signal, _) => signal.exit_code(),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Error::BrokenPipe
        } else {
            Error::Runtime(e.to_string())
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs a tool's body and turns its result into an exit code, printing
/// `tool: message` on stderr for any error but a closed pipe.
pub fn run(tool: &str, body: impl FnOnce() -> Result<()>) -> ExitCode {
    crate::redact::install_panic_hook();
    match body() {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => report(tool, e),
    }
}

/// Like [`run`] for tools that talk to the API server: builds the tokio runtime.
#[cfg(feature = "cluster")]
pub fn run_async<F>(tool: &str, body: F) -> ExitCode
where
    F: std::future::Future<Output = Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(tool, Error::runtime(format!("cannot start runtime: {e}"))),
    };
    run(tool, || {
        runtime.block_on(body).map_err(crate::transport::explain)
    })
}

/// Prints `tool: what` on stderr, for a library warning that does not know which tool
/// runs it: the name is the program's, as the user typed it.
pub fn warn(what: &str) {
    let tool = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "kpipe".into());
    crate::redact::eprint(&format!("{tool}: {what}\n"));
}

/// A serde message about input that did not fit its type, without the input's value:
/// serde quotes what it found (`invalid type: string "...", expected a sequence`,
/// `unknown variant `...``), and any input scalar may be a secret. Kept: what kind of
/// value was found and what was expected; field names (`missing field `spec``), which
/// are keys of the schema, not values.
pub fn serde_without_values(message: &str) -> String {
    let names_a_field = ["missing field", "unknown field", "duplicate field"]
        .iter()
        .any(|p| message.starts_with(p));
    let Some(quoted) = message.find(['"', '`', '\'']).filter(|_| !names_a_field) else {
        return message.to_owned();
    };
    let found = message[..quoted].trim_end();
    match message[quoted..].find(", expected ") {
        Some(at) => format!("{found}{}", &message[quoted + at..]),
        None => found.to_owned(),
    }
}

fn report(tool: &str, e: Error) -> ExitCode {
    let code = e.exit_code();
    if !matches!(e, Error::BrokenPipe) {
        // Every line of bad input carries the tool's name (a file may have several).
        let text: String = match &e {
            Error::Input(message) => message
                .lines()
                .map(|line| format!("{tool}: {line}\n"))
                .collect(),
            _ => format!("{tool}: {e}\n"),
        };
        crate::redact::eprint(&text);
    }
    ExitCode::from(code)
}

/// Writes a whole output at once, so that bad input found late never leaves half a
/// stream on stdout, and maps a closed pipe to [`Error::BrokenPipe`]. On a terminal,
/// known secret values are masked unless the user asked to see them.
pub fn write_stdout(text: &str) -> Result<()> {
    use io::Write;
    if stdout_was_closed() {
        return Err(Error::runtime(
            "cannot write the output: standard output is closed",
        ));
    }
    let text = crate::redact::for_stdout(text);
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Whether the tool was started with standard output closed (`>&-`): then fd 1 is
/// `/dev/null` opened read-only (csrc/closed_stdout.c), where a write fails, while
/// std's `Stdout` takes a failed write on a bad descriptor for success.
fn stdout_was_closed() -> bool {
    use io::Write;
    use std::os::fd::AsFd;
    io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_or(true, |fd| std::fs::File::from(fd).write(&[]).is_err())
}

#[cfg(test)]
mod tests {

    #[test]
    fn serde_messages_lose_the_values_they_quote() {
        let cases = [
            (
                "invalid type: string \"s3cr\\\"et\", expected a sequence",
                "invalid type: string, expected a sequence",
            ),
            (
                "invalid value: integer `7060754`, expected u16",
                "invalid value: integer, expected u16",
            ),
            (
                "unknown variant `s3cret`, expected `Prefix` or `Exact`",
                "unknown variant, expected `Prefix` or `Exact`",
            ),
            (
                "invalid type: map, expected a string",
                "invalid type: map, expected a string",
            ),
            ("missing field `spec`", "missing field `spec`"),
            ("failed to parse 's3cret' as a date", "failed to parse"),
        ];
        for (serde, shown) in cases {
            assert_eq!(serde_without_values(serde), shown);
        }
    }
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Error::input("x").exit_code(), 2);
        assert_eq!(Error::runtime("x").exit_code(), 1);
        assert_eq!(Error::Timeout("x".into()).exit_code(), 124);
        let pipe: Error = io::Error::from(io::ErrorKind::BrokenPipe).into();
        assert!(matches!(pipe, Error::BrokenPipe));
    }

    #[test]
    fn located_input_error_reads_file_line_what() {
        assert_eq!(
            Error::at("env", 3, "missing '='").to_string(),
            "env:3: missing '='"
        );
    }
}
