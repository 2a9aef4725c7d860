//! Flags, help text, and what to wait for.

use clap::Parser;
use kpipe_core::connect::ConnectArgs;
use kpipe_core::stream;
use kpipe_core::time::parse_duration;
use kpipe_core::{Error, Result};
use std::io::IsTerminal;
use std::time::Duration;

use crate::target;

const LONG_ABOUT: &str = "\
Wait until cert-manager has issued TLS certificates: every Certificate must reach
Ready=True for its current generation. Progress (each change of the Ready and Issuing
conditions) goes to stderr; when all are ready, one line per certificate goes to stdout:

    NAMESPACE/NAME <TAB> DNS names (comma-separated) <TAB> issuer <TAB> notAfter

read from the Secret's tls.crt (never its key). A certificate from Let's Encrypt's
staging CA gets a warning: browsers do not trust it; switch the Ingress to the
production ClusterIssuer when everything works.

What to wait for:
  NAME...    Certificates in the namespace (-n, else the context's). One that does not
             exist yet is waited for: ingress-shim creates it after the Ingress.
  --all      every Certificate in the namespace.
  stdin      with no NAME and stdin not a terminal: a manifest stream. Every Certificate
             in it, and for every Ingress annotated cert-manager.io/cluster-issuer or
             cert-manager.io/issuer, the Certificate named after each spec.tls[].secretName.
             An empty pipe, or a kpipe stream cut off before `# kpipe stream: end`
             (what `kapply -o yaml` writes when it fails), is refused: exit 2.

It stops early, with exit 1 and the chain `cmctl status certificate` shows
(Certificate -> CertificateRequest -> Order -> Challenges, and the issuer), when
cert-manager records a failed issuance after certwait started (its next try is about an
hour away), or when the referenced Issuer/ClusterIssuer does not exist or is not Ready
(cert-manager would leave the certificate pending forever). --keep-waiting waits anyway.

Examples:
  certwait polls-tls
  certwait -n web --all --timeout 10m
  manifest-gen --image ... --host polls.example.com | kapply -o yaml | certwait
  certwait -q polls-tls | cut -f4            # just notAfter

Exit status:
  0    every certificate is ready
  1    issuance failed, cert-manager or the issuer is missing or not ready, API error
  2    usage or bad input (nothing was waited for)
  124  timed out (as timeout(1)); the diagnosis is printed first";

/// Wait until cert-manager has issued TLS certificates, and explain it when it has not.
#[derive(Parser, Debug)]
#[command(name = "certwait", version, long_about = LONG_ABOUT)]
pub struct Args {
    /// Certificates to wait for; without NAME: --all, or a manifest stream on stdin.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,

    /// Wait for every Certificate in the namespace.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,

    /// Give up after this long (exit 124), e.g. 90s, 5m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Keep waiting after a failed issuance or a missing/unready issuer (cert-manager
    /// retries failures with backoff, the first time after about an hour).
    #[arg(long)]
    pub keep_waiting: bool,

    /// No progress on stderr (errors, warnings and diagnoses are still shown).
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Where the Certificates to wait for come from.
pub(crate) enum Wanted {
    Names(Vec<String>),
    All,
    Stream(Vec<kpipe_core::Document>),
}

pub(crate) fn wanted(args: &Args) -> Result<Wanted> {
    if args.all {
        return Ok(Wanted::All);
    }
    if !args.names.is_empty() {
        for name in &args.names {
            if let Some(why) = kpipe_core::object::dns1123_subdomain_error(name) {
                return Err(Error::input(format!(
                    "invalid Certificate name {name:?}: {why}"
                )));
            }
        }
        return Ok(Wanted::Names(args.names.clone()));
    }
    if std::io::stdin().is_terminal() {
        return Err(Error::input(
            "nothing to wait for: give Certificate NAMEs, --all, or a manifest stream on stdin \
             (e.g. `kapply -o yaml | certwait`); see --help",
        ));
    }
    let docs = stream::read("-")?;
    // Checked before connecting, so bad input never depends on a kubeconfig; the
    // namespace only matters once connected.
    if target::from_stream(&docs, "", false)?.targets.is_empty() {
        return Err(Error::input(
            "<stdin>: no Certificate, and no Ingress annotated with \
             cert-manager.io/cluster-issuer or cert-manager.io/issuer: nothing to wait for",
        ));
    }
    Ok(Wanted::Stream(docs))
}
