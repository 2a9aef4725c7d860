//! Issuance of a Certificate, doing in one task what cert-manager's certificates-trigger,
//! -readiness, -key-manager, -request-manager and -issuing controllers, the approver,
//! the ACME CertificateRequest issuer and the orders and challenges controllers do:
//!
//! - at once: Ready=False / Issuing=True (reason DoesNotExist, IncorrectIssuer or
//!   RequestChanged), a temporary private key Secret, CertificateRequest `<cert>-<revision>`
//!   (approved), then for an ACME issuer an Order (pending) and an HTTP-01 Challenge per
//!   DNS name (pending);
//! - `--cert-delay` after the Certificate was seen: Challenges and Order valid, the
//!   CertificateRequest Ready (Issued), the kubernetes.io/tls Secret, and the Certificate
//!   Ready=True with notBefore/notAfter/renewalTime/revision;
//! - or with `--cert-fail challenge`: Challenges and Order invalid, the request Failed and
//!   the Certificate Issuing=False reason Failed with lastFailureTime;
//! - an issuer that does not exist (or is not Ready) leaves the request Pending with
//!   cert-manager's message until it appears.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use rand::Rng;
use rand::distr::Alphanumeric;
use rcgen::KeyPair;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use super::acme::{ACME_ISSUER, Order};
use super::issuers::{Issuer, Lookup, lookup};
use super::pki::{Authorities, Issued, VALIDITY, csr_pem};
use super::{
    IssuerRef, certificate_requests, certificates, challenges, create_or_get, dynamic, orders,
    write_status,
};
use crate::controllers::options::{CertFailure, ControllerOptions};
use crate::controllers::support::{
    Change, Conditions, Recorder, change, controller_ref, delete_controlled, find_condition, key,
    now, object_ref, report, retry, spawn_watch,
};

const READY_MESSAGE: &str = "Certificate is up to date and has not expired";
const NOT_READY: &str = "Referenced issuer does not have a Ready status condition";
/// The CertificateRequest controller for other issuers, as Event source and field manager.
const ISSUER: &str = "cert-manager-certificaterequests-issuer";
/// How often a request waiting for its issuer looks again.
const ISSUER_POLL: Duration = Duration::from_millis(250);

pub(crate) fn spawn(client: &Client, opts: &ControllerOptions) {
    let controller = Arc::new(Controller {
        client: client.clone(),
        delay: opts.cert_delay,
        failure: opts.cert_fail,
        authorities: Authorities::default(),
        work: Mutex::default(),
    });
    let for_certificates = controller.clone();
    spawn_watch(
        Api::<DynamicObject>::all_with(client.clone(), &certificates()),
        move |event| {
            let controller = for_certificates.clone();
            async move {
                match change(event) {
                    Some(Change::Applied(certificate)) => controller.consider(certificate),
                    Some(Change::Deleted(certificate)) => controller.deleted(&certificate).await,
                    None => {}
                }
            }
        },
    );
    // A deleted tls Secret is issued again, as cert-manager's trigger controller does.
    spawn_watch(Api::<Secret>::all(client.clone()), move |event| {
        let controller = controller.clone();
        async move {
            if let Some(Change::Deleted(secret)) = change(event) {
                controller.secret_deleted(&secret).await;
            }
        }
    });
}

struct Controller {
    client: Client,
    delay: Duration,
    failure: Option<CertFailure>,
    authorities: Authorities,
    /// The generation of each Certificate (namespace/name) being or last worked on.
    work: Mutex<HashMap<String, Tracked>>,
}

struct Tracked {
    uid: String,
    generation: i64,
    task: Option<AbortHandle>,
}

impl Controller {
    /// Starts an issuance for a Certificate generation not yet handled. Our own status
    /// writes come back through the watch and are recognised by uid and generation.
    fn consider(self: &Arc<Self>, certificate: DynamicObject) {
        if certificate.metadata.deletion_timestamp.is_some() {
            return self.forget(&certificate);
        }
        let generation = certificate.metadata.generation.unwrap_or(1);
        let status = &certificate.data["status"];
        let (handled, idle) = match self.work.lock().expect("work lock").get(&key(&certificate)) {
            Some(t)
                if Some(&t.uid) == certificate.metadata.uid.as_ref()
                    && t.generation == generation =>
            {
                (true, t.task.as_ref().is_none_or(AbortHandle::is_finished))
            }
            _ => (false, true),
        };
        if !handled {
            let needed = !settled(status, generation);
            self.track(certificate, needed);
        } else if idle && manually_triggered(status) {
            self.track(certificate, true);
        }
    }

