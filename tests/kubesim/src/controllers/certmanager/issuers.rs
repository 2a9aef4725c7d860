//! Issuers: the two Let's Encrypt ClusterIssuers of the tutorial, made Ready at start;
//! Ready for any ACME, selfSigned or CA issuer a user adds; and the lookup a
//! CertificateRequest does, with cert-manager's own messages when it finds nothing.

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::pki::Authority;
use super::{IssuerRef, cluster_issuers, issuers, stable_number, write_status};
use crate::controllers::support::{
    Change, Conditions, change, find_condition, report, retry, spawn_watch,
};

/// The ClusterIssuers of the tutorial's prerequisite, as `kubesim serve --cert-manager`
/// creates them.
pub(crate) const LETS_ENCRYPT: [(&str, &str); 2] = [
    (
        "letsencrypt-staging",
        "https://acme-staging-v02.api.letsencrypt.org/directory",
    ),
    (
        "letsencrypt-prod",
        "https://acme-v02.api.letsencrypt.org/directory",
    ),
];

const EMAIL: &str = "admin@your_domain.com";

/// Creates (or, from a saved state, updates) the Let's Encrypt ClusterIssuers and
/// registers their ACME accounts, so that they are Ready before anyone connects.
pub(crate) async fn create_lets_encrypt(client: &Client) -> kube::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &cluster_issuers());
    for (name, server) in LETS_ENCRYPT {
        let issuer = json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": {"name": name},
            "spec": {"acme": {
                "email": EMAIL,
                "server": server,
                "privateKeySecretRef": {"name": name},
                "solvers": [{"http01": {"ingress": {"class": "nginx"}}}],
            }},
        });
        let params = PatchParams::apply("kubesim").force();
        let applied =
            retry(|| async { api.patch(name, &params, &Patch::Apply(&issuer)).await }).await?;
        make_ready(&api, &applied, "cert-manager-clusterissuers").await?;
    }
    Ok(())
}

/// Watches Issuers and ClusterIssuers and sets Ready on those cert-manager could set up.
pub(crate) fn spawn(client: &Client) {
    for (api, manager) in [
        (
            Api::<DynamicObject>::all_with(client.clone(), &issuers()),
            "cert-manager-issuers",
        ),
        (
            Api::all_with(client.clone(), &cluster_issuers()),
            "cert-manager-clusterissuers",
        ),
    ] {
        let client = client.clone();
        spawn_watch(api, move |event| {
            let client = client.clone();
            async move {
                let Some(Change::Applied(issuer)) = change(event) else {
                    return;
                };
                let ar = if issuer.metadata.namespace.is_some() {
                    issuers()
                } else {
                    cluster_issuers()
                };
                let api: Api<DynamicObject> = match &issuer.metadata.namespace {
                    Some(ns) => Api::namespaced_with(client, ns, &ar),
                    None => Api::all_with(client, &ar),
                };
                if let Err(e) = make_ready(&api, &issuer, manager).await {
                    let name = issuer.metadata.name.clone().unwrap_or_default();
                    report(manager, &name, "setting Ready", &e);
                }
            }
        });
    }
}

