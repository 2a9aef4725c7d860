//! Command-line plumbing every tool shares: parsing, and generating shell completions
//! and man pages from the same clap definitions (`TOOL --generate KIND`, used by
//! `make completions` and `make man`).

use clap::{CommandFactory, Parser};
use std::io::Write;

/// What `--generate` can produce.
const KINDS: &str = "complete-bash, complete-zsh, complete-fish, man";

/// Parses the tool's arguments; `TOOL --generate KIND` instead prints a completion
/// script or man page for the tool to stdout and exits. It is handled before normal
/// parsing so that required flags do not get in the way, and kept out of `--help`
/// because it is for packagers, not users.
pub fn parse<A: Parser>() -> A {
    let mut argv = std::env::args_os().skip(1);
    if let (Some(flag), Some(kind), None) = (argv.next(), argv.next(), argv.next())
        && flag == "--generate"
    {
        let code = match generate::<A>(&kind.to_string_lossy(), &mut std::io::stdout()) {
            Ok(()) => 0,
            Err(why) => {
                eprintln!("{}: {why}", A::command().get_name());
                2
            }
        };
        std::process::exit(code);
    }
    A::parse()
}

/// Writes a completion script or a man page for `A` to `out`.
pub fn generate<A: CommandFactory>(kind: &str, out: &mut dyn Write) -> Result<(), String> {
    let mut cmd = A::command();
    let name = cmd.get_name().to_owned();
    let shell = match kind {
        "complete-bash" => clap_complete::Shell::Bash,
        "complete-zsh" => clap_complete::Shell::Zsh,
        "complete-fish" => clap_complete::Shell::Fish,
        "man" => {
            return clap_mangen::Man::new(cmd).render(out).map_err(|e| e.to_string());
        }
        other => return Err(format!("--generate: unknown kind {other:?} (one of: {KINDS})")),
    };
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
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
        assert!(man.contains(".TH hello") && man.contains("Whom to greet"), "{man}");
        let mut bash = Vec::new();
        generate::<Hello>("complete-bash", &mut bash).unwrap();
        assert!(String::from_utf8(bash).unwrap().contains("--name"));
        assert!(generate::<Hello>("complete-tcsh", &mut Vec::new()).is_err());
    }
}