    /// Records the Certificate's generation as handled, replacing any issuance under
    /// way for it, and starts a new one if `issue`.
    fn track(self: &Arc<Self>, certificate: DynamicObject, issue: bool) {
        let tracked = Tracked {
            uid: certificate.metadata.uid.clone().unwrap_or_default(),
            generation: certificate.metadata.generation.unwrap_or(1),
            task: None,
        };
        let key = key(&certificate);
        let task = issue.then(|| {
            let controller = self.clone();
            tokio::spawn(async move { controller.issue(certificate).await }).abort_handle()
        });
        let mut work = self.work.lock().expect("work lock");
        if let Some(Tracked {
            task: Some(old), ..
        }) = work.insert(key, Tracked { task, ..tracked })
        {
            old.abort();
        }
    }

    async fn deleted(&self, certificate: &DynamicObject) {
        self.forget(certificate);
        if let Err(e) = self.collect_garbage(certificate).await {
            report(
                "garbage-collector",
                &key(certificate),
                "deleting dependents",
                &e,
            );
        }
    }

    async fn secret_deleted(self: &Arc<Self>, secret: &Secret) {
        let annotations = secret.metadata.annotations.as_ref();
        let Some(name) = annotations.and_then(|a| a.get("cert-manager.io/certificate-name")) else {
            return;
        };
        let namespace = secret.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &certificates());
        match retry(|| api.get_opt(name)).await {
            Ok(Some(certificate)) => self.track(certificate, true),
            Ok(None) => {}
            Err(e) => report("cert-manager", &key(secret), "reading its Certificate", &e),
        }
    }

    fn forget(&self, certificate: &DynamicObject) {
        if let Some(Tracked {
            task: Some(task), ..
        }) = self
            .work
            .lock()
            .expect("work lock")
            .remove(&key(certificate))
        {
            task.abort();
        }
    }

    /// The garbage collector's part (none runs here): what a deleted Certificate
    /// controlled goes with it, down the chain request -> Order -> Challenges.
    async fn collect_garbage(&self, certificate: &DynamicObject) -> kube::Result<()> {
        let namespace = certificate.metadata.namespace.clone().unwrap_or_default();
        let mut owners = vec![certificate.metadata.uid.clone().unwrap_or_default()];
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        delete_controlled(&secrets, &owners, &[]).await?;
        for resource in [certificate_requests(), orders(), challenges()] {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &namespace, &resource);
            owners = delete_controlled(&api, &owners, &[]).await?;
        }
        Ok(())
    }

    async fn issue(&self, certificate: DynamicObject) {
        let id = key(&certificate);
        match Attempt::new(self, certificate) {
            Ok(attempt) => {
                if let Err(e) = attempt.run().await {
                    report("cert-manager", &id, "issuing", &e);
                }
            }
            Err(e) => report("cert-manager", &id, "reading spec", &e),
        }
    }
}

/// Someone (`cmctl renew`) asked for a new certificate now. No write of ours uses
/// this reason, so it never restarts an issuance by itself.
fn manually_triggered(status: &Value) -> bool {
    find_condition(status, "Issuing")
        .is_some_and(|c| c["status"] == "True" && c["reason"] == "ManuallyTriggered")
}

