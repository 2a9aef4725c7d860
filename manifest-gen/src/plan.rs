//! The flags checked and resolved into what to generate: every name, number and quantity
//! is validated here, so that a bad flag fails before anything is written.

use crate::cli::{Args, ServiceType};
use crate::sources::{EnvSources, Setting};
use crate::{django, quantity};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kpipe_core::object::{dns1123_label_error, dns1123_subdomain_error};
use kpipe_core::{Error, Result};

/// Everything to generate, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub app: String,
    pub namespace: Option<String>,
    pub emit_namespace: bool,
    pub deployment: String,
    pub container: String,
    pub service: String,
    pub image: String,
    pub port: i32,
    pub port_name: String,
    /// `None` with an HPA, so that apply never resets what the HPA scaled.
    pub replicas: Option<i32>,
    pub env: EnvSources,
    pub service_type: ServiceType,
    pub ingress: Option<IngressPlan>,
    pub probe: Option<ProbeKind>,
    pub image_pull_secrets: Vec<String>,
    pub max_unavailable: IntOrString,
    pub requests: Resources,
    pub limits: Resources,
    pub security: Security,
    pub job: Option<JobPlan>,
    pub hpa: Option<Hpa>,
    pub pdb: bool,
}

#[derive(Debug, Clone)]
pub struct IngressPlan {
    pub name: String,
    pub hosts: Vec<String>,
    pub class: String,
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub secret: String,
    /// Annotation key and issuer name for cert-manager's ingress-shim.
    pub issuer: Option<(&'static str, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    Tcp,
    /// Path, and the `Host` header (Django checks it against ALLOWED_HOSTS).
    HttpGet {
        path: String,
        host: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Off,
    Restricted { run_as_user: Option<i64> },
}

#[derive(Debug, Clone)]
pub struct JobPlan {
    /// Commands run one after another (all but the last as init containers).
    pub steps: Vec<Vec<String>>,
    pub ttl_seconds: i32,
    pub backoff_limit: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hpa {
    pub min: i32,
    pub max: i32,
    pub cpu_percent: i32,
}

pub const DEFAULT_REPLICAS: i32 = 2;
/// Answered with 200 by every Django project with the admin (the tutorial's included),
/// without a redirect or a database query: `/` is a 404 there, `/polls/` reads the
/// database (a liveness probe on it would restart every pod while the database is away).
pub const DEFAULT_PROBE_PATH: &str = "/admin/login/";
const DEFAULT_CPU_PERCENT: i32 = 80;
/// Job names become the `job-name` label of their pods: a label value, at most 63.
const MAX_JOB_NAME: usize = 63;
pub const JOB_HASH_LEN: usize = 10;

pub const MIGRATE: &[&str] = &["python", "manage.py", "migrate", "--noinput"];
pub const COLLECTSTATIC: &[&str] = &["python", "manage.py", "collectstatic", "--noinput"];

impl Plan {
    /// Checks every flag; `env` comes from the input stream.
    pub fn new(args: &Args, env: EnvSources) -> Result<Plan> {
        let app = args.app.clone();
        label_name("--app", &app)?;
        let or_app = |given: &Option<String>, suffix: &str| {
            given.clone().unwrap_or_else(|| {
                if suffix.is_empty() {
                    app.clone()
                } else {
                    format!("{app}-{suffix}")
                }
            })
        };
        let deployment = or_app(&args.deployment_name, "app");
        subdomain_name(
            flag_or_app(&args.deployment_name, "--deployment-name"),
            &deployment,
        )?;
        let container = or_app(&args.container_name, "");
        label_name(
            flag_or_app(&args.container_name, "--container-name"),
            &container,
        )?;
        let service = or_app(&args.service_name, "");
        service_name(flag_or_app(&args.service_name, "--service-name"), &service)?;
        port_name(&args.port_name)?;
        if let Some(ns) = &args.namespace {
            label_name("--namespace", ns)?;
        }
        for (flag, name) in [("--config-map", &env.config_map), ("--secret", &env.secret)] {
            if let Some(name) = name {
                subdomain_name(flag, name)?;
            }
        }
        let app_image = args.image.clone().unwrap_or_default();
        image(&app_image)?;

        let hpa = args.hpa.as_deref().map(parse_hpa).transpose()?;
        let replicas = if hpa.is_some() {
            None
        } else {
            Some(args.replicas.unwrap_or(DEFAULT_REPLICAS))
        };

        let (requests, limits) = resources(args)?;
        if hpa.is_some() && !requests.iter().any(|(r, _)| *r == "cpu") {
            return Err(Error::input(
                "--hpa scales on CPU utilisation, a share of the CPU request: set --cpu-request",
            ));
        }

        let ingress = ingress_plan(args, &app, env.allowed_hosts.as_ref())?;
        let probe = probe(args, ingress.as_ref())?;
        for name in &args.image_pull_secret {
            subdomain_name("--image-pull-secret", name)?;
        }
        let mut image_pull_secrets: Vec<String> = Vec::new();
        for name in &args.image_pull_secret {
            if !image_pull_secrets.contains(name) {
                image_pull_secrets.push(name.clone());
            }
        }

        let job = args.migrate.then(|| job_plan(args)).transpose()?;
        if job.is_some() {
            let longest = format!("{app}-migrate-{}", "0".repeat(JOB_HASH_LEN));
            if longest.len() > MAX_JOB_NAME {
                return Err(Error::input(format!(
                    "--app {app:?}: the migration Job name {longest} would be longer than {MAX_JOB_NAME} characters"
                )));
            }
        }

        Ok(Plan {
            namespace: args.namespace.clone(),
            emit_namespace: args.emit_namespace,
            deployment,
            container,
            service,
            image: app_image,
            port: i32::from(args.port),
            port_name: args.port_name.clone(),
            replicas,
            env,
            service_type: args.service_type,
            ingress,
            probe,
            image_pull_secrets,
            max_unavailable: max_unavailable(&args.max_unavailable)?,
            requests,
            limits,
            security: if args.no_security_context {
                Security::Off
            } else {
                Security::Restricted {
                    run_as_user: args.run_as_user,
                }
            },
            job,
            hpa,
            pdb: args.pdb,
            app,
        })
    }

    /// The most replicas that can run: what a PodDisruptionBudget needs more than one of.
    pub fn max_replicas(&self) -> i32 {
        self.hpa
            .map_or(self.replicas.unwrap_or(DEFAULT_REPLICAS), |h| h.max)
    }
}

/// A derived name's message names the flag that sets it, or --app that it came from.
fn flag_or_app(given: &Option<String>, flag: &'static str) -> &'static str {
    if given.is_some() { flag } else { "--app" }
}

fn label_name(flag: &str, name: &str) -> Result<()> {
    match dns1123_label_error(name) {
        Some(why) => Err(Error::input(format!("{flag} {name:?}: {why}"))),
        None => Ok(()),
    }
}

fn subdomain_name(flag: &str, name: &str) -> Result<()> {
    match dns1123_subdomain_error(name) {
        Some(why) => Err(Error::input(format!("{flag} {name:?}: {why}"))),
        None => Ok(()),
    }
}

/// Service names are DNS-1035 labels: a DNS-1123 label that starts with a letter.
fn service_name(flag: &str, name: &str) -> Result<()> {
    label_name(flag, name)?;
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(Error::input(format!(
            "{flag} {name:?}: a Service name must start with a letter"
        )));
    }
    Ok(())
}

/// Container port names are IANA service names: 1-15 of [a-z0-9-], a letter, no `--`,
/// no leading or trailing `-`.
fn port_name(name: &str) -> Result<()> {
    let ok = (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.contains("--")
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::input(format!(
            "--port-name {name:?}: must be 1-15 lowercase letters, digits or '-', with a letter, \
             no '--' and no '-' at either end"
        )))
    }
}

fn image(image: &str) -> Result<()> {
    if image.is_empty() {
        return Err(Error::input("--image: must not be empty"));
    }
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::input(format!(
            "--image {image:?}: must not contain whitespace"
        )));
    }
    Ok(())
}

