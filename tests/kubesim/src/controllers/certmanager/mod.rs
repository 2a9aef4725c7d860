//! A simulated cert-manager: ingress-shim, issuers, and the issuance of a Certificate
//! through a CertificateRequest, an ACME Order and HTTP-01 Challenges into a
//! kubernetes.io/tls Secret. Every object and status is written through the API with
//! the reasons and messages real cert-manager uses, so that tools reading them
//! (certwait, `kubectl describe`, cmctl-style diagnosis) see what a cluster would show.

mod acme;
mod ingress_shim;
mod issuance;
mod issuers;
mod pki;

use std::hash::{DefaultHasher, Hash, Hasher};

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ControllerOptions;
use super::support::{already_exists, retry};

/// Creates the Let's Encrypt ClusterIssuers (Ready) and starts the controllers.
pub(crate) async fn start(client: &Client, opts: &ControllerOptions) -> kube::Result<()> {
    issuers::create_lets_encrypt(client).await?;
    issuers::spawn(client);
    ingress_shim::spawn(client);
    issuance::spawn(client, opts);
    Ok(())
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.to_owned(),
        version: "v1".to_owned(),
        api_version: format!("{group}/v1"),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

pub(crate) fn certificates() -> ApiResource {
    resource("cert-manager.io", "Certificate", "certificates")
}

pub(crate) fn certificate_requests() -> ApiResource {
    resource(
        "cert-manager.io",
        "CertificateRequest",
        "certificaterequests",
    )
}

pub(crate) fn issuers() -> ApiResource {
    resource("cert-manager.io", "Issuer", "issuers")
}

pub(crate) fn cluster_issuers() -> ApiResource {
    resource("cert-manager.io", "ClusterIssuer", "clusterissuers")
}

pub(crate) fn orders() -> ApiResource {
    resource("acme.cert-manager.io", "Order", "orders")
}

pub(crate) fn challenges() -> ApiResource {
    resource("acme.cert-manager.io", "Challenge", "challenges")
}

/// Writes `status` through the /status subresource as a merge patch, the way the
/// fixtures record cert-manager doing it, as the controller `component`.
pub(crate) async fn write_status(
    api: &Api<DynamicObject>,
    name: &str,
    component: &str,
    status: Value,
) -> kube::Result<()> {
    let patch = json!({ "status": status });
    let params = PatchParams {
        field_manager: Some(component.to_owned()),
        ..PatchParams::default()
    };
    retry(|| async { api.patch_status(name, &params, &Patch::Merge(&patch)).await }).await?;
    Ok(())
}

/// Creates `object`, or takes the one an earlier run (before a restart) created.
pub(crate) async fn create_or_get(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    component: &str,
) -> kube::Result<DynamicObject> {
    let params = PostParams {
        field_manager: Some(component.to_owned()),
        ..PostParams::default()
    };
    match retry(|| async { api.create(&params, object).await }).await {
        Err(e) if already_exists(&e) => {
            let name = object.metadata.name.as_deref().unwrap_or_default();
            retry(|| api.get(name)).await
        }
        result => result,
    }
}

pub(crate) fn dynamic(object: Value) -> DynamicObject {
    serde_json::from_value(object).expect("an object with apiVersion, kind and metadata")
}

/// A Certificate's `spec.issuerRef`; kind and group may be left out, as in the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IssuerRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
}

impl IssuerRef {
    pub(crate) fn kind(&self) -> &str {
        if self.kind.is_empty() {
            "Issuer"
        } else {
            &self.kind
        }
    }

    pub(crate) fn group(&self) -> &str {
        if self.group.is_empty() {
            "cert-manager.io"
        } else {
            &self.group
        }
    }

    /// Same issuer, whether or not the defaults are spelled out.
    pub(crate) fn same_as(&self, other: &IssuerRef) -> bool {
        self.name == other.name && self.kind() == other.kind() && self.group() == other.group()
    }
}

/// A number that stays the same for the same input across runs, for the parts of
/// generated names and URLs that cert-manager derives from a hash.
pub(crate) fn stable_number(input: &str) -> u32 {
    let mut hasher = DefaultHasher::new();
    input.hash(&mut hasher);
    hasher.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_ref_defaults_are_the_apis() {
        let bare = IssuerRef {
            name: "ca".into(),
            ..IssuerRef::default()
        };
        assert_eq!(bare.kind(), "Issuer");
        assert_eq!(bare.group(), "cert-manager.io");
        let spelled = IssuerRef {
            name: "ca".into(),
            kind: "Issuer".into(),
            group: "cert-manager.io".into(),
        };
        assert!(bare.same_as(&spelled));
        let cluster = IssuerRef {
            kind: "ClusterIssuer".into(),
            ..spelled
        };
        assert!(!bare.same_as(&cluster));
    }

    #[test]
    fn stable_numbers_are_stable() {
        assert_eq!(stable_number("polls-tls-1"), stable_number("polls-tls-1"));
        assert_ne!(stable_number("polls-tls-1"), stable_number("polls-tls-2"));
    }
}