/// Whether cert-manager is done with this generation: issued, or failed (its next try
/// would be an hour away).
fn settled(status: &Value, generation: i64) -> bool {
    let at_generation = |c: &&Value| c["observedGeneration"] == generation;
    let ready = find_condition(status, "Ready")
        .filter(at_generation)
        .is_some_and(|c| c["status"] == "True");
    let failed = find_condition(status, "Issuing")
        .filter(at_generation)
        .is_some_and(|c| c["status"] == "False" && c["reason"] == "Failed");
    ready || failed
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CertificateSpec {
    #[serde(default)]
    pub(super) dns_names: Vec<String>,
    secret_name: String,
    pub(super) issuer_ref: IssuerRef,
}

/// Why a Certificate needs a new certificate, as (reason, message), or None when its
/// Secret already holds what the spec asks for.
fn issuance_reason(
    spec: &CertificateSpec,
    secret: Option<&Secret>,
) -> Option<(&'static str, String)> {
    let Some(secret) = secret else {
        return Some((
            "DoesNotExist",
            "Issuing certificate as Secret does not exist".to_owned(),
        ));
    };
    let data = secret.data.clone().unwrap_or_default();
    if !data.contains_key("tls.crt") {
        return Some((
            "MissingData",
            "Issuing certificate as Secret does not contain a certificate".to_owned(),
        ));
    }
    if !data.contains_key("tls.key") {
        return Some((
            "MissingData",
            "Issuing certificate as Secret does not contain a private key".to_owned(),
        ));
    }
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    let annotation = |name: &str| annotations.get(name).cloned().unwrap_or_default();
    let issued_by = IssuerRef {
        name: annotation("cert-manager.io/issuer-name"),
        kind: annotation("cert-manager.io/issuer-kind"),
        group: annotation("cert-manager.io/issuer-group"),
    };
    if !issued_by.same_as(&spec.issuer_ref) {
        return Some((
            "IncorrectIssuer",
            format!(
                "Issuing certificate as Secret was previously issued by {}.{}/{}",
                issued_by.kind(),
                issued_by.group(),
                issued_by.name
            ),
        ));
    }
    if annotation("cert-manager.io/alt-names") != spec.dns_names.join(",") {
        return Some((
            "RequestChanged",
            "Fields on existing CertificateRequest resource not up to date: [spec.dnsNames]"
                .to_owned(),
        ));
    }
    None
}

/// A random lowercase suffix, as a generateName gives.
fn random_suffix(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(|c| (c as char).to_ascii_lowercase())
        .collect()
}

/// One issuance of one Certificate generation.
pub(super) struct Attempt<'a> {
    controller: &'a Controller,
    started: Instant,
    pub(super) namespace: String,
    name: String,
    generation: i64,
    certificate: ObjectReference,
    status: Value,
    pub(super) spec: CertificateSpec,
    certificates: Api<DynamicObject>,
    requests: Api<DynamicObject>,
    secrets: Api<Secret>,
}

impl<'a> Attempt<'a> {
    fn new(
        controller: &'a Controller,
        certificate: DynamicObject,
    ) -> Result<Self, serde_json::Error> {
        let namespace = certificate.metadata.namespace.clone().unwrap_or_default();
        let client = controller.client.clone();
        Ok(Attempt {
            controller,
            started: Instant::now(),
            name: certificate.metadata.name.clone().unwrap_or_default(),
            generation: certificate.metadata.generation.unwrap_or(1),
            certificate: object_ref("cert-manager.io/v1", "Certificate", &certificate.metadata),
            status: certificate.data["status"].clone(),
            spec: serde_json::from_value(certificate.data["spec"].clone())?,
            certificates: Api::namespaced_with(client.clone(), &namespace, &certificates()),
            requests: Api::namespaced_with(client.clone(), &namespace, &certificate_requests()),
            secrets: Api::namespaced(client, &namespace),
            namespace,
        })
    }

    pub(super) fn recorder(&self, component: &'static str) -> Recorder {
        Recorder::new(self.controller.client.clone(), component)
    }

    pub(super) fn client(&self) -> &Client {
        &self.controller.client
    }

    fn observed(&self) -> Value {
        json!({ "observedGeneration": self.generation })
    }

    async fn write_certificate_status(&self, component: &str, status: Value) -> kube::Result<()> {
        write_status(&self.certificates, &self.name, component, status).await
    }

