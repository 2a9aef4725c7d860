//! The cert-manager objects certwait reads, partially typed in kube-rs's
//! `Object<Spec, Status>` style, and where the API serves them.
//!
//! Partially typed on purpose: each struct declares only the fields certwait reads, all
//! of them optional, and serde ignores the rest. cert-manager's schemas differ between
//! releases (fields added, deprecated, moved), and an object written by an older or newer
//! cert-manager must still be read for what certwait needs rather than refused whole.
//! `metadata` and `spec` must be there, as kube's `Object` has them: the API server always
//! returns metadata, and cert-manager's webhook refuses these objects without a spec.
//! Ingresses are k8s-openapi's `networking::v1::Ingress`.

use kube::api::{ApiResource, GroupVersionKind};
use kube::core::{NotUsed, Object};
use kube::{Api, Client};
use serde::Deserialize;

pub const CERT_MANAGER_V1: &str = "cert-manager.io/v1";

pub type Certificate = Object<CertificateSpec, CertificateStatus>;
/// Its spec is not read: which Certificate it belongs to is in its metadata.
pub type CertificateRequest = Object<NotUsed, CertificateRequestStatus>;
pub type Order = Object<NotUsed, OrderStatus>;
pub type Challenge = Object<ChallengeSpec, ChallengeStatus>;
/// An `Issuer` or a `ClusterIssuer`: the same status, told apart by their resource.
pub type Issuer = Object<NotUsed, IssuerStatus>;

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct CertificateSpec {
    pub secret_name: Option<String>,
    pub dns_names: Vec<String>,
    pub issuer_ref: Option<IssuerRefSpec>,
}

/// `spec.issuerRef`; kind and group have defaults (see `target::IssuerRef`).
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct IssuerRefSpec {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub group: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct CertificateStatus {
    pub conditions: Vec<Condition>,
    /// RFC 3339, kept as written: it is shown as is and compared with the first one seen.
    pub last_failure_time: Option<String>,
    pub failed_issuance_attempts: Option<i64>,
    pub not_after: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct CertificateRequestStatus {
    pub conditions: Vec<Condition>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct IssuerStatus {
    pub conditions: Vec<Condition>,
}

/// An ACME Order's or Challenge's `state` (`pending`, `valid`, `invalid`, ...) and why.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct OrderStatus {
    pub state: Option<String>,
    pub reason: Option<String>,
}

pub type ChallengeStatus = OrderStatus;

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ChallengeSpec {
    /// `HTTP-01` or `DNS-01`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub dns_name: Option<String>,
}

/// One entry of `status.conditions`; absent text fields read as empty.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// `Ready: False, Reason: DoesNotExist, Message: ...`, as `cmctl status` prints it.
    pub fn cmctl_line(&self) -> String {
        format!(
            "{}: {}, Reason: {}, Message: {}",
            self.type_, self.status, self.reason, self.message
        )
    }
}

/// A status that carries cert-manager's conditions.
pub trait WithConditions {
    fn conditions(&self) -> &[Condition];
}

impl WithConditions for CertificateStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl WithConditions for CertificateRequestStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl WithConditions for IssuerStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

/// Every condition in `status.conditions`, in order; none while there is no status.
pub fn conditions<P: Clone, U: Clone + WithConditions>(object: &Object<P, U>) -> &[Condition] {
    object
        .status
        .as_ref()
        .map(WithConditions::conditions)
        .unwrap_or_default()
}

/// The condition of the given type in `status.conditions`, if any.
pub fn condition<'a, P: Clone, U: Clone + WithConditions>(
    object: &'a Object<P, U>,
    type_: &str,
) -> Option<&'a Condition> {
    conditions(object).iter().find(|c| c.type_ == type_)
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

pub fn certificates(client: &Client, namespace: &str) -> Api<Certificate> {
    let ar = resource("cert-manager.io", "Certificate", "certificates");
    Api::namespaced_with(client.clone(), namespace, &ar)
}

pub fn certificate_requests(client: &Client, namespace: &str) -> Api<CertificateRequest> {
    let ar = resource(
        "cert-manager.io",
        "CertificateRequest",
        "certificaterequests",
    );
    Api::namespaced_with(client.clone(), namespace, &ar)
}

pub fn orders(client: &Client, namespace: &str) -> Api<Order> {
    let ar = resource("acme.cert-manager.io", "Order", "orders");
    Api::namespaced_with(client.clone(), namespace, &ar)
}

pub fn challenges(client: &Client, namespace: &str) -> Api<Challenge> {
    let ar = resource("acme.cert-manager.io", "Challenge", "challenges");
    Api::namespaced_with(client.clone(), namespace, &ar)
}

/// `Issuer` in `namespace`, or `ClusterIssuer`.
pub fn issuers(client: &Client, kind: &str, namespace: &str) -> Api<Issuer> {
    if kind == "ClusterIssuer" {
        Api::all_with(
            client.clone(),
            &resource("cert-manager.io", kind, "clusterissuers"),
        )
    } else {
        Api::namespaced_with(
            client.clone(),
            namespace,
            &resource("cert-manager.io", kind, "issuers"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_and_missing_fields_do_not_stop_reading() {
        let cert: Certificate = serde_json::from_value(json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "a"},
            "spec": {"secretName": "a", "commonName": "a.example", "privateKey": {"rotationPolicy": "Always"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-24T17:49:10Z"}],
                       "revision": 3, "nextPrivateKeySecretName": "a-xyz"}
        }))
        .unwrap();
        assert_eq!(cert.spec.secret_name.as_deref(), Some("a"));
        assert!(cert.spec.dns_names.is_empty() && cert.spec.issuer_ref.is_none());
        let ready = condition(&cert, "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", ""));
        assert_eq!(ready.observed_generation, None);

        let issuer: Issuer =
            serde_json::from_value(json!({"metadata": {"name": "ca"}, "spec": {"ca": {}}}))
                .unwrap();
        assert!(conditions(&issuer).is_empty());
    }
}
