//! Django's host validation, as the tutorial's app reads it: `ALLOWED_HOSTS =
//! os.getenv("DJANGO_ALLOWED_HOSTS", ...).split(",")`. A host it does not admit gets
//! 400 Bad Request for every request, while a TCP probe calls the pod ready.

/// The env var the tutorial's settings read ALLOWED_HOSTS from.
pub const ALLOWED_HOSTS: &str = "DJANGO_ALLOWED_HOSTS";

/// Whether the comma-separated `allowed` admits every request an Ingress `host` rule
/// routes: Django's `validate_host` (`*` admits all, `.example.com` the domain and its
/// subdomains, otherwise an exact, case-insensitive name). A wildcard rule `*.D` routes
/// any subdomain of D, so only `*` or a leading-dot pattern covering D admits it all.
pub fn admits(allowed: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    allowed.split(',').any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        match host.strip_prefix('*') {
            Some(subdomains) => {
                pattern == "*" || (pattern.starts_with('.') && subdomains.ends_with(&pattern))
            }
            None => pattern == "*" || same_domain(&host, &pattern),
        }
    })
}

/// Django's `is_same_domain`.
fn same_domain(host: &str, pattern: &str) -> bool {
    match pattern.strip_prefix('.') {
        Some(domain) => host.ends_with(pattern) || host == domain,
        None => !pattern.is_empty() && host == pattern,
    }
}

/// Whether `allowed` would admit `host` if the spaces around its commas were dropped:
/// the tutorial's settings keep them, so ` b.example.com` never matches.
pub fn admits_without_spaces(allowed: &str, host: &str) -> bool {
    let trimmed: Vec<&str> = allowed.split(',').map(str::trim).collect();
    admits(&trimmed.join(","), host)
}

/// A name the probe can send as `Host` for an Ingress host: `*.example.com` is no valid
/// Host header (Django answers 400), so a wildcard stands for one name under it.
pub fn probe_host(hosts: &[String]) -> Option<String> {
    hosts
        .iter()
        .find(|h| !h.starts_with('*'))
        .or(hosts.first())
        .map(|h| h.replacen('*', "kpipe-probe", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_rules() {
        assert!(admits("polls.example.com", "polls.example.com"));
        assert!(admits("localhost,Polls.Example.com", "polls.example.com"));
        assert!(admits("*", "polls.example.com"));
        assert!(admits(".example.com", "example.com"));
        assert!(admits(".example.com", "www.polls.example.com"));
        assert!(!admits(".example.com", "badexample.com"));
        assert!(!admits("example.com", "www.example.com"));
        assert!(
            !admits("*.example.com", "www.example.com"),
            "not a Django wildcard"
        );
        assert!(!admits("", "example.com"));
        assert!(!admits("a.com, example.com", "example.com"));
        assert!(admits_without_spaces("a.com, example.com", "example.com"));
    }

    #[test]
    fn wildcard_ingress_hosts() {
        assert!(admits("*", "*.example.com"));
        assert!(admits(".example.com", "*.example.com"));
        assert!(admits(".com", "*.example.com"));
        assert!(!admits(".a.example.com", "*.example.com"));
        assert!(!admits("example.com", "*.example.com"));
        assert!(!admits("*.example.com", "*.example.com"));
    }

    #[test]
    fn probe_host_is_a_valid_name() {
        let hosts = |h: &[&str]| h.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(probe_host(&hosts(&["*.a.com", "b.com"])).unwrap(), "b.com");
        assert_eq!(
            probe_host(&hosts(&["*.a.com"])).unwrap(),
            "kpipe-probe.a.com"
        );
        assert_eq!(probe_host(&[]), None);
    }
}
