//! Which Certificates to wait for: named, or found in a manifest stream.
//!
//! In a stream, a Certificate is waited for by its own name; an Ingress annotated for
//! cert-manager's ingress-shim gets one Certificate per `spec.tls[].secretName`, named
//! after that Secret (which is what ingress-shim does).
//!
//! A target from a stream also says what the Certificate's spec must be: kapply has just
//! applied the stream, but ingress-shim updates the Certificate only a moment after the
//! Ingress changed, and until then the old Certificate may well be Ready=True for its own,
//! older spec (`make promote`: still the staging issuer). See [`Target::spec_mismatch`].

use crate::certmanager::Certificate;
use k8s_openapi::api::networking::v1::Ingress;
use kpipe_core::{Document, Error, Result};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

const CERT_MANAGER_GROUP: &str = "cert-manager.io";
const CLUSTER_ISSUER_ANNOTATION: &str = "cert-manager.io/cluster-issuer";
const ISSUER_ANNOTATION: &str = "cert-manager.io/issuer";
const ISSUER_KIND_ANNOTATION: &str = "cert-manager.io/issuer-kind";
const ISSUER_GROUP_ANNOTATION: &str = "cert-manager.io/issuer-group";

/// A Certificate's place: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertKey {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for CertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Certificate's `spec.issuerRef` (or what an Ingress annotation will make of it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssuerRef {
    /// `Issuer` or `ClusterIssuer` for cert-manager's own issuers.
    pub kind: String,
    pub name: String,
    pub group: String,
    /// Where an `Issuer` lives: the Certificate's namespace.
    pub namespace: String,
}

impl IssuerRef {
    /// Reads `spec.issuerRef` of a Certificate in `namespace`; kind defaults to Issuer and
    /// group to cert-manager.io, as in cert-manager.
    pub fn of_certificate(cert: &Certificate, namespace: &str) -> Option<IssuerRef> {
        let spec = cert.spec.issuer_ref.as_ref()?;
        let name = spec.name.as_deref().filter(|n| !n.is_empty())?;
        let text = |field: &Option<String>, default: &str| {
            field
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or(default)
                .to_owned()
        };
        Some(IssuerRef {
            kind: text(&spec.kind, "Issuer"),
            name: name.to_owned(),
            group: text(&spec.group, CERT_MANAGER_GROUP),
            namespace: namespace.to_owned(),
        })
    }

    /// Only cert-manager's own issuers are checked; external issuers have their own types.
    pub fn is_cert_manager(&self) -> bool {
        self.group == CERT_MANAGER_GROUP && matches!(self.kind.as_str(), "Issuer" | "ClusterIssuer")
    }

    /// Whether `other` names the same issuer (a ClusterIssuer's namespace is only where
    /// it was referred to from).
    pub fn is(&self, other: &IssuerRef) -> bool {
        self.group == other.group
            && self.kind == other.kind
            && self.name == other.name
            && (self.kind == "ClusterIssuer" || self.namespace == other.namespace)
    }
}

impl fmt::Display for IssuerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind.as_str() {
            "ClusterIssuer" => write!(f, "ClusterIssuer {}", self.name),
            _ => write!(f, "{} {}/{}", self.kind, self.namespace, self.name),
        }
    }
}

/// One Certificate to wait for, with what is known about it before it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key: CertKey,
    /// Known from the input before the Certificate exists (stream Certificate or Ingress),
    /// and what its `spec.issuerRef` must say.
    pub issuer: Option<IssuerRef>,
    /// What `spec.dnsNames` must hold (as a set), for a target from a stream.
    pub dns_names: Option<BTreeSet<String>>,
    /// What `spec.secretName` must be, for a target from a stream.
    pub secret_name: Option<String>,
}

impl Target {
    /// A Certificate named on the command line (or found by `--all`): nothing expected.
    pub fn named(key: CertKey) -> Target {
        Target {
            key,
            issuer: None,
            dns_names: None,
            secret_name: None,
        }
    }