    async fn run(mut self) -> kube::Result<()> {
        if manually_triggered(&self.status) {
            // The event may be an old one: a renewal since then took the trigger away.
            let current = retry(|| self.certificates.get(&self.name)).await?;
            if !manually_triggered(&current.data["status"]) {
                return Ok(());
            }
            self.status = current.data["status"].clone();
        } else {
            let secret = retry(|| self.secrets.get_opt(&self.spec.secret_name)).await?;
            let Some((reason, message)) = issuance_reason(&self.spec, secret.as_ref()) else {
                return self.up_to_date().await;
            };
            self.trigger(reason, &message).await?;
        }
        let key = KeyPair::generate().expect("ECDSA P-256 key generation");
        let key_secret = self.store_next_key(&key).await?;
        let revision = self.status["revision"].as_i64().unwrap_or(0) + 1;
        let mut request = self.request(&key, &key_secret, revision).await?;
        let issuer = self.wait_for_issuer(&mut request).await?;
        let order = match &issuer.acme_server {
            Some(server) => Some(Order::create(&self, &mut request, &issuer, server).await?),
            None => None,
        };

        self.wait_out_the_delay().await;
        if let (Some(order), Some(CertFailure::Challenge)) = (&order, self.controller.failure) {
            order.fail().await?;
            let failure = request.order_failed(order).await?;
            return self.failed(&failure, &key_secret).await;
        }

        let issued = self
            .controller
            .authorities
            .issue(&issuer.authority, &self.spec.dns_names, &key, now())
            .expect("signing with rcgen");
        let chain = STANDARD.encode(&issued.chain_pem);
        match &order {
            Some(order) => {
                order.succeed(&chain).await?;
                request
                    .issued(ACME_ISSUER, json!({ "certificate": chain }))
                    .await?;
            }
            None => {
                let ca = STANDARD.encode(&issued.ca_pem);
                request
                    .issued(ISSUER, json!({ "certificate": chain, "ca": ca }))
                    .await?;
            }
        }
        // The Secret before the status, so that Ready=True means the Secret is there.
        self.store_certificate(&issued, &key).await?;
        self.delete_next_key(&key_secret).await?;
        self.issued(&issued, revision).await
    }

    /// certificates-trigger and -readiness: a new certificate is needed, and why.
    async fn trigger(&mut self, reason: &str, message: &str) -> kube::Result<()> {
        let mut conditions = Conditions::of(&self.status);
        conditions.set("Ready", "False", reason, message, self.observed());
        conditions.set("Issuing", "True", reason, message, self.observed());
        self.status["conditions"] = conditions.to_json();
        let status = json!({ "conditions": conditions.to_json() });
        self.write_certificate_status("cert-manager-certificates-trigger", status)
            .await?;
        self.recorder("cert-manager-certificates-trigger").normal(
            &self.certificate,
            "Issuing",
            message,
        );
        Ok(())
    }

    /// The Secret already matches the spec (say, a spec change that does not affect the
    /// certificate): Ready for this generation without a new certificate.
    async fn up_to_date(&self) -> kube::Result<()> {
        let mut conditions = Conditions::of(&self.status);
        conditions.remove("Issuing");
        conditions.set("Ready", "True", "Ready", READY_MESSAGE, self.observed());
        let status = json!({ "conditions": conditions.to_json() });
        self.write_certificate_status("cert-manager-certificates-readiness", status)
            .await
    }

    async fn wait_out_the_delay(&self) {
        tokio::time::sleep(self.controller.delay.saturating_sub(self.started.elapsed())).await;
    }

    /// certificates-issuing: Ready with the new certificate's times and revision.
    async fn issued(&self, issued: &Issued, revision: i64) -> kube::Result<()> {
        let mut conditions = Conditions::of(&self.status);
        conditions.remove("Issuing");
        conditions.set("Ready", "True", "Ready", READY_MESSAGE, self.observed());
        // cert-manager renews when two thirds of the lifetime have passed.
        let renewal = issued.not_before + VALIDITY * 2 / 3;
        let status = json!({
            "conditions": conditions.to_json(),
            "notBefore": issued.not_before.to_string(),
            "notAfter": issued.not_after.to_string(),
            "renewalTime": renewal.to_string(),
            "revision": revision,
            "lastFailureTime": null,
            "failedIssuanceAttempts": null,
            "nextPrivateKeySecretName": null,
        });
        self.write_certificate_status("cert-manager-certificates-issuing", status)
            .await?;
        let message = "The certificate has been successfully issued";
        self.recorder("cert-manager-certificates-issuing").normal(
            &self.certificate,
            "Issuing",
            message,
        );
        Ok(())
    }

