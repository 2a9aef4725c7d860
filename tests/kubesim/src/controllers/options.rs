//! What the simulated controllers are asked to do (`kubesim serve` flags).

use std::time::Duration;

use clap::{Args, ValueEnum};
use kpipe_core::time::parse_duration;

/// Settings for the simulated controllers, from `kubesim serve`'s flags.
#[derive(Debug, Clone, Args)]
pub struct ControllerOptions {
    /// Serve the cert-manager CRDs, create the ClusterIssuers letsencrypt-staging and
    /// letsencrypt-prod (both Ready) and run a simulated cert-manager: ingress-shim turns
    /// annotated Ingresses into Certificates, which are issued through a CertificateRequest,
    /// an ACME Order and HTTP-01 Challenges into a kubernetes.io/tls Secret.
    #[arg(long)]
    pub cert_manager: bool,

    /// Time from a Certificate's creation to Ready=True (or to the failure).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub cert_delay: Duration,

    /// Make every issuance fail this way instead of succeeding.
    #[arg(long, value_name = "REASON")]
    pub cert_fail: Option<CertFailure>,

    /// Time before a Deployment's replicas are reported available and a Job complete
    /// (no pods are run).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub deploy_delay: Duration,
}

/// How the simulated issuance fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CertFailure {
    /// The HTTP-01 self check gets a 404: the Challenge and the Order turn invalid, the
    /// CertificateRequest and the Certificate record a failed issuance.
    Challenge,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            cert_manager: false,
            cert_delay: Duration::from_secs(2),
            cert_fail: None,
            deploy_delay: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: ControllerOptions,
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let parsed = Cli::parse_from(["kubesim"]).opts;
        let default = ControllerOptions::default();
        assert_eq!(parsed.cert_manager, default.cert_manager);
        assert_eq!(parsed.cert_delay, default.cert_delay);
        assert_eq!(parsed.cert_fail, default.cert_fail);
        assert_eq!(parsed.deploy_delay, default.deploy_delay);
    }

    #[test]
    fn parses_every_flag() {
        let opts = Cli::parse_from([
            "kubesim",
            "--cert-manager",
            "--cert-delay",
            "300ms",
            "--cert-fail",
            "challenge",
            "--deploy-delay",
            "2s",
        ])
        .opts;
        assert!(opts.cert_manager);
        assert_eq!(opts.cert_delay, Duration::from_millis(300));
        assert_eq!(opts.cert_fail, Some(CertFailure::Challenge));
        assert_eq!(opts.deploy_delay, Duration::from_secs(2));
    }

    #[test]
    fn rejects_unknown_failures_and_bad_durations() {
        assert!(Cli::try_parse_from(["kubesim", "--cert-fail", "dns"]).is_err());
        assert!(Cli::try_parse_from(["kubesim", "--cert-delay", "soon"]).is_err());
    }
}