    /// How the live Certificate's spec differs from what the input asks for, e.g.
    /// `issuer ClusterIssuer letsencrypt-staging -> letsencrypt-prod`; `None` when it
    /// agrees, or when nothing is expected. While it differs, its Ready condition is about
    /// another certificate than the one wanted, however current its observedGeneration.
    pub fn spec_mismatch(&self, cert: &Certificate) -> Option<String> {
        let mut diffs = Vec::new();
        if let Some(want) = &self.issuer {
            let have = IssuerRef::of_certificate(cert, &self.key.namespace);
            // Kind and name only: ingress-shim updates a Certificate for those, not for a
            // changed group (a stream Certificate's group change bumps its generation).
            match &have {
                Some(have) if have.kind == want.kind && have.name == want.name => {}
                Some(have) if have.kind == want.kind => {
                    diffs.push(format!("issuer {have} -> {}", want.name));
                }
                Some(have) => diffs.push(format!("issuer {have} -> {want}")),
                None => diffs.push(format!("issuer none -> {want}")),
            }
        }
        if let Some(want) = &self.dns_names {
            let have = dns_names(&cert.spec.dns_names);
            if &have != want {
                let list = |names: &BTreeSet<String>| {
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                };
                diffs.push(format!("dnsNames {} -> {}", list(&have), list(want)));
            }
        }
        if let Some(want) = &self.secret_name {
            let have = cert.spec.secret_name.as_deref().unwrap_or_default();
            if have != want {
                diffs.push(format!("secretName {have} -> {want}"));
            }
        }
        (!diffs.is_empty()).then(|| diffs.join("; "))
    }
}

/// The DNS names of a list of hosts, as a set (order does not change the certificate).
/// IP addresses are left out: ingress-shim moves them to `spec.ipAddresses` (older
/// versions kept them in dnsNames) and does not update a Certificate for them.
fn dns_names(hosts: &[String]) -> BTreeSet<String> {
    hosts
        .iter()
        .filter(|h| h.parse::<IpAddr>().is_err())
        .cloned()
        .collect()
}

/// What a manifest stream asks certwait to wait for.
#[derive(Debug, Default)]
pub struct StreamTargets {
    pub targets: Vec<Target>,
    /// Issuers in the stream: just applied, so not Ready yet is expected.
    pub issuers_in_stream: Vec<IssuerRef>,
}

/// Finds the Certificates a stream implies. `namespace` is the `-n`/context namespace;
/// when it came from `-n` (`strict`), objects in other namespaces are an error, as
/// with kubectl.
pub fn from_stream(docs: &[Document], namespace: &str, strict: bool) -> Result<StreamTargets> {
    let mut found = StreamTargets::default();
    for doc in docs {
        let group = doc.api_version().split_once('/').map_or("", |(g, _)| g);
        let wanted = matches!(
            (group, doc.kind()),
            (
                "cert-manager.io",
                "Certificate" | "Issuer" | "ClusterIssuer"
            ) | ("networking.k8s.io", "Ingress")
        );
        if !wanted {
            continue;
        }
        let id = doc.id();
        let ns = match id.namespace.as_deref() {
            Some(ns) if strict && ns != namespace && doc.kind() != "ClusterIssuer" => {
                return Err(Error::input(format!(
                    "{}: {}/{}: its namespace {ns:?} does not match -n {namespace:?} \
                     (drop -n or pass -n {ns})",
                    doc.place(),
                    id.kind,
                    id.name
                )));
            }
            Some(ns) => ns,
            None => namespace,
        };
        match doc.kind() {
            "Certificate" => {
                if doc.api_version() != "cert-manager.io/v1" {
                    return Err(Error::input(format!(
                        "{}: Certificate apiVersion {:?} is not served by cert-manager 1.x; \
                         use cert-manager.io/v1",
                        doc.place(),
                        doc.api_version()
                    )));
                }
                let cert: Certificate = typed(doc)?;
                push(
                    &mut found.targets,
                    Target {
                        key: CertKey {
                            namespace: ns.to_owned(),
                            name: cert.metadata.name.clone().unwrap_or_default(),
                        },
                        issuer: IssuerRef::of_certificate(&cert, ns),
                        dns_names: Some(dns_names(&cert.spec.dns_names)),
                        secret_name: cert.spec.secret_name,
                    },
                );
            }
            "Ingress" => {
                if doc.api_version() != "networking.k8s.io/v1" {
                    return Err(Error::input(format!(
                        "{}: Ingress apiVersion {:?} is not served since Kubernetes 1.22; \
                         use networking.k8s.io/v1",
                        doc.place(),
                        doc.api_version()
                    )));
                }
                ingress_targets(doc, &typed(doc)?, ns, &mut found.targets)?;
            }
            kind => found.issuers_in_stream.push(IssuerRef {
                kind: kind.to_owned(),
                name: id.name,
                group: CERT_MANAGER_GROUP.to_owned(),
                namespace: ns.to_owned(),
            }),
        }
    }
    Ok(found)
}