    /// The issuance failed: cert-manager backs off (an hour) and says so on the Certificate.
    async fn failed(&self, request_message: &str, key_secret: &str) -> kube::Result<()> {
        self.delete_next_key(key_secret).await?;
        let message = format!(
            "The certificate request has failed to complete and will be retried: {request_message}"
        );
        let mut conditions = Conditions::of(&self.status);
        conditions.set("Issuing", "False", "Failed", &message, self.observed());
        let attempts = self.status["failedIssuanceAttempts"].as_i64().unwrap_or(0) + 1;
        let status = json!({
            "conditions": conditions.to_json(),
            "lastFailureTime": now().to_string(),
            "failedIssuanceAttempts": attempts,
            "nextPrivateKeySecretName": null,
        });
        self.write_certificate_status("cert-manager-certificates-issuing", status)
            .await?;
        self.recorder("cert-manager-certificates-issuing").warning(
            &self.certificate,
            "Failed",
            &message,
        );
        Ok(())
    }

    /// certificates-key-manager: the private key for the next certificate, in a
    /// temporary Secret until the issuance ends.
    async fn store_next_key(&self, key: &KeyPair) -> kube::Result<String> {
        let name = format!("{}-{}", self.name, random_suffix(5));
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {
                    "cert-manager.io/next-private-key": "true",
                    "controller.cert-manager.io/fao": "true",
                },
                "ownerReferences": [controller_ref(&self.certificate)],
            },
            "data": { "tls.key": STANDARD.encode(key.serialize_pem()) },
        }))
        .expect("a Secret");
        let component = "cert-manager-certificates-key-manager";
        let params = PostParams {
            field_manager: Some(component.to_owned()),
            ..PostParams::default()
        };
        retry(|| async { self.secrets.create(&params, &secret).await }).await?;
        let status = json!({ "nextPrivateKeySecretName": name });
        self.write_certificate_status(component, status).await?;
        let message = format!("Stored new private key in temporary Secret resource {name:?}");
        self.recorder(component)
            .normal(&self.certificate, "Generated", &message);
        Ok(name)
    }

    async fn delete_next_key(&self, name: &str) -> kube::Result<()> {
        match retry(|| async { self.secrets.delete(name, &DeleteParams::default()).await }).await {
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            result => result.map(drop),
        }
    }

    /// certificates-request-manager creates `<certificate>-<revision>`, and the
    /// approver approves it.
    async fn request(
        &self,
        key: &KeyPair,
        key_secret: &str,
        revision: i64,
    ) -> kube::Result<Request<'_>> {
        let csr = csr_pem(&self.spec.dns_names, key).expect("a CSR for valid DNS names");
        let object = dynamic(json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "CertificateRequest",
            "metadata": {
                "name": format!("{}-{revision}", self.name),
                "namespace": self.namespace,
                "annotations": {
                    "cert-manager.io/certificate-name": self.name,
                    "cert-manager.io/certificate-revision": revision.to_string(),
                    "cert-manager.io/private-key-secret-name": key_secret,
                },
                "ownerReferences": [controller_ref(&self.certificate)],
            },
            "spec": {
                "request": STANDARD.encode(csr),
                "issuerRef": self.spec.issuer_ref,
                "usages": ["digital signature", "key encipherment"],
                "duration": "2160h0m0s",
                // Who asked, as cert-manager's webhook records its service account.
                "username": "system:serviceaccount:cert-manager:cert-manager",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:cert-manager",
                    "system:authenticated",
                ],
            },
        }));
        let component = "cert-manager-certificates-request-manager";
        let object = create_or_get(&self.requests, &object, component).await?;
        let mut request = Request {
            attempt: self,
            reference: object_ref("cert-manager.io/v1", "CertificateRequest", &object.metadata),
            name: object.metadata.name.clone().unwrap_or_default(),
            object,
            conditions: Conditions::default(),
        };
        let message = format!("Created new CertificateRequest resource {:?}", request.name);
        self.recorder(component)
            .normal(&self.certificate, "Requested", &message);
        let approved = "Certificate request has been approved by cert-manager.io";
        let approver = "cert-manager-certificaterequests-approver";
        request
            .set(
                approver,
                "Approved",
                "True",
                "cert-manager.io",
                approved,
                json!({}),
            )
            .await?;
        request.event(approver, "cert-manager.io", approved);
        Ok(request)
    }

    /// Looks up the issuer until it exists and is Ready, leaving the request Pending
    /// with cert-manager's message meanwhile (written once per message).
    async fn wait_for_issuer(&self, request: &mut Request<'_>) -> kube::Result<Issuer> {
        let mut said = String::new();
        loop {
            let client = &self.controller.client;
            let (reason, message) =
                match lookup(client, &self.spec.issuer_ref, &self.namespace).await? {
                    Lookup::Ready(issuer) => return Ok(issuer),
                    Lookup::Missing(message) => ("IssuerNotFound", message),
                    Lookup::NotReady => ("IssuerNotReady", NOT_READY.to_owned()),
                    // Another project's issuer signs these; none runs in this simulation.
                    Lookup::External => return std::future::pending().await,
                };
            if message != said {
                request
                    .set(ISSUER, "Ready", "False", "Pending", &message, json!({}))
                    .await?;
                request.event(ISSUER, reason, &message);
                said = message;
            }
            tokio::time::sleep(ISSUER_POLL).await;
        }
    }

    /// The tls Secret as cert-manager's issuing controller applies it.
    async fn store_certificate(&self, issued: &Issued, key: &KeyPair) -> kube::Result<()> {
        let issuer = &self.spec.issuer_ref;
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.spec.secret_name,
                "namespace": self.namespace,
                "labels": { "controller.cert-manager.io/fao": "true" },
                "annotations": {
                    "cert-manager.io/alt-names": self.spec.dns_names.join(","),
                    "cert-manager.io/certificate-name": self.name,
                    "cert-manager.io/common-name": self.spec.dns_names.first(),
                    "cert-manager.io/ip-sans": "",
                    "cert-manager.io/issuer-group": issuer.group(),
                    "cert-manager.io/issuer-kind": issuer.kind(),
                    "cert-manager.io/issuer-name": issuer.name,
                    "cert-manager.io/uri-sans": "",
                },
            },
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": STANDARD.encode(&issued.chain_pem),
                "tls.key": STANDARD.encode(key.serialize_pem()),
                "ca.crt": STANDARD.encode(&issued.ca_pem),
            },
        });
        let params = PatchParams::apply("cert-manager-certificates-issuing").force();
        let name = &self.spec.secret_name;
        retry(|| async {
            self.secrets
                .patch(name, &params, &Patch::Apply(&secret))
                .await
        })
        .await?;
        Ok(())
    }
}

