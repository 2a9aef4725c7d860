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

    /// Time a container takes to start (pull, create, start) and a Job's container to
    /// run to completion: a Deployment is available and a Job complete about this long
    /// after their pods are created.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub deploy_delay: Duration,

    /// Containers whose image matches REGEX fail this way instead of starting:
    /// `ImagePullBackOff` (the registry refuses the image), `CrashLoopBackOff:EXIT` (the
    /// process exits with EXIT at start, again after every restart; a Job's pod fails),
    /// `Unschedulable` (the scheduler finds no node). Repeatable; the first match wins.
    #[arg(long = "pods-fail", value_name = "REGEX=STATE", value_parser = parse_pod_failure)]
    pub pods_fail: Vec<PodFailure>,
}

/// A rule of `--pods-fail`: which images fail, and how.
#[derive(Debug, Clone)]
pub struct PodFailure {
    pub image: regex::Regex,
    pub state: FailState,
}

/// How a container (or its pod) fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailState {
    ImagePullBackOff,
    CrashLoopBackOff { exit_code: i32 },
    Unschedulable,
}

impl ControllerOptions {
    /// How a container with `image` fails, if a rule says so.
    pub fn failure_of(&self, image: &str) -> Option<FailState> {
        self.pods_fail
            .iter()
            .find(|rule| rule.image.is_match(image))
            .map(|rule| rule.state)
    }
}

fn parse_pod_failure(spec: &str) -> Result<PodFailure, String> {
    let (pattern, state) = spec
        .rsplit_once('=')
        .ok_or("expected REGEX=STATE, e.g. 'polls:bad=ImagePullBackOff'")?;
    let image = regex::Regex::new(pattern).map_err(|e| e.to_string())?;
    let state = match state.split_once(':') {
        None if state == "ImagePullBackOff" => FailState::ImagePullBackOff,
        None if state == "Unschedulable" => FailState::Unschedulable,
        None if state == "CrashLoopBackOff" => FailState::CrashLoopBackOff { exit_code: 1 },
        Some(("CrashLoopBackOff", code)) => FailState::CrashLoopBackOff {
            exit_code: code
                .parse()
                .map_err(|_| format!("exit code {code:?} is not a number"))?,
        },
        _ => {
            return Err(format!(
                "unknown state {state:?}: ImagePullBackOff, CrashLoopBackOff[:EXIT] or Unschedulable"
            ));
        }
    };
    Ok(PodFailure { image, state })
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
            pods_fail: Vec::new(),
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
    fn pod_failures_match_images() {
        let opts = Cli::parse_from([
            "kubesim",
            "--pods-fail",
            "polls:bad$=ImagePullBackOff",
            "--pods-fail",
            "crash=CrashLoopBackOff:3",
        ])
        .opts;
        assert_eq!(
            opts.failure_of("docker.io/x/polls:bad"),
            Some(FailState::ImagePullBackOff)
        );
        assert_eq!(
            opts.failure_of("crash:1"),
            Some(FailState::CrashLoopBackOff { exit_code: 3 })
        );
        assert_eq!(opts.failure_of("polls:good"), None);
        assert!(Cli::try_parse_from(["kubesim", "--pods-fail", "x=Sleepy"]).is_err());
        assert!(Cli::try_parse_from(["kubesim", "--pods-fail", "x=CrashLoopBackOff:y"]).is_err());
    }

    #[test]
    fn rejects_unknown_failures_and_bad_durations() {
        assert!(Cli::try_parse_from(["kubesim", "--cert-fail", "dns"]).is_err());
        assert!(Cli::try_parse_from(["kubesim", "--cert-delay", "soon"]).is_err());
    }
}
