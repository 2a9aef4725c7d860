//! Command-line plumbing every tool shares: parsing, and generating shell completions
//! and man pages from the same clap definitions (`TOOL --completions SHELL`,
//! `TOOL --man`; used by `make completions`, `make man` and `make install`).

use crate::error::{Error, Result};
use clap::{CommandFactory, Parser};
use std::ffi::OsString;
use std::io::Write;

/// Parses the tool's arguments. `TOOL --completions bash|zsh|fish` and `TOOL --man`
/// instead print a completion script or man page to stdout and exit: handled before
/// normal parsing so that required flags do not get in the way, and kept out of
/// `--help` because they are for packagers, not users.
///
/// Arguments are read as `OsString`s (`std::env::args` panics on one that is not
/// UTF-8): clap accepts such a value where the flag takes a path and reports a usage
/// error (exit 2) where it takes text.
pub fn parse<A: Parser>() -> A {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let words: Vec<Option<&str>> = args.iter().map(|a| a.to_str()).collect();
    let kind = match words[..] {
        [Some("--man")] => Some("man"),
        [Some("--completions"), Some(shell)] => Some(shell),
        _ => None,
    };
    if let Some(kind) = kind {
        let code = match generate::<A>(kind, &mut std::io::stdout()) {
            Ok(()) => 0,
            Err(Error::BrokenPipe) => Error::BrokenPipe.exit_code(),
            Err(e) => {
                eprintln!("{}: {e}", A::command().get_name());
                e.exit_code()
            }
        };
        std::process::exit(code.into());
    }
    A::parse()
}

/// Writes a man page (`man`) or a completion script (`bash`, `zsh`, `fish`) for `A`.
pub fn generate<A: CommandFactory>(kind: &str, out: &mut dyn Write) -> Result<()> {
    let mut cmd = A::command();
    let name = cmd.get_name().to_owned();
    let shell = match kind {
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        "fish" => clap_complete::Shell::Fish,
        "man" => {
            return Ok(clap_mangen::Man::new(cmd).render(out)?);
        }
        other => {
            return Err(Error::input(format!(
                "--completions: unknown shell {other:?} (bash, zsh or fish)"
            )));
        }
    };
    // clap_complete cannot report a write error, so render into memory first.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    Ok(out.write_all(&script)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Says hello.
    #[derive(Parser)]
    #[command(name = "hello")]
    struct Hello {
        /// Whom to greet.
        #[arg(long)]
        name: String,
    }

    #[test]
    fn generates_man_and_completions() {
        let mut man = Vec::new();
        generate::<Hello>("man", &mut man).unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(
            man.contains(".TH hello") && man.contains("Whom to greet"),
            "{man}"
        );
        let mut bash = Vec::new();
        generate::<Hello>("bash", &mut bash).unwrap();
        assert!(String::from_utf8(bash).unwrap().contains("--name"));
        assert!(generate::<Hello>("tcsh", &mut Vec::new()).is_err());
    }
}