/// Sets the Ready condition cert-manager sets once an issuer is usable: ACME account
/// registered, selfSigned always, CA keypair verified. Other kinds are left alone.
async fn make_ready(
    api: &Api<DynamicObject>,
    issuer: &DynamicObject,
    manager: &str,
) -> kube::Result<()> {
    let generation = issuer.metadata.generation.unwrap_or(1);
    let status = &issuer.data["status"];
    // Set once per generation, True or False (a False one is not rewritten forever).
    let current =
        find_condition(status, "Ready").is_some_and(|c| c["observedGeneration"] == generation);
    if current || issuer.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let name = issuer.metadata.name.clone().unwrap_or_default();
    let spec = &issuer.data["spec"];
    let mut new_status = json!({});
    let mut conditions = Conditions::default();
    if let Some(message) = refused_registration(spec) {
        // Let's Encrypt refuses the account: cert-manager says why, and tries again later.
        conditions.set(
            "Ready",
            "False",
            "ErrRegisterACMEAccount",
            &message,
            json!({"observedGeneration": generation}),
        );
        new_status["conditions"] = conditions.to_json();
        return write_status(api, &name, manager, new_status).await;
    }
    let (reason, message) = if let Some(server) = spec["acme"]["server"].as_str() {
        new_status["acme"] = json!({
            "uri": format!("{}/acme/acct/{}", acme_base(server), stable_number(&name)),
            "lastRegisteredEmail": spec["acme"]["email"],
            "lastPrivateKeyHash": format!("{:016x}{:016x}=", stable_number(&name), stable_number(server)),
        });
        (
            "ACMEAccountRegistered",
            "The ACME account was registered with the ACME server",
        )
    } else if spec.get("selfSigned").is_some() {
        ("IsReady", "")
    } else if spec.get("ca").is_some() {
        ("KeyPairVerified", "Signing CA verified")
    } else {
        return Ok(());
    };
    conditions.set(
        "Ready",
        "True",
        reason,
        message,
        json!({"observedGeneration": generation}),
    );
    new_status["conditions"] = conditions.to_json();
    write_status(api, &name, manager, new_status).await
}

/// Let's Encrypt's refusal of an ACME account, as cert-manager reports it: an email
/// whose domain has no public suffix (`ops@example.invalid`) stands for any such refusal.
fn refused_registration(spec: &Value) -> Option<String> {
    let email = spec["acme"]["email"].as_str()?;
    let domain = email.rsplit_once('@').map_or(email, |(_, d)| d);
    domain.ends_with(".invalid").then(|| {
        "Failed to register ACME account: 400 urn:ietf:params:acme:error:invalidContact: \
         Error creating new account :: contact email has invalid domain: Domain name does \
         not end with a valid public suffix (TLD)"
            .to_owned()
    })
}

/// `https://host/directory` -> `https://host`, the base of every ACME URL.
pub(crate) fn acme_base(server: &str) -> &str {
    server.trim_end_matches('/').trim_end_matches("/directory")
}

/// What a CertificateRequest finds when it looks for its issuer.
pub(crate) enum Lookup {
    /// Not there, with cert-manager's message for it.
    Missing(String),
    NotReady,
    /// An issuer of another group: its own controller would sign, and none runs here.
    External,
    Ready(Issuer),
}

pub(crate) struct Issuer {
    /// The ACME server URL, for ACME issuers.
    pub acme_server: Option<String>,
    /// The first solver, copied into each Challenge as cert-manager does.
    pub solver: Value,
    pub authority: Authority,
}

pub(crate) async fn lookup(
    client: &Client,
    issuer_ref: &IssuerRef,
    namespace: &str,
) -> kube::Result<Lookup> {
    if issuer_ref.group() != "cert-manager.io" {
        return Ok(Lookup::External);
    }
    let kind = issuer_ref.kind();
    let api: Api<DynamicObject> = if kind == "ClusterIssuer" {
        Api::all_with(client.clone(), &cluster_issuers())
    } else {
        Api::namespaced_with(client.clone(), namespace, &issuers())
    };
    let Some(issuer) = retry(|| api.get_opt(&issuer_ref.name)).await? else {
        return Ok(Lookup::Missing(format!(
            "Referenced {kind:?} not found: {}.cert-manager.io {:?} not found",
            kind.to_lowercase(),
            issuer_ref.name
        )));
    };
    if !find_condition(&issuer.data["status"], "Ready").is_some_and(|c| c["status"] == "True") {
        return Ok(Lookup::NotReady);
    }
    let spec = &issuer.data["spec"];
    let acme_server = spec["acme"]["server"].as_str().map(str::to_owned);
    let authority = match &acme_server {
        Some(server) => Authority::lets_encrypt(server),
        None => Authority::local(&issuer_ref.name),
    };
    Ok(Lookup::Ready(Issuer {
        acme_server,
        solver: spec["acme"]["solvers"][0].clone(),
        authority,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acme_urls_hang_off_the_directory_host() {
        assert_eq!(
            acme_base(LETS_ENCRYPT[0].1),
            "https://acme-staging-v02.api.letsencrypt.org"
        );
        assert_eq!(
            acme_base("https://acme.example/directory/"),
            "https://acme.example"
        );
    }
}