/// `MIN:MAX[:CPU%]`
fn parse_hpa(text: &str) -> Result<Hpa> {
    let bad = |why: &str| {
        Error::input(format!(
            "--hpa {text:?}: {why} (expected MIN:MAX[:CPU%], e.g. 2:5:70)"
        ))
    };
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad("wrong number of fields"));
    }
    let number = |s: &str, what: &str| {
        s.trim_end_matches('%')
            .parse::<i32>()
            .map_err(|_| bad(&format!("{what} {s:?} is not a whole number")))
    };
    let min = number(parts[0], "MIN")?;
    let max = number(parts[1], "MAX")?;
    let cpu_percent = parts
        .get(2)
        .map_or(Ok(DEFAULT_CPU_PERCENT), |s| number(s, "CPU%"))?;
    if min < 1 {
        return Err(bad("MIN must be at least 1"));
    }
    if min > max {
        return Err(bad("MIN must not be greater than MAX"));
    }
    if cpu_percent < 1 {
        return Err(bad("CPU% must be at least 1"));
    }
    Ok(Hpa {
        min,
        max,
        cpu_percent,
    })
}

/// Resource name and quantity text, for requests or limits.
pub type Resources = Vec<(&'static str, String)>;

/// `none` drops a resource; a request above its limit is refused as the API server does.
fn resources(args: &Args) -> Result<(Resources, Resources)> {
    let value = |flag: &str, text: &str| -> Result<Option<f64>> {
        if text == "none" {
            return Ok(None);
        }
        quantity::parse(text)
            .map(Some)
            .map_err(|why| Error::input(format!("{flag}: {why}")))
    };
    let cpu = (
        value("--cpu-request", &args.cpu_request)?,
        value("--cpu-limit", &args.cpu_limit)?,
    );
    let memory = (
        value("--memory-request", &args.memory_request)?,
        value("--memory-limit", &args.memory_limit)?,
    );
    for (what, (request, limit)) in [("cpu", cpu), ("memory", memory)] {
        if let (Some(request), Some(limit)) = (request, limit)
            && request > limit
        {
            return Err(Error::input(format!(
                "--{what}-request is greater than --{what}-limit: a pod cannot request more than its limit"
            )));
        }
    }
    let keep = |pairs: [(&'static str, &String); 2]| -> Resources {
        pairs
            .into_iter()
            .filter(|(_, text)| *text != "none")
            .map(|(r, text)| (r, text.clone()))
            .collect()
    };
    Ok((
        keep([("cpu", &args.cpu_request), ("memory", &args.memory_request)]),
        keep([("cpu", &args.cpu_limit), ("memory", &args.memory_limit)]),
    ))
}

fn max_unavailable(text: &str) -> Result<IntOrString> {
    let bad = || {
        Error::input(format!(
            "--max-unavailable {text:?}: expected a whole number or a percentage (0, 1, 25%)"
        ))
    };
    match text.strip_suffix('%') {
        Some(percent) => match percent.parse::<u8>() {
            Ok(p) if p <= 100 => Ok(IntOrString::String(text.to_owned())),
            _ => Err(bad()),
        },
        None => text
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .map(IntOrString::Int)
            .ok_or_else(bad),
    }
}

fn job_plan(args: &Args) -> Result<JobPlan> {
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let migrate = match &args.migrate_command {
        Some(text) => parse_command(text)?,
        None => words(MIGRATE),
    };
    let mut steps = vec![migrate];
    if args.collectstatic {
        steps.push(words(COLLECTSTATIC));
    }
    let ttl = kpipe_core::time::parse_duration(&args.job_ttl)
        .map_err(|why| Error::input(format!("--job-ttl: {why}")))?;
    let ttl_seconds = i32::try_from(ttl.as_secs())
        .map_err(|_| Error::input(format!("--job-ttl {:?}: too long", args.job_ttl)))?;
    Ok(JobPlan {
        steps,
        ttl_seconds,
        backoff_limit: args.job_backoff_limit,
    })
}

/// Exec form, as in a Dockerfile: a JSON array of strings, or words split on whitespace.
fn parse_command(text: &str) -> Result<Vec<String>> {
    let words: Vec<String> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| {
            Error::input(format!(
                "--migrate-command: not a JSON array of strings: {e}"
            ))
        })?
    } else {
        text.split_whitespace().map(str::to_owned).collect()
    };
    if words.is_empty() || words[0].is_empty() {
        return Err(Error::input("--migrate-command: must not be empty"));
    }
    Ok(words)
}