/// The input object as the type certwait reads it; what does not fit is bad input.
fn typed<T: DeserializeOwned>(doc: &Document) -> Result<T> {
    T::deserialize(&doc.value).map_err(|e| {
        Error::input(format!(
            "{}: {} is not a valid {}: {}",
            doc.place(),
            doc.id(),
            doc.kind(),
            kpipe_core::error::serde_without_values(&e.to_string())
        ))
    })
}

fn ingress_targets(
    doc: &Document,
    ingress: &Ingress,
    namespace: &str,
    targets: &mut Vec<Target>,
) -> Result<()> {
    let annotation = |key: &str| {
        ingress
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let issuer = match (
        annotation(CLUSTER_ISSUER_ANNOTATION),
        annotation(ISSUER_ANNOTATION),
    ) {
        (None, None) => return Ok(()),
        (Some(_), Some(_)) => {
            return Err(Error::input(format!(
                "{}: {} has both {CLUSTER_ISSUER_ANNOTATION} and {ISSUER_ANNOTATION}; \
                 cert-manager refuses that, keep one",
                doc.place(),
                doc.id()
            )));
        }
        (Some(name), None) => IssuerRef {
            kind: "ClusterIssuer".into(),
            name: name.into(),
            group: annotation(ISSUER_GROUP_ANNOTATION)
                .unwrap_or(CERT_MANAGER_GROUP)
                .into(),
            namespace: namespace.into(),
        },
        (None, Some(name)) => IssuerRef {
            kind: annotation(ISSUER_KIND_ANNOTATION)
                .unwrap_or("Issuer")
                .into(),
            name: name.into(),
            group: annotation(ISSUER_GROUP_ANNOTATION)
                .unwrap_or(CERT_MANAGER_GROUP)
                .into(),
            namespace: namespace.into(),
        },
    };
    let tls = ingress
        .spec
        .as_ref()
        .and_then(|spec| spec.tls.as_deref())
        .unwrap_or_default();
    if tls.is_empty() {
        return Err(Error::input(format!(
            "{}: {} asks cert-manager for a certificate (annotation) but has no spec.tls, \
             so none will be issued",
            doc.place(),
            doc.id()
        )));
    }
    for (i, entry) in tls.iter().enumerate() {
        let Some(secret) = entry.secret_name.as_deref().filter(|s| !s.is_empty()) else {
            return Err(Error::input(format!(
                "{}: {} spec.tls[{i}] has no secretName; cert-manager names the \
                 certificate after it and skips entries without one",
                doc.place(),
                doc.id()
            )));
        };
        push(
            targets,
            Target {
                key: CertKey {
                    namespace: namespace.into(),
                    name: secret.into(),
                },
                issuer: Some(issuer.clone()),
                // What ingress-shim writes into the Certificate for this tls entry.
                dns_names: Some(dns_names(entry.hosts.as_deref().unwrap_or_default())),
                secret_name: Some(secret.into()),
            },
        );
    }
    Ok(())
}

/// Adds a target once; the first mention (usually the Certificate itself) wins.
fn push(targets: &mut Vec<Target>, target: Target) {
    if !targets.iter().any(|t| t.key == target.key) {
        targets.push(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Document> {
        kpipe_core::stream::parse("<stdin>", text).unwrap()
    }

    const INGRESS: &str = "\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: polls
  annotations:
    cert-manager.io/cluster-issuer: letsencrypt-staging
spec:
  tls:
  - hosts: [polls.example.com]
    secretName: polls-tls
  - hosts: [api.example.com]
    secretName: api-tls
";

    #[test]
    fn ingress_shim_names_one_certificate_per_tls_secret() {
        let stream =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{INGRESS}");
        let found = from_stream(&parse(&stream), "web", false).unwrap();
        let keys: Vec<String> = found.targets.iter().map(|t| t.key.to_string()).collect();
        assert_eq!(keys, ["web/polls-tls", "web/api-tls"]);
        let issuer = found.targets[0].issuer.as_ref().unwrap();
        assert_eq!(issuer.to_string(), "ClusterIssuer letsencrypt-staging");
        assert!(issuer.is_cert_manager());
    }

    #[test]
    fn certificate_in_stream_with_its_namespace_and_issuer() {
        let text = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: a\n  \
                    namespace: prod\nspec:\n  secretName: a\n  issuerRef: {name: ca}\n";
        let found = from_stream(&parse(text), "default", false).unwrap();
        assert_eq!(found.targets[0].key.to_string(), "prod/a");
        assert_eq!(
            found.targets[0].issuer.as_ref().unwrap().to_string(),
            "Issuer prod/ca"
        );
    }

    #[test]
    fn certificate_and_ingress_naming_the_same_secret_count_once() {
        let cert = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: polls-tls}\n\
                    spec: {secretName: polls-tls, issuerRef: {name: x, kind: ClusterIssuer}}\n";
        let found = from_stream(&parse(&format!("{cert}---\n{INGRESS}")), "d", false).unwrap();
        assert_eq!(found.targets.len(), 2);
        assert_eq!(found.targets[0].issuer.as_ref().unwrap().name, "x");
    }

    #[test]
    fn unannotated_ingress_and_other_objects_are_ignored() {
        let text = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a}\n\
                    spec: {tls: [{secretName: s}]}\n";
        assert!(
            from_stream(&parse(text), "d", false)
                .unwrap()
                .targets
                .is_empty()
        );
    }

    #[test]
    fn bad_ingress_and_certificate_are_input_errors_with_place() {
        let no_secret = INGRESS.replace("    secretName: api-tls\n", "");
        let e = from_stream(&parse(&no_secret), "d", false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("<stdin>: document 1 (line 1)"),
            "{e}"
        );
        assert!(
            e.to_string().contains("spec.tls[1] has no secretName"),
            "{e}"
        );

        let old = "apiVersion: cert-manager.io/v1alpha2\nkind: Certificate\nmetadata: {name: a}\n";
        let e = from_stream(&parse(old), "d", false).unwrap_err();
        assert!(e.to_string().contains("cert-manager.io/v1alpha2"), "{e}");
    }

    #[test]
    fn namespace_must_match_dash_n() {
        let text = INGRESS.replace("  name: polls\n", "  name: polls\n  namespace: other\n");
        assert!(from_stream(&parse(&text), "web", false).is_ok());
        let e = from_stream(&parse(&text), "web", true).unwrap_err();
        assert!(e.to_string().contains("does not match -n \"web\""), "{e}");
    }

    /// A live Certificate as ingress-shim wrote it.
    fn live(issuer: &str, dns_names: &[&str]) -> Certificate {
        certificate(serde_json::json!({"metadata": {"name": "polls-tls"},
            "spec": {"secretName": "polls-tls", "dnsNames": dns_names,
            "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"}}}))
    }

    fn certificate(object: serde_json::Value) -> Certificate {
        serde_json::from_value(object).unwrap()
    }

    #[test]
    fn an_ingress_expects_its_issuer_hosts_and_secret() {
        let found = from_stream(&parse(INGRESS), "web", false).unwrap();
        let polls = &found.targets[0];
        assert_eq!(
            polls.spec_mismatch(&live("letsencrypt-staging", &["polls.example.com"])),
            None
        );
        assert_eq!(
            polls
                .spec_mismatch(&live("letsencrypt-prod", &["polls.example.com"]))
                .unwrap(),
            "issuer ClusterIssuer letsencrypt-prod -> letsencrypt-staging"
        );
        let mut other_secret = live("letsencrypt-staging", &["polls.example.com"]);
        other_secret.spec.secret_name = Some("old".into());
        assert_eq!(
            polls.spec_mismatch(&other_secret).unwrap(),
            "secretName old -> polls-tls"
        );

        let hosts = INGRESS.replace(
            "[polls.example.com]",
            "[www.example.com, polls.example.com, 192.0.2.1]",
        );
        let found = from_stream(&parse(&hosts), "web", false).unwrap();
        let polls = &found.targets[0];
        assert_eq!(
            polls
                .spec_mismatch(&live("letsencrypt-staging", &["polls.example.com"]))
                .unwrap(),
            "dnsNames polls.example.com -> polls.example.com, www.example.com"
        );
        // A set: order does not matter; IP addresses go to spec.ipAddresses.
        let both = live(
            "letsencrypt-staging",
            &["polls.example.com", "www.example.com"],
        );
        assert_eq!(polls.spec_mismatch(&both), None);
    }

    #[test]
    fn issuer_kind_changes_are_named_and_defaults_apply() {
        let namespaced = INGRESS.replace("cluster-issuer: letsencrypt-staging", "issuer: ca");
        let found = from_stream(&parse(&namespaced), "web", false).unwrap();
        assert_eq!(
            found.targets[0]
                .spec_mismatch(&live("letsencrypt-staging", &["polls.example.com"]))
                .unwrap(),
            "issuer ClusterIssuer letsencrypt-staging -> Issuer web/ca"
        );
        // issuerRef without kind and group is an Issuer of cert-manager.io.
        let live = certificate(serde_json::json!({"metadata": {"name": "polls-tls"},
            "spec": {"secretName": "polls-tls", "dnsNames": ["polls.example.com"],
            "issuerRef": {"name": "ca"}}}));
        assert_eq!(found.targets[0].spec_mismatch(&live), None);
    }

    #[test]
    fn a_stream_certificate_expects_its_own_spec_a_named_one_nothing() {
        let text = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: polls-tls}\n\
                    spec: {secretName: polls-tls, dnsNames: [polls.example.com], \
                    issuerRef: {name: letsencrypt-prod, kind: ClusterIssuer}}\n";
        let found = from_stream(&parse(text), "d", false).unwrap();
        let staging = live("letsencrypt-staging", &["polls.example.com"]);
        assert_eq!(
            found.targets[0].spec_mismatch(&staging).unwrap(),
            "issuer ClusterIssuer letsencrypt-staging -> letsencrypt-prod"
        );
        let named = Target::named(found.targets[0].key.clone());
        assert_eq!(named.spec_mismatch(&staging), None);
    }

    #[test]
    fn issuers_in_the_stream_are_recognised() {
        let text = "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: letsencrypt-staging}\n\
                    spec: {}\n---\n"
            .to_owned()
            + INGRESS;
        let found = from_stream(&parse(&text), "d", false).unwrap();
        let issuer = found.targets[0].issuer.as_ref().unwrap();
        assert!(issuer.is(&found.issuers_in_stream[0]));
        let namespaced = text.replace("kind: ClusterIssuer", "kind: Issuer");
        let found = from_stream(&parse(&namespaced), "d", false).unwrap();
        assert_eq!(
            found.issuers_in_stream[0].to_string(),
            "Issuer d/letsencrypt-staging"
        );
        assert!(!issuer.is(&found.issuers_in_stream[0]));
    }

    #[test]
    fn objects_that_do_not_fit_their_type_are_input_errors() {
        let bad = INGRESS.replace("[polls.example.com]", "polls.example.com");
        let e = from_stream(&parse(&bad), "d", false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().starts_with(
                "<stdin>: document 1 (line 1): Ingress/polls is not a valid Ingress: "
            ),
            "{e}"
        );
        assert!(!e.to_string().contains("polls.example.com"), "{e}");
        let beta = INGRESS.replace("networking.k8s.io/v1", "networking.k8s.io/v1beta1");
        let e = from_stream(&parse(&beta), "d", false).unwrap_err();
        assert!(e.to_string().contains("use networking.k8s.io/v1"), "{e}");
        let cert = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: a}\n\
                    spec: {dnsNames: a.example}\n";
        let e = from_stream(&parse(cert), "d", false).unwrap_err();
        assert!(
            e.to_string()
                .contains("Certificate/a is not a valid Certificate"),
            "{e}"
        );
    }
}