/// A CertificateRequest with the conditions its controllers keep on it.
pub(super) struct Request<'a> {
    attempt: &'a Attempt<'a>,
    pub(super) object: DynamicObject,
    pub(super) reference: ObjectReference,
    pub(super) name: String,
    conditions: Conditions,
}

impl Request<'_> {
    /// Sets one condition and writes the status, with `more` status fields.
    pub(super) async fn set(
        &mut self,
        component: &str,
        kind: &str,
        status: &str,
        reason: &str,
        message: &str,
        mut more: Value,
    ) -> kube::Result<()> {
        self.conditions
            .set(kind, status, reason, message, json!({}));
        more["conditions"] = self.conditions.to_json();
        write_status(&self.attempt.requests, &self.name, component, more).await
    }

    pub(super) fn event(&self, component: &'static str, reason: &str, message: &str) {
        self.attempt
            .recorder(component)
            .normal(&self.reference, reason, message);
    }

    /// Signed: the certificate (and for a non-ACME issuer, the CA) in the status.
    async fn issued(&mut self, component: &'static str, certificate: Value) -> kube::Result<()> {
        let message = "Certificate fetched from issuer successfully";
        self.set(component, "Ready", "True", "Issued", message, certificate)
            .await?;
        self.event(component, "CertificateIssued", message);
        Ok(())
    }

    /// The Order failed, so the request does: returns the message, which the
    /// Certificate quotes.
    async fn order_failed(&mut self, order: &Order<'_>) -> kube::Result<String> {
        let message = format!(
            "Failed to wait for order resource {:?} to become ready: order is in \"invalid\" state: ",
            order.name
        );
        let more = json!({ "failureTime": now().to_string() });
        self.set(ACME_ISSUER, "Ready", "False", "Failed", &message, more)
            .await?;
        self.attempt
            .recorder(ACME_ISSUER)
            .warning(&self.reference, "OrderFailed", &message);
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(issuer: &str, names: &[&str]) -> CertificateSpec {
        CertificateSpec {
            dns_names: names.iter().map(|s| s.to_string()).collect(),
            secret_name: "polls-tls".into(),
            issuer_ref: IssuerRef {
                name: issuer.into(),
                kind: "ClusterIssuer".into(),
                group: "cert-manager.io".into(),
            },
        }
    }

    fn issued_secret(issuer: &str, names: &str) -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "polls-tls", "annotations": {
                "cert-manager.io/issuer-name": issuer,
                "cert-manager.io/issuer-kind": "ClusterIssuer",
                "cert-manager.io/issuer-group": "cert-manager.io",
                "cert-manager.io/alt-names": names,
            }},
            "data": {"tls.crt": "eA==", "tls.key": "eA=="},
        }))
        .unwrap()
    }

    #[test]
    fn a_missing_secret_is_issued_as_does_not_exist() {
        let (reason, message) =
            issuance_reason(&spec("letsencrypt-staging", &["a.example"]), None).unwrap();
        assert_eq!(reason, "DoesNotExist");
        assert_eq!(message, "Issuing certificate as Secret does not exist");
    }

    #[test]
    fn an_issuer_switch_is_an_incorrect_issuer() {
        let secret = issued_secret("letsencrypt-staging", "a.example");
        assert!(
            issuance_reason(&spec("letsencrypt-staging", &["a.example"]), Some(&secret)).is_none()
        );
        let (reason, message) =
            issuance_reason(&spec("letsencrypt-prod", &["a.example"]), Some(&secret)).unwrap();
        assert_eq!(reason, "IncorrectIssuer");
        assert_eq!(
            message,
            "Issuing certificate as Secret was previously issued by ClusterIssuer.cert-manager.io/letsencrypt-staging"
        );
        let (reason, _) = issuance_reason(
            &spec("letsencrypt-staging", &["a.example", "b.example"]),
            Some(&secret),
        )
        .unwrap();
        assert_eq!(reason, "RequestChanged");
    }

    #[test]
    fn settled_means_ready_or_failed_at_this_generation() {
        let ready =
            json!({"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2}]});
        assert!(settled(&ready, 2));
        assert!(!settled(&ready, 3));
        let failed = json!({"conditions": [
            {"type": "Ready", "status": "False", "observedGeneration": 1},
            {"type": "Issuing", "status": "False", "reason": "Failed", "observedGeneration": 1},
        ]});
        assert!(settled(&failed, 1));
        let issuing =
            json!({"conditions": [{"type": "Issuing", "status": "True", "observedGeneration": 1}]});
        assert!(!settled(&issuing, 1));
        assert!(!settled(&Value::Null, 1));
    }

    #[test]
    fn only_a_manual_trigger_is_one() {
        let renew = json!({"conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready"},
            {"type": "Issuing", "status": "True", "reason": "ManuallyTriggered"},
        ]});
        assert!(manually_triggered(&renew));
        let ours = json!({"conditions": [{"type": "Issuing", "status": "True", "reason": "DoesNotExist"}]});
        assert!(!manually_triggered(&ours));
        assert!(!manually_triggered(&Value::Null));
    }

    #[test]
    fn generated_names_look_like_kubernetes_ones() {
        let suffix = random_suffix(5);
        assert_eq!(suffix.len(), 5);
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