/// HTTP with the Ingress's host when there is one, so that a pod whose Django refuses
/// that host (400 to every request) is never ready; TCP when no host is known.
fn probe(args: &Args, ingress: Option<&IngressPlan>) -> Result<Option<ProbeKind>> {
    if args.no_probes {
        return Ok(None);
    }
    if let Some(path) = &args.probe_path
        && (!path.starts_with('/') || path.chars().any(char::is_whitespace))
    {
        return Err(Error::input(format!(
            "--probe-path {path:?}: must be a URL path starting with '/' and without spaces"
        )));
    }
    let host = ingress.and_then(|i| django::probe_host(&i.hosts));
    Ok(Some(match (&args.probe_path, host) {
        (_, _) if args.tcp_probes => ProbeKind::Tcp,
        (Some(path), host) => ProbeKind::HttpGet {
            path: path.clone(),
            host,
        },
        (None, Some(host)) => ProbeKind::HttpGet {
            path: DEFAULT_PROBE_PATH.to_owned(),
            host: Some(host),
        },
        (None, None) => ProbeKind::Tcp,
    }))
}

fn ingress_plan(
    args: &Args,
    app: &str,
    allowed_hosts: Option<&Setting>,
) -> Result<Option<IngressPlan>> {
    if args.hosts.is_empty() {
        return Ok(None);
    }
    for host in &args.hosts {
        ingress_host(host)?;
    }
    let mut hosts: Vec<String> = Vec::new();
    for host in &args.hosts {
        if !hosts.contains(host) {
            hosts.push(host.clone());
        }
    }
    if let Some(allowed) = allowed_hosts {
        check_allowed_hosts(allowed, &hosts)?;
    }
    subdomain_name("--ingress-class", &args.ingress_class)?;
    let tls = if args.no_tls {
        None
    } else {
        let secret = args
            .tls_secret
            .clone()
            .unwrap_or_else(|| format!("{app}-tls"));
        subdomain_name(flag_or_app(&args.tls_secret, "--tls-secret"), &secret)?;
        let issuer = match (&args.namespaced_issuer, args.no_issuer) {
            (_, true) => None,
            (Some(name), false) => Some(("cert-manager.io/issuer", name.clone())),
            (None, false) => Some(("cert-manager.io/cluster-issuer", args.issuer.clone())),
        };
        if let Some((_, name)) = &issuer {
            let flag = if args.namespaced_issuer.is_some() {
                "--namespaced-issuer"
            } else {
                "--issuer"
            };
            subdomain_name(flag, name)?;
        }
        Some(Tls { secret, issuer })
    };
    let name = format!("{app}-ingress");
    subdomain_name("--app", &name)?;
    Ok(Some(IngressPlan {
        name,
        hosts,
        class: args.ingress_class.clone(),
        tls,
    }))
}

