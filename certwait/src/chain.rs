//! Why a certificate is not issued: the chain `cmctl status certificate` walks.
//!
//! Certificate (conditions) -> its newest CertificateRequest (conditions) -> the ACME
//! Order (state, reason) -> each Challenge (type, domain, state, reason), plus the
//! issuer's Ready condition, and hints for the failures people hit most.

use crate::api;
use crate::certmanager::{
    self, Certificate, CertificateRequest, Challenge, Condition, Issuer, Order, condition,
    conditions,
};
use crate::target::{CertKey, IssuerRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::core::Object;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::{Debug, Write};

/// The issuer as found on the server.
#[derive(Debug, Clone)]
pub enum IssuerState {
    Found(Box<Issuer>),
    Missing,
    Unreadable(String),
}

impl IssuerState {
    /// `None` when the issuer is Ready, else what is wrong with it.
    pub fn problem(&self, issuer: &IssuerRef) -> Option<String> {
        match self {
            IssuerState::Missing => Some(format!("{issuer} does not exist")),
            IssuerState::Unreadable(why) => Some(format!("cannot read {issuer}: {why}")),
            IssuerState::Found(object) => match condition(object, "Ready") {
                Some(ready) if ready.status == "True" => None,
                Some(ready) => Some(format!(
                    "{issuer} is not Ready ({}: {})",
                    ready.reason, ready.message
                )),
                None => Some(format!("{issuer} has no Ready condition yet")),
            },
        }
    }
}

/// Everything read about one certificate, for [`render`].
#[derive(Debug, Clone)]
pub struct Chain {
    pub key: CertKey,
    /// `None`: the Certificate does not exist.
    pub cert: Option<Certificate>,
    pub issuer: Option<(IssuerRef, IssuerState)>,
    pub request: Option<CertificateRequest>,
    pub order: Option<Order>,
    pub challenges: Vec<Challenge>,
    /// Parts of the chain that could not be read, and why.
    pub unreadable: Vec<String>,
}

/// Reads the chain from the server. Best effort: what cannot be read is named in
/// `unreadable`, and the ACME part is skipped on clusters without those CRDs.
pub async fn gather(
    client: &Client,
    key: &CertKey,
    cert: Option<&Certificate>,
    issuer: Option<&IssuerRef>,
) -> Chain {
    let issuer = match cert.and_then(|c| IssuerRef::of_certificate(c, &key.namespace)) {
        Some(from_spec) => Some(from_spec),
        None => issuer.cloned(),
    };
    let mut chain = Chain {
        key: key.clone(),
        cert: cert.cloned(),
        issuer: None,
        request: None,
        order: None,
        challenges: Vec::new(),
        unreadable: Vec::new(),
    };
    if let Some(issuer) = issuer.filter(IssuerRef::is_cert_manager) {
        let state = issuer_state(client, &issuer).await;
        chain.issuer = Some((issuer, state));
    }
    let Some(cert) = cert else { return chain };
    let ns = &key.namespace;
    let mut unreadable = Vec::new();
    let requests = list(
        certmanager::certificate_requests(client, ns),
        "CertificateRequests",
        &mut unreadable,
    )
    .await;
    chain.request = newest(requests.iter().filter(|r| belongs_to_certificate(r, cert))).cloned();
    if let Some(request) = &chain.request {
        let orders = list(certmanager::orders(client, ns), "Orders", &mut unreadable).await;
        chain.order = newest(orders.iter().filter(|o| is_owned_by(&o.metadata, request))).cloned();
    }
    if let Some(order) = &chain.order {
        let challenges = list(
            certmanager::challenges(client, ns),
            "Challenges",
            &mut unreadable,
        )
        .await;
        chain.challenges = challenges
            .into_iter()
            .filter(|c| is_owned_by(&c.metadata, order))
            .collect();
    }
    chain.unreadable = unreadable;
    chain
}

/// Reads an issuer's state, retrying transient errors.
pub async fn issuer_state(client: &Client, issuer: &IssuerRef) -> IssuerState {
    let issuers = certmanager::issuers(client, &issuer.kind, &issuer.namespace);
    match api::retry(|| issuers.get_opt(&issuer.name)).await {
        Ok(Some(object)) => IssuerState::Found(Box::new(object)),
        Ok(None) => IssuerState::Missing,
        Err(e) => IssuerState::Unreadable(api::describe(&e)),
    }
}

async fn list<K>(api: kube::Api<K>, what: &str, unreadable: &mut Vec<String>) -> Vec<K>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let params = ListParams::default();
    let list = api::retry(|| api.list(&params)).await;
    match list {
        Ok(list) => list.items,
        // The ACME CRDs are absent when cert-manager runs without ACME issuers.
        Err(e) if api::status_code(&e) == Some(404) => Vec::new(),
        Err(e) => {
            unreadable.push(format!("cannot list {what}: {}", api::describe(&e)));
            Vec::new()
        }
    }
}

