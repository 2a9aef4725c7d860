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
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use rand::Rng;
use rand::distr::Alphanumeric;
use rcgen::KeyPair;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use super::issuers::{Issuer, Lookup, acme_base, lookup};
use super::pki::{Authorities, Issued, VALIDITY, csr_pem};
use super::{IssuerRef, certificate_requests, certificates, challenges, orders, stable_number};
use crate::controllers::options::{CertFailure, ControllerOptions};
use crate::controllers::support::{
    Change, Conditions, Recorder, already_exists, change, controller_ref, delete_controlled,
    find_condition, key, now, object_ref, report, retry, spawn_watch,
};

const READY_MESSAGE: &str = "Certificate is up to date and has not expired";
const NOT_READY: &str = "Referenced issuer does not have a Ready status condition";
const SELF_CHECK_404: &str =
    "Waiting for HTTP-01 challenge propagation: wrong status code '404', expected '200'";
// The controllers, as Event sources and field managers.
const ISSUER: &str = "cert-manager-certificaterequests-issuer";
const ACME_ISSUER: &str = "cert-manager-certificaterequests-issuer-acme";
const ORDERS: &str = "cert-manager-orders";
const CHALLENGES: &str = "cert-manager-challenges";
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
    spawn_watch(
        Api::<DynamicObject>::all_with(client.clone(), &certificates()),
        move |event| {
            let controller = controller.clone();
            async move {
                match change(event) {
                    Some(Change::Applied(certificate)) => controller.consider(certificate),
                    Some(Change::Deleted(certificate)) => {
                        controller.forget(&certificate);
                        if let Err(e) = controller.collect_garbage(&certificate).await {
                            report(
                                "garbage-collector",
                                &key(&certificate),
                                "deleting dependents",
                                &e,
                            );
                        }
                    }
                    None => {}
                }
            }
        },
    );
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
        let uid = certificate.metadata.uid.clone().unwrap_or_default();
        let generation = certificate.metadata.generation.unwrap_or(1);
        let mut work = self.work.lock().expect("work lock");
        let key = key(&certificate);
        if let Some(tracked) = work.get(&key) {
            if tracked.uid == uid && tracked.generation == generation {
                return;
            }
            if let Some(task) = &tracked.task {
                task.abort();
            }
        }
        let task = (!settled(&certificate.data["status"], generation)).then(|| {
            let controller = self.clone();
            tokio::spawn(async move { controller.issue(certificate).await }).abort_handle()
        });
        work.insert(
            key,
            Tracked {
                uid,
                generation,
                task,
            },
        );
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
struct CertificateSpec {
    #[serde(default)]
    dns_names: Vec<String>,
    secret_name: String,
    issuer_ref: IssuerRef,
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

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Writes `status` through the /status subresource as a merge patch, the way the
/// fixtures record cert-manager doing it, as the controller `component`.
async fn write_status(
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
async fn create_or_get(
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

fn dynamic(object: Value) -> DynamicObject {
    serde_json::from_value(object).expect("an object with apiVersion, kind and metadata")
}

/// One issuance of one Certificate generation.
struct Attempt<'a> {
    controller: &'a Controller,
    started: Instant,
    namespace: String,
    name: String,
    generation: i64,
    certificate: ObjectReference,
    status: Value,
    spec: CertificateSpec,
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

    fn recorder(&self, component: &'static str) -> Recorder {
        Recorder::new(self.controller.client.clone(), component)
    }

    fn observed(&self) -> Value {
        json!({ "observedGeneration": self.generation })
    }

    async fn write_certificate_status(&self, component: &str, status: Value) -> kube::Result<()> {
        write_status(&self.certificates, &self.name, component, status).await
    }

    async fn run(mut self) -> kube::Result<()> {
        let secret = retry(|| self.secrets.get_opt(&self.spec.secret_name)).await?;
        let Some((reason, message)) = issuance_reason(&self.spec, secret.as_ref()) else {
            return self.up_to_date().await;
        };
        self.trigger(reason, &message).await?;
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
struct Request<'a> {
    attempt: &'a Attempt<'a>,
    object: DynamicObject,
    reference: ObjectReference,
    name: String,
    conditions: Conditions,
}

impl Request<'_> {
    /// Sets one condition and writes the status, with `more` status fields.
    async fn set(
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

    fn event(&self, component: &'static str, reason: &str, message: &str) {
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

/// An HTTP-01 Challenge of an Order, for one DNS name.
struct Challenge {
    name: String,
    dns_name: String,
    reference: ObjectReference,
}

/// An ACME Order of a CertificateRequest with its Challenges.
struct Order<'a> {
    attempt: &'a Attempt<'a>,
    name: String,
    reference: ObjectReference,
    orders: Api<DynamicObject>,
    challenges_api: Api<DynamicObject>,
    challenges: Vec<Challenge>,
}

impl<'a> Order<'a> {
    /// Creates the Order of a request, named `<request>-<hash>` and owned by the
    /// request, and an HTTP-01 Challenge per DNS name, all pending.
    async fn create(
        attempt: &'a Attempt<'a>,
        request: &mut Request<'_>,
        issuer: &Issuer,
        server: &str,
    ) -> kube::Result<Self> {
        let name = format!(
            "{}-{}",
            request.name,
            stable_number(&format!("{}/{server}", request.name))
        );
        let client = &attempt.controller.client;
        let namespace = &attempt.namespace;
        let object = dynamic(json!({
            "apiVersion": "acme.cert-manager.io/v1",
            "kind": "Order",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": request.object.metadata.annotations,
                "ownerReferences": [controller_ref(&request.reference)],
            },
            "spec": {
                "request": request.object.data["spec"]["request"],
                "issuerRef": attempt.spec.issuer_ref,
                "commonName": attempt.spec.dns_names.first(),
                "dnsNames": attempt.spec.dns_names,
            },
        }));
        let orders = Api::namespaced_with(client.clone(), namespace, &orders());
        let object = create_or_get(&orders, &object, ACME_ISSUER).await?;
        let mut order = Order {
            attempt,
            reference: object_ref("acme.cert-manager.io/v1", "Order", &object.metadata),
            name,
            orders,
            challenges_api: Api::namespaced_with(client.clone(), namespace, &challenges()),
            challenges: Vec::new(),
        };
        request.event(
            ACME_ISSUER,
            "OrderCreated",
            &format!("Created Order resource {namespace}/{}", order.name),
        );
        order.submit(issuer, server).await?;
        let pending = format!(
            "Waiting on certificate issuance from order {namespace}/{}: \"pending\"",
            order.name
        );
        request
            .set(
                ACME_ISSUER,
                "Ready",
                "False",
                "Pending",
                &pending,
                json!({}),
            )
            .await?;
        request.event(ACME_ISSUER, "OrderPending", &pending);
        Ok(order)
    }

    /// What the orders controller does with a new Order: creates it on the ACME server
    /// (URLs and authorizations in the status) and a Challenge per authorization.
    async fn submit(&mut self, issuer: &Issuer, server: &str) -> kube::Result<()> {
        let attempt = self.attempt;
        let base = acme_base(server);
        let account = stable_number(&attempt.spec.issuer_ref.name);
        let order_id = stable_number(&self.name);
        // The ACME account key's thumbprint, the second half of every key authorization.
        let thumbprint = random_token();
        let mut authorizations = Vec::new();
        let mut challenges = Vec::new();
        for dns_name in &attempt.spec.dns_names {
            let challenge_name = format!(
                "{}-{}",
                self.name,
                stable_number(&format!("{}/{dns_name}", self.name))
            );
            let authz_id = stable_number(&challenge_name);
            let authz_url = format!("{base}/acme/authz/{account}/{authz_id}");
            let challenge_url = || {
                format!(
                    "{base}/acme/chall/{account}/{authz_id}/{}",
                    &random_token()[..6]
                )
            };
            let (token, url) = (random_token(), challenge_url());
            authorizations.push(json!({
                "url": authz_url,
                "identifier": dns_name,
                "initialState": "pending",
                "wildcard": false,
                "challenges": [
                    { "type": "http-01", "url": url, "token": token },
                    { "type": "dns-01", "url": challenge_url(), "token": random_token() },
                    { "type": "tls-alpn-01", "url": challenge_url(), "token": random_token() },
                ],
            }));
            challenges.push(dynamic(json!({
                "apiVersion": "acme.cert-manager.io/v1",
                "kind": "Challenge",
                "metadata": {
                    "name": challenge_name,
                    "namespace": attempt.namespace,
                    "ownerReferences": [controller_ref(&self.reference)],
                },
                "spec": {
                    "url": url,
                    "authorizationURL": authz_url,
                    "dnsName": dns_name,
                    "wildcard": false,
                    "type": "HTTP-01",
                    "token": token,
                    "key": format!("{token}.{thumbprint}"),
                    "solver": issuer.solver,
                    "issuerRef": attempt.spec.issuer_ref,
                },
            })));
        }
        let status = json!({
            "url": format!("{base}/acme/order/{account}/{order_id}"),
            "finalizeURL": format!("{base}/acme/finalize/{account}/{order_id}"),
            "authorizations": authorizations,
            "state": "pending",
        });
        write_status(&self.orders, &self.name, ORDERS, status).await?;
        for challenge in challenges {
            self.start_challenge(&challenge).await?;
        }
        Ok(())
    }

    /// The challenges controller picks a new Challenge up and presents it.
    async fn start_challenge(&mut self, object: &DynamicObject) -> kube::Result<()> {
        let object = create_or_get(&self.challenges_api, object, ORDERS).await?;
        let challenge = Challenge {
            name: object.metadata.name.clone().unwrap_or_default(),
            dns_name: object.data["spec"]["dnsName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            reference: object_ref("acme.cert-manager.io/v1", "Challenge", &object.metadata),
        };
        let created = format!(
            "Created Challenge resource {:?} for domain {:?}",
            challenge.name, challenge.dns_name
        );
        self.attempt
            .recorder(ORDERS)
            .normal(&self.reference, "Created", &created);
        let status = json!({
            "processing": true,
            "presented": true,
            "presentedAt": now().to_string(),
            "state": "pending",
            "reason": "",
        });
        write_status(&self.challenges_api, &challenge.name, CHALLENGES, status).await?;
        let events = self.attempt.recorder(CHALLENGES);
        events.normal(
            &challenge.reference,
            "Started",
            "Challenge scheduled for processing",
        );
        events.normal(
            &challenge.reference,
            "Presented",
            "Presented challenge using HTTP-01 challenge mechanism",
        );
        self.challenges.push(challenge);
        Ok(())
    }

    /// The HTTP-01 self check never sees the token: every Challenge and the Order invalid.
    async fn fail(&self) -> kube::Result<()> {
        for challenge in &self.challenges {
            let status = json!({
                "processing": false,
                "presented": false,
                "state": "invalid",
                "reason": SELF_CHECK_404,
            });
            write_status(&self.challenges_api, &challenge.name, CHALLENGES, status).await?;
        }
        let status = json!({ "state": "invalid", "failureTime": now().to_string() });
        write_status(&self.orders, &self.name, ORDERS, status).await
    }

    /// Every Challenge verified, the Order valid with the signed chain.
    async fn succeed(&self, chain_base64: &str) -> kube::Result<()> {
        let events = self.attempt.recorder(CHALLENGES);
        for challenge in &self.challenges {
            let status = json!({
                "processing": false,
                "presented": false,
                "state": "valid",
                "reason": "Successfully authorized domain",
            });
            write_status(&self.challenges_api, &challenge.name, CHALLENGES, status).await?;
            let verified = format!(
                "Domain {:?} verified with \"HTTP-01\" validation",
                challenge.dns_name
            );
            events.normal(&challenge.reference, "DomainVerified", &verified);
        }
        let status = json!({ "state": "valid", "certificate": chain_base64 });
        write_status(&self.orders, &self.name, ORDERS, status).await?;
        self.attempt.recorder(ORDERS).normal(
            &self.reference,
            "Complete",
            "Order completed successfully",
        );
        Ok(())
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
    fn generated_names_look_like_kubernetes_ones() {
        let suffix = random_suffix(5);
        assert_eq!(suffix.len(), 5);
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(random_token().len(), 43);
    }
}