/// Every host must pass Django's ALLOWED_HOSTS check, or Django answers 400 to all its
/// requests. The value is named when it is config, never when a Secret holds it.
fn check_allowed_hosts(allowed: &Setting, hosts: &[String]) -> Result<()> {
    let refused: Vec<&str> = hosts
        .iter()
        .filter(|h| !django::admits(&allowed.value, h))
        .map(String::as_str)
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let value = if allowed.secret {
        " (its value is not shown: a Secret holds it)".to_owned()
    } else {
        format!(" {:?}", allowed.value)
    };
    // Django's own wildcard is a leading dot; `*.example.com` means nothing to it.
    let pattern = |host: &str| match host.strip_prefix('*') {
        Some(domain) => domain.to_owned(),
        None => host.to_owned(),
    };
    let suggestion = match refused.as_slice() {
        [one] if one.starts_with('*') => format!("{} (or *)", pattern(one)),
        [one] => format!("{one} (or .{one} with its subdomains, or *)"),
        many => format!(
            "{} (or *)",
            many.iter()
                .map(|h| pattern(h))
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    let spaces = if refused
        .iter()
        .any(|h| django::admits_without_spaces(&allowed.value, h))
    {
        "; the spaces around its commas are part of the names (the tutorial's settings \
         split on ',' alone): remove them"
    } else {
        ""
    };
    Err(Error::input(format!(
        "{}: {}{value} does not admit --host {}: Django would answer every request \
         with 400 Bad Request (and the HTTP probes would fail); add {suggestion} to it{spaces}",
        allowed.origin,
        django::ALLOWED_HOSTS,
        refused.join(", --host "),
    )))
}

/// Ingress hosts: a DNS-1123 subdomain, optionally `*.` in front, and not an IP address.
fn ingress_host(host: &str) -> Result<()> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err(Error::input(format!(
            "--host {host:?}: must be a DNS name, not an IP address"
        )));
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    match dns1123_subdomain_error(name) {
        Some(why) => Err(Error::input(format!("--host {host:?}: {why}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_forms() {
        assert_eq!(
            parse_hpa("2:5").unwrap(),
            Hpa {
                min: 2,
                max: 5,
                cpu_percent: 80
            }
        );
        assert_eq!(
            parse_hpa("1:3:70%").unwrap(),
            Hpa {
                min: 1,
                max: 3,
                cpu_percent: 70
            }
        );
        for bad in ["5:2", "0:3", "2", "a:3", "1:2:0", "1:2:3:4"] {
            assert!(parse_hpa(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_ports() {
        assert!(port_name("gunicorn").is_ok());
        for bad in ["", "Gunicorn", "a--b", "-a", "1234", "abcdefghijklmnop"] {
            assert!(port_name(bad).is_err(), "{bad}");
        }
        assert!(service_name("--service-name", "1polls").is_err());
        assert!(ingress_host("*.example.com").is_ok());
        assert!(ingress_host("10.0.0.1").is_err());
        assert!(ingress_host("Example.com").is_err());
    }

    #[test]
    fn commands_and_surge() {
        assert_eq!(
            parse_command("python manage.py migrate").unwrap(),
            ["python", "manage.py", "migrate"]
        );
        assert_eq!(
            parse_command(r#"["sh","-c","a && b"]"#).unwrap(),
            ["sh", "-c", "a && b"]
        );
        assert!(parse_command("  ").is_err());
        assert_eq!(
            max_unavailable("25%").unwrap(),
            IntOrString::String("25%".into())
        );
        assert_eq!(max_unavailable("0").unwrap(), IntOrString::Int(0));
        assert!(max_unavailable("-1").is_err() && max_unavailable("101%").is_err());
    }
}