/// A CertificateRequest belongs to a Certificate when the Certificate owns it, or (for
/// requests made by older cert-manager or by hand) when it carries the annotation
/// cert-manager sets.
pub fn belongs_to_certificate(request: &CertificateRequest, cert: &Certificate) -> bool {
    is_owned_by(&request.metadata, cert)
        || annotation(&request.metadata, "cert-manager.io/certificate-name")
            == cert.metadata.name.as_deref()
}

/// An object with `metadata` lists `owner` in its ownerReferences (by uid, or by kind and
/// name when the owner has no uid, as in hand-written fixtures).
pub fn is_owned_by<P: Clone, U: Clone>(object: &ObjectMeta, owner: &Object<P, U>) -> bool {
    let uid = owner.metadata.uid.as_deref();
    let name = owner.metadata.name.as_deref();
    let kind = owner.types.as_ref().map(|t| t.kind.as_str());
    object.owner_references.iter().flatten().any(|r| match uid {
        Some(uid) => r.uid == uid,
        None => Some(r.name.as_str()) == name && kind.is_none_or(|k| r.kind == k),
    })
}

/// The most recently created object; on a tie, the higher certificate revision.
pub fn newest<'a, K: Resource + 'a>(objects: impl Iterator<Item = &'a K>) -> Option<&'a K> {
    objects.max_by_key(|o| {
        let revision = annotation(o.meta(), "cert-manager.io/certificate-revision")
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or_default();
        (o.meta().creation_timestamp.clone(), revision)
    })
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The chain as text, indented under a heading, ending with hints.
pub fn render(chain: &Chain) -> String {
    let mut out = String::new();
    let key = &chain.key;
    let Some(cert) = &chain.cert else {
        let _ = writeln!(out, "Certificate {key}: does not exist");
        render_issuer(&mut out, chain);
        render_hints(&mut out, chain);
        return out;
    };
    let _ = writeln!(out, "Certificate {key}:");
    render_conditions(&mut out, "  ", conditions(cert));
    if !cert.spec.dns_names.is_empty() {
        let _ = writeln!(out, "  DNS Names: {}", cert.spec.dns_names.join(", "));
    }
    if let Some(status) = &cert.status
        && let Some(failed) = &status.last_failure_time
    {
        let attempts = status.failed_issuance_attempts.unwrap_or(1);
        let _ = writeln!(
            out,
            "  Last failure: {failed} (failed attempts: {attempts})"
        );
    }
    render_issuer(&mut out, chain);
    match &chain.request {
        None => {
            let _ = writeln!(out, "CertificateRequest: none");
        }
        Some(request) => {
            let _ = writeln!(out, "CertificateRequest: {}", name_of(request));
            render_conditions(&mut out, "  ", conditions(request));
        }
    }
    if let Some(order) = &chain.order {
        let _ = writeln!(out, "Order: {}", name_of(order));
        let status = order.status.as_ref();
        let _ = writeln!(
            out,
            "  State: {}{}",
            status.and_then(|s| s.state.as_deref()).unwrap_or("<none>"),
            reason_suffix(status)
        );
        let _ = writeln!(out, "Challenges:");
        if chain.challenges.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for challenge in &chain.challenges {
            let status = challenge.status.as_ref();
            let _ = writeln!(
                out,
                "  - {}: {}, Domain: {}, State: {}{}",
                name_of(challenge),
                challenge.spec.type_.as_deref().unwrap_or("?"),
                challenge.spec.dns_name.as_deref().unwrap_or("?"),
                status.and_then(|s| s.state.as_deref()).unwrap_or("<none>"),
                reason_suffix(status)
            );
        }
    }
    for what in &chain.unreadable {
        let _ = writeln!(out, "({what})");
    }
    render_hints(&mut out, chain);
    out
}

fn render_issuer(out: &mut String, chain: &Chain) {
    let Some((issuer, state)) = &chain.issuer else {
        return;
    };
    let _ = writeln!(out, "Issuer: {issuer}");
    match state {
        IssuerState::Found(object) => {
            let ready: Vec<Condition> = conditions(object)
                .iter()
                .filter(|c| c.type_ == "Ready")
                .cloned()
                .collect();
            if ready.is_empty() {
                let _ = writeln!(out, "  no Ready condition");
            }
            render_conditions(out, "  ", &ready);
        }
        IssuerState::Missing => {
            let _ = writeln!(out, "  not found");
        }
        IssuerState::Unreadable(why) => {
            let _ = writeln!(out, "  cannot read it: {why}");
        }
    }
}

fn render_conditions(out: &mut String, indent: &str, conditions: &[Condition]) {
    if conditions.is_empty() {
        let _ = writeln!(out, "{indent}Conditions: none");
    }
    for c in conditions {
        let _ = writeln!(out, "{indent}{}", c.cmctl_line());
    }
}

fn render_hints(out: &mut String, chain: &Chain) {
    for hint in hints(chain) {
        let _ = writeln!(out, "Hint: {hint}");
    }
}

/// What to do about the failures people hit most, from what the chain shows.
pub fn hints(chain: &Chain) -> Vec<String> {
    let mut hints = Vec::new();
    if let Some((issuer, state)) = &chain.issuer {
        match state {
            IssuerState::Missing => hints.push(format!(
                "create the {issuer} (the tutorial's staging_issuer.yaml / prod_issuer.yaml), \
                 or fix the Ingress annotation or the Certificate's issuerRef"
            )),
            IssuerState::Found(_) if state.problem(issuer).is_some() => hints.push(format!(
                "`kubectl describe {} {}` shows why the issuer is not Ready (ACME account \
                 registration: e-mail, server URL, network access to Let's Encrypt)",
                issuer.kind.to_lowercase(),
                issuer.name
            )),
            _ => {}
        }
    }
    let Some(cert) = &chain.cert else {
        hints.push(
            "the Certificate was not created: for an Ingress, ingress-shim creates it from the \
             cert-manager.io/cluster-issuer annotation and spec.tls[].secretName; check \
             `kubectl describe ingress` and that cert-manager runs (`kubectl -n cert-manager get pods`)"
                .to_owned(),
        );
        return hints;
    };
    if chain.request.is_none() && condition(cert, "Issuing").is_some_and(|c| c.status == "True") {
        hints.push(
            "no CertificateRequest yet: is the cert-manager controller running? \
             (`kubectl -n cert-manager get pods`, `kubectl -n cert-manager logs deploy/cert-manager`)"
                .to_owned(),
        );
    }
    let acme_reasons: Vec<&str> = chain
        .order
        .iter()
        .map(|o| &o.status)
        .chain(chain.challenges.iter().map(|c| &c.status))
        .filter_map(|status| status.as_ref()?.reason.as_deref())
        .collect();
    if acme_reasons
        .iter()
        .any(|r| r.contains("rateLimited") || r.contains("too many"))
    {
        hints.push(
            "Let's Encrypt rate limit: use the staging issuer until everything works, then \
             switch to production once"
                .to_owned(),
        );
    }
    for challenge in &chain.challenges {
        let status = challenge.status.as_ref();
        let state = status.and_then(|s| s.state.as_deref()).unwrap_or_default();
        let reason = status.and_then(|s| s.reason.as_deref()).unwrap_or_default();
        if matches!(state, "valid" | "") || reason.is_empty() {
            continue;
        }
        let domain = challenge.spec.dns_name.as_deref().unwrap_or("?");
        let hint = if challenge.spec.type_.as_deref() == Some("HTTP-01") {
            format!(
                "Let's Encrypt could not fetch http://{domain}/.well-known/acme-challenge/...: \
                 the DNS record of {domain} must point at the ingress controller's external IP \
                 (`kubectl get svc -n ingress-nginx`) and port 80 must reach it"
            )
        } else {
            format!(
                "the DNS-01 record for {domain} was not found: check the solver's DNS provider credentials"
            )
        };
        if !hints.contains(&hint) {
            hints.push(hint);
        }
    }
    hints
}

/// `, Reason: ...` when an Order or Challenge gives one.
fn reason_suffix(status: Option<&certmanager::OrderStatus>) -> String {
    match status.and_then(|s| s.reason.as_deref()).unwrap_or_default() {
        "" => String::new(),
        reason => format!(", Reason: {reason}"),
    }
}

fn name_of<K: Resource>(object: &K) -> &str {
    object.meta().name.as_deref().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn typed<K: DeserializeOwned>(object: Value) -> K {
        serde_json::from_value(object).unwrap()
    }

    fn key() -> CertKey {
        CertKey {
            namespace: "default".into(),
            name: "polls-tls".into(),
        }
    }

    fn staging() -> IssuerRef {
        IssuerRef {
            kind: "ClusterIssuer".into(),
            name: "letsencrypt-staging".into(),
            group: "cert-manager.io".into(),
            namespace: "default".into(),
        }
    }

    fn failed_cert() -> Certificate {
        typed(json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "polls-tls", "namespace": "default", "uid": "cert-uid", "generation": 1},
            "spec": {"secretName": "polls-tls", "dnsNames": ["polls.example.com"],
                     "issuerRef": {"name": "letsencrypt-staging", "kind": "ClusterIssuer", "group": "cert-manager.io"}},
            "status": {"lastFailureTime": "2026-11-24T17:50:00Z", "failedIssuanceAttempts": 1, "conditions": [
                {"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "Issuing certificate as Secret does not exist", "observedGeneration": 1},
                {"type": "Issuing", "status": "False", "reason": "Failed", "message": "The certificate request has failed to complete and will be retried: Failed to wait for order resource \"polls-tls-1-1234\" to become ready: order is in \"invalid\" state", "observedGeneration": 1}
            ]}
        }))
    }

    fn request(name: &str, created: &str, owner_uid: &str) -> CertificateRequest {
        typed(json!({
            "kind": "CertificateRequest",
            "metadata": {"name": name, "uid": format!("{name}-uid"), "creationTimestamp": created,
                         "ownerReferences": [{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "name": "polls-tls", "uid": owner_uid}]},
            "spec": {},
            "status": {"conditions": [
                {"type": "Approved", "status": "True", "reason": "cert-manager.io", "message": "Certificate request has been approved by cert-manager.io"},
                {"type": "Ready", "status": "False", "reason": "Failed", "message": "Failed to wait for order resource \"polls-tls-1-1234\" to become ready: order is in \"invalid\" state"}
            ]}
        }))
    }

    fn failed_chain() -> Chain {
        let issuer = typed(
            json!({"kind": "ClusterIssuer", "metadata": {"name": "letsencrypt-staging"}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "ACMEAccountRegistered", "message": "The ACME account was registered with the ACME server"}]}}),
        );
        let order = typed(
            json!({"kind": "Order", "metadata": {"name": "polls-tls-1-1234", "uid": "order-uid"},
            "spec": {}, "status": {"state": "invalid", "reason": ""}}),
        );
        let challenge = typed(
            json!({"kind": "Challenge", "metadata": {"name": "polls-tls-1-1234-5678"},
            "spec": {"type": "HTTP-01", "dnsName": "polls.example.com"},
            "status": {"state": "invalid", "reason": "Waiting for HTTP-01 challenge propagation: wrong status code '404', expected '200'"}}),
        );
        Chain {
            key: key(),
            cert: Some(failed_cert()),
            issuer: Some((staging(), IssuerState::Found(Box::new(issuer)))),
            request: Some(request("polls-tls-1", "2026-11-24T17:49:11Z", "cert-uid")),
            order: Some(order),
            challenges: vec![challenge],
            unreadable: Vec::new(),
        }
    }

    #[test]
    fn renders_the_chain_like_cmctl_status() {
        let text = render(&failed_chain());
        let expected = "\
Certificate default/polls-tls:
  Ready: False, Reason: DoesNotExist, Message: Issuing certificate as Secret does not exist
  Issuing: False, Reason: Failed, Message: The certificate request has failed to complete and will be retried: Failed to wait for order resource \"polls-tls-1-1234\" to become ready: order is in \"invalid\" state
  DNS Names: polls.example.com
  Last failure: 2026-11-24T17:50:00Z (failed attempts: 1)
Issuer: ClusterIssuer letsencrypt-staging
  Ready: True, Reason: ACMEAccountRegistered, Message: The ACME account was registered with the ACME server
CertificateRequest: polls-tls-1
  Approved: True, Reason: cert-manager.io, Message: Certificate request has been approved by cert-manager.io
  Ready: False, Reason: Failed, Message: Failed to wait for order resource \"polls-tls-1-1234\" to become ready: order is in \"invalid\" state
Order: polls-tls-1-1234
  State: invalid
Challenges:
  - polls-tls-1-1234-5678: HTTP-01, Domain: polls.example.com, State: invalid, Reason: Waiting for HTTP-01 challenge propagation: wrong status code '404', expected '200'
Hint: Let's Encrypt could not fetch http://polls.example.com/.well-known/acme-challenge/...: the DNS record of polls.example.com must point at the ingress controller's external IP (`kubectl get svc -n ingress-nginx`) and port 80 must reach it
";
        assert_eq!(text, expected);
    }

    #[test]
    fn missing_certificate_and_issuer_get_hints() {
        let chain = Chain {
            key: key(),
            cert: None,
            issuer: Some((staging(), IssuerState::Missing)),
            request: None,
            order: None,
            challenges: Vec::new(),
            unreadable: Vec::new(),
        };
        let text = render(&chain);
        assert!(
            text.starts_with("Certificate default/polls-tls: does not exist\n"),
            "{text}"
        );
        assert!(
            text.contains("Issuer: ClusterIssuer letsencrypt-staging\n  not found\n"),
            "{text}"
        );
        assert!(
            text.contains("Hint: create the ClusterIssuer letsencrypt-staging"),
            "{text}"
        );
        assert!(
            text.contains("Hint: the Certificate was not created"),
            "{text}"
        );
    }

    #[test]
    fn newest_request_owned_or_annotated_wins() {
        let cert = failed_cert();
        let old = request("polls-tls-1", "2026-11-24T17:49:11Z", "cert-uid");
        let new = request("polls-tls-2", "2026-11-24T18:49:11Z", "cert-uid");
        let other = request("other-9", "2026-11-25T00:00:00Z", "other-uid");
        let mut annotated = request("polls-tls-3", "2026-11-24T19:00:00Z", "nobody");
        annotated.metadata.annotations = Some(
            [(
                "cert-manager.io/certificate-name".into(),
                "polls-tls".into(),
            )]
            .into(),
        );
        let all = [old.clone(), new.clone(), other];
        let pick = newest(all.iter().filter(|r| belongs_to_certificate(r, &cert)));
        assert_eq!(name_of(pick.unwrap()), "polls-tls-2");
        let all = [old, new, annotated];
        let pick = newest(all.iter().filter(|r| belongs_to_certificate(r, &cert)));
        assert_eq!(name_of(pick.unwrap()), "polls-tls-3");
    }

    #[test]
    fn issuer_problems() {
        let not_ready = IssuerState::Found(Box::new(typed(
            json!({"metadata": {}, "spec": {}, "status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "ErrRegisterACMEAccount", "message": "Failed to register ACME account"}]}}),
        )));
        assert_eq!(
            not_ready.problem(&staging()).unwrap(),
            "ClusterIssuer letsencrypt-staging is not Ready (ErrRegisterACMEAccount: Failed to register ACME account)"
        );
        assert!(
            IssuerState::Missing
                .problem(&staging())
                .unwrap()
                .contains("does not exist")
        );
        let ready = IssuerState::Found(Box::new(typed(json!({"metadata": {}, "spec": {},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}))));
        assert!(ready.problem(&staging()).is_none());
    }

    #[test]
    fn no_request_while_issuing_points_at_the_controller() {
        let mut chain = failed_chain();
        chain.request = None;
        chain.order = None;
        chain.challenges.clear();
        let cert = chain.cert.as_mut().unwrap();
        cert.status.as_mut().unwrap().conditions[1].status = "True".into();
        let text = render(&chain);
        assert!(text.contains("CertificateRequest: none"), "{text}");
        assert!(
            text.contains("is the cert-manager controller running?"),
            "{text}"
        );
    }
}
