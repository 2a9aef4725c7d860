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
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use rand::Rng;
use rand::distr::Alphanumeric;
use rcgen::KeyPair;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use super::issuers::{Issuer, Lookup, acme_base, lookup};
use super::pki::{Authorities, VALIDITY, csr_pem};
use super::{IssuerRef, certificate_requests, certificates, challenges, orders, stable_number};
use crate::controllers::options::{CertFailure, ControllerOptions};
use crate::controllers::support::{
    Change, Recorder, already_exists, change, conditions_of, controller_ref, delete_controlled, find_condition, now,
    object_ref, report, retry, set_condition, spawn_watch,
};

const READY_MESSAGE: &str = "Certificate is up to date and has not expired";
const SELF_CHECK_404: &str = "Waiting for HTTP-01 challenge propagation: wrong status code '404', expected '200'";
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
    spawn_watch(Api::<DynamicObject>::all_with(client.clone(), &certificates()), move |event| {
        let controller = controller.clone();
        async move {
            match change(event) {
                Some(Change::Applied(certificate)) => controller.consider(certificate),
                Some(Change::Deleted(certificate)) => {
                    controller.forget(&certificate);
                    if let Err(e) = controller.collect_garbage(&certificate).await {
                        report("garbage-collector", &key(&certificate), "deleting dependents", &e);
                    }
                }
                None => {}
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

fn key(certificate: &DynamicObject) -> String {
    format!(
        "{}/{}",
        certificate.metadata.namespace.as_deref().unwrap_or_default(),
        certificate.metadata.name.as_deref().unwrap_or_default()
    )
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
        work.insert(key, Tracked { uid, generation, task });
    }

    fn forget(&self, certificate: &DynamicObject) {
        if let Some(Tracked { task: Some(task), .. }) = self.work.lock().expect("work lock").remove(&key(certificate)) {
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
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &namespace, &resource);
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
    let ready = find_condition(status, "Ready").filter(at_generation).is_some_and(|c| c["status"] == "True");
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
fn issuance_reason(spec: &CertificateSpec, secret: Option<&Secret>) -> Option<(&'static str, String)> {
    let Some(secret) = secret else {
        return Some(("DoesNotExist", "Issuing certificate as Secret does not exist".to_owned()));
    };
    let data = secret.data.clone().unwrap_or_default();
    if !data.contains_key("tls.crt") {
        return Some(("MissingData", "Issuing certificate as Secret does not contain a certificate".to_owned()));
    }
    if !data.contains_key("tls.key") {
        return Some(("MissingData", "Issuing certificate as Secret does not contain a private key".to_owned()));
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
            "Fields on existing CertificateRequest resource not up to date: [spec.dnsNames]".to_owned(),
        ));
    }
    None
}

/// Field managers as cert-manager's controllers name themselves.
fn manager(name: &str) -> PatchParams {
    PatchParams { field_manager: Some(format!("cert-manager-{name}")), ..PatchParams::default() }
}

/// A random lowercase suffix, as a generateName gives.
fn random_suffix(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(|c| (c as char).to_ascii_lowercase()).collect()
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
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
    fn new(controller: &'a Controller, certificate: DynamicObject) -> Result<Self, serde_json::Error> {
        let namespace = certificate.metadata.namespace.clone().unwrap_or_else(|| "default".to_owned());
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
        json!({"observedGeneration": self.generation})
    }

    async fn write_certificate_status(&self, manager_name: &str, status: Value) -> kube::Result<()> {
        let patch = json!({"status": status});
        let params = manager(manager_name);
        retry(|| async { self.certificates.patch_status(&self.name, &params, &Patch::Merge(&patch)).await }).await?;
        Ok(())
    }

    async fn run(mut self) -> kube::Result<()> {
        let secret = retry(|| self.secrets.get_opt(&self.spec.secret_name)).await?;
        let Some((reason, message)) = issuance_reason(&self.spec, secret.as_ref()) else {
            return self.up_to_date().await;
        };

        // certificates-trigger and -readiness
        let mut conditions = conditions_of(&self.status);
        set_condition(&mut conditions, "Ready", "False", reason, &message, now(), self.observed());
        set_condition(&mut conditions, "Issuing", "True", reason, &message, now(), self.observed());
        self.write_certificate_status("certificates-trigger", json!({"conditions": conditions})).await?;
        self.status["conditions"] = Value::Array(conditions);
        self.recorder("cert-manager-certificates-trigger").normal(&self.certificate, "Issuing", &message);

        // certificates-key-manager
        let key = KeyPair::generate().expect("ECDSA P-256 key generation");
        let key_secret = self.store_next_key(&key).await?;
        self.write_certificate_status("certificates-key-manager", json!({"nextPrivateKeySecretName": key_secret}))
            .await?;
        self.recorder("cert-manager-certificates-key-manager").normal(
            &self.certificate,
            "Generated",
            &format!("Stored new private key in temporary Secret resource {key_secret:?}"),
        );

        // certificates-request-manager and the approver
        let revision = self.status["revision"].as_i64().unwrap_or(0) + 1;
        let request = self.create_request(&key, &key_secret, revision).await?;
        let request_ref = object_ref("cert-manager.io/v1", "CertificateRequest", &request.metadata);
        let request_name = request_ref.name.clone().unwrap_or_default();
        self.recorder("cert-manager-certificates-request-manager").normal(
            &self.certificate,
            "Requested",
            &format!("Created new CertificateRequest resource {request_name:?}"),
        );
        let mut request_conditions = Vec::new();
        let approved = "Certificate request has been approved by cert-manager.io";
        set_condition(&mut request_conditions, "Approved", "True", "cert-manager.io", approved, now(), json!({}));
        self.write_request_status(&request_name, "certificaterequests-approver", json!({"conditions": request_conditions}))
            .await?;
        self.recorder("cert-manager-certificaterequests-approver").normal(&request_ref, "cert-manager.io", approved);

        // the CertificateRequest issuer, once the referenced issuer is there and Ready
        let issuer = self.wait_for_issuer(&request_ref, &mut request_conditions).await?;
        let issuer_component = if issuer.acme_server.is_some() {
            "cert-manager-certificaterequests-issuer-acme"
        } else {
            "cert-manager-certificaterequests-issuer"
        };
        let request_events = self.recorder(issuer_component);

        let order = match &issuer.acme_server {
            Some(server) => {
                let order = Order::create(&self, &request, &issuer, server).await?;
                let order_name = format!("{}/{}", self.namespace, order.name);
                request_events.normal(&request_ref, "OrderCreated", &format!("Created Order resource {order_name}"));
                let pending = format!("Waiting on certificate issuance from order {order_name}: \"pending\"");
                set_condition(&mut request_conditions, "Ready", "False", "Pending", &pending, now(), json!({}));
                let status = json!({"conditions": request_conditions});
                self.write_request_status(&request_name, "certificaterequests-issuer-acme", status).await?;
                request_events.normal(&request_ref, "OrderPending", &pending);
                Some(order)
            }
            None => None,
        };

        self.wait_out_the_delay().await;
        if let (Some(order), Some(CertFailure::Challenge)) = (&order, self.controller.failure) {
            order.fail().await?;
            let failure = format!(
                "Failed to wait for order resource {:?} to become ready: order is in \"invalid\" state: ",
                order.name
            );
            set_condition(&mut request_conditions, "Ready", "False", "Failed", &failure, now(), json!({}));
            let status = json!({"conditions": request_conditions, "failureTime": now().to_string()});
            self.write_request_status(&request_name, "certificaterequests-issuer-acme", status).await?;
            request_events.warning(&request_ref, "OrderFailed", &failure);
            return self.failed(&failure, &key_secret).await;
        }

        let issued = self
            .controller
            .authorities
            .issue(&issuer.authority, &self.spec.dns_names, &key, now())
            .expect("signing with rcgen");
        let chain = STANDARD.encode(&issued.chain_pem);
        let mut request_status = json!({"certificate": chain});
        match &order {
            Some(order) => order.succeed(&chain).await?,
            None => request_status["ca"] = json!(STANDARD.encode(&issued.ca_pem)),
        }
        let fetched = "Certificate fetched from issuer successfully";
        set_condition(&mut request_conditions, "Ready", "True", "Issued", fetched, now(), json!({}));
        request_status["conditions"] = Value::Array(request_conditions);
        let issuer_manager = issuer_component.trim_start_matches("cert-manager-");
        self.write_request_status(&request_name, issuer_manager, request_status).await?;
        request_events.normal(&request_ref, "CertificateIssued", fetched);

        // certificates-issuing: the Secret first, so that Ready=True means it is there
        self.store_certificate(&issued.chain_pem, &issued.ca_pem, &key).await?;
        self.delete_next_key(&key_secret).await?;
        let mut conditions = conditions_of(&self.status);
        conditions.retain(|c| c["type"] != "Issuing");
        set_condition(&mut conditions, "Ready", "True", "Ready", READY_MESSAGE, now(), self.observed());
        // cert-manager renews when two thirds of the lifetime have passed.
        let renewal = issued.not_before + VALIDITY * 2 / 3;
        self.write_certificate_status(
            "certificates-issuing",
            json!({
                "conditions": conditions,
                "notBefore": issued.not_before.to_string(),
                "notAfter": issued.not_after.to_string(),
                "renewalTime": renewal.to_string(),
                "revision": revision,
                "lastFailureTime": null,
                "failedIssuanceAttempts": null,
                "nextPrivateKeySecretName": null,
            }),
        )
        .await?;
        self.recorder("cert-manager-certificates-issuing").normal(
            &self.certificate,
            "Issuing",
            "The certificate has been successfully issued",
        );
        Ok(())
    }

    /// The Secret already matches the spec (say, a spec change that does not affect the
    /// certificate): Ready for this generation without a new certificate.
    async fn up_to_date(&self) -> kube::Result<()> {
        let mut conditions = conditions_of(&self.status);
        conditions.retain(|c| c["type"] != "Issuing");
        set_condition(&mut conditions, "Ready", "True", "Ready", READY_MESSAGE, now(), self.observed());
        self.write_certificate_status("certificates-readiness", json!({"conditions": conditions})).await
    }

    async fn wait_out_the_delay(&self) {
        tokio::time::sleep(self.controller.delay.saturating_sub(self.started.elapsed())).await;
    }

    /// The issuance failed: cert-manager backs off (an hour) and says so on the Certificate.
    async fn failed(&self, request_message: &str, key_secret: &str) -> kube::Result<()> {
        self.delete_next_key(key_secret).await?;
        let message = format!("The certificate request has failed to complete and will be retried: {request_message}");
        let mut conditions = conditions_of(&self.status);
        set_condition(&mut conditions, "Issuing", "False", "Failed", &message, now(), self.observed());
        let attempts = self.status["failedIssuanceAttempts"].as_i64().unwrap_or(0) + 1;
        self.write_certificate_status(
            "certificates-issuing",
            json!({
                "conditions": conditions,
                "lastFailureTime": now().to_string(),
                "failedIssuanceAttempts": attempts,
                "nextPrivateKeySecretName": null,
            }),
        )
        .await?;
        self.recorder("cert-manager-certificates-issuing").warning(&self.certificate, "Failed", &message);
        Ok(())
    }

    async fn store_next_key(&self, key: &KeyPair) -> kube::Result<String> {
        let name = format!("{}-{}", self.name, random_suffix(5));
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {"cert-manager.io/next-private-key": "true", "controller.cert-manager.io/fao": "true"},
                "ownerReferences": [controller_ref(&self.certificate)],
            },
            "data": {"tls.key": STANDARD.encode(key.serialize_pem())},
        }))
        .expect("a Secret");
        retry(|| async { self.secrets.create(&PostParams::default(), &secret).await }).await?;
        Ok(name)
    }

    async fn delete_next_key(&self, name: &str) -> kube::Result<()> {
        match retry(|| async { self.secrets.delete(name, &DeleteParams::default()).await }).await {
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            result => result.map(drop),
        }
    }

    async fn create_request(&self, key: &KeyPair, key_secret: &str, revision: i64) -> kube::Result<DynamicObject> {
        let name = format!("{}-{revision}", self.name);
        let csr = csr_pem(&self.spec.dns_names, key).expect("a CSR for valid DNS names");
        let request: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "CertificateRequest",
            "metadata": {
                "name": name,
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
        }))
        .expect("a CertificateRequest");
        create_or_get(&self.requests, &name, &request).await
    }

    async fn write_request_status(&self, name: &str, manager_name: &str, status: Value) -> kube::Result<()> {
        let patch = json!({"status": status});
        let params = manager(manager_name);
        retry(|| async { self.requests.patch_status(name, &params, &Patch::Merge(&patch)).await }).await?;
        Ok(())
    }

    /// Looks up the issuer until it exists and is Ready, leaving the request Pending
    /// with cert-manager's message meanwhile (written once per message).
    async fn wait_for_issuer(&self, request: &ObjectReference, conditions: &mut Vec<Value>) -> kube::Result<Issuer> {
        let name = request.name.clone().unwrap_or_default();
        let mut said = String::new();
        loop {
            let (reason, message) = match lookup(&self.controller.client, &self.spec.issuer_ref, &self.namespace).await? {
                Lookup::Ready(issuer) => return Ok(issuer),
                Lookup::Missing(message) => ("IssuerNotFound", message),
                Lookup::NotReady => ("IssuerNotReady", "Referenced issuer does not have a Ready status condition".to_owned()),
                Lookup::External => {
                    // Another project's issuer signs these; none runs in this simulation.
                    return std::future::pending().await;
                }
            };
            if message != said {
                set_condition(conditions, "Ready", "False", "Pending", &message, now(), json!({}));
                self.write_request_status(&name, "certificaterequests-issuer", json!({"conditions": conditions}))
                    .await?;
                self.recorder("cert-manager-certificaterequests-issuer").normal(request, reason, &message);
                said = message;
            }
            tokio::time::sleep(ISSUER_POLL).await;
        }
    }

    /// The tls Secret as cert-manager's issuing controller applies it.
    async fn store_certificate(&self, chain_pem: &str, ca_pem: &str, key: &KeyPair) -> kube::Result<()> {
        let issuer = &self.spec.issuer_ref;
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.spec.secret_name,
                "namespace": self.namespace,
                "labels": {"controller.cert-manager.io/fao": "true"},
                "annotations": {
                    "cert-manager.io/alt-names": self.spec.dns_names.join(","),
                    "cert-manager.io/certificate-name": self.name,
                    "cert-manager.io/common-name": self.spec.dns_names.first().cloned().unwrap_or_default(),
                    "cert-manager.io/ip-sans": "",
                    "cert-manager.io/issuer-group": issuer.group(),
                    "cert-manager.io/issuer-kind": issuer.kind(),
                    "cert-manager.io/issuer-name": issuer.name,
                    "cert-manager.io/uri-sans": "",
                },
            },
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": STANDARD.encode(chain_pem),
                "tls.key": STANDARD.encode(key.serialize_pem()),
                "ca.crt": STANDARD.encode(ca_pem),
            },
        });
        let params = PatchParams::apply("cert-manager-certificates-issuing").force();
        retry(|| async { self.secrets.patch(&self.spec.secret_name, &params, &Patch::Apply(&secret)).await }).await?;
        Ok(())
    }
}

async fn create_or_get(api: &Api<DynamicObject>, name: &str, object: &DynamicObject) -> kube::Result<DynamicObject> {
    match retry(|| async { api.create(&PostParams::default(), object).await }).await {
        Err(e) if already_exists(&e) => retry(|| api.get(name)).await,
        result => result,
    }
}

/// An ACME Order of a CertificateRequest with its Challenges, one HTTP-01 per DNS name.
struct Order<'a> {
    attempt: &'a Attempt<'a>,
    name: String,
    reference: ObjectReference,
    orders: Api<DynamicObject>,
    challenges: Api<DynamicObject>,
    /// Challenge names with their DNS names.
    challenge_names: Vec<(String, String)>,
    /// The Challenges once created, for their Events.
    challenge_refs: Vec<ObjectReference>,
}

impl<'a> Order<'a> {
    /// Creates the Order of a request, named `<request>-<hash>` and owned by the request,
    /// and its Challenges, all pending.
    async fn create(attempt: &'a Attempt<'a>, request: &DynamicObject, issuer: &Issuer, server: &str) -> kube::Result<Self> {
        let request_name = request.metadata.name.clone().unwrap_or_default();
        let name = format!("{request_name}-{}", stable_number(&format!("{request_name}/{server}")));
        let client = attempt.controller.client.clone();
        let orders: Api<DynamicObject> = Api::namespaced_with(client.clone(), &attempt.namespace, &orders());
        let base = acme_base(server);
        let account = stable_number(&attempt.spec.issuer_ref.name);
        let order_id = stable_number(&name);
        let request_ref = object_ref("cert-manager.io/v1", "CertificateRequest", &request.metadata);
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "acme.cert-manager.io/v1",
            "kind": "Order",
            "metadata": {
                "name": name,
                "namespace": attempt.namespace,
                "annotations": request.metadata.annotations,
                "ownerReferences": [controller_ref(&request_ref)],
            },
            "spec": {
                "request": request.data["spec"]["request"],
                "issuerRef": attempt.spec.issuer_ref,
                "commonName": attempt.spec.dns_names.first(),
                "dnsNames": attempt.spec.dns_names,
            },
        }))
        .expect("an Order");
        let created = create_or_get(&orders, &name, &object).await?;
        let mut order = Order {
            attempt,
            challenge_refs: Vec::new(),
            reference: object_ref("acme.cert-manager.io/v1", "Order", &created.metadata),
            orders,
            challenges: Api::namespaced_with(client, &attempt.namespace, &challenges()),
            challenge_names: attempt
                .spec
                .dns_names
                .iter()
                .map(|dns| (format!("{name}-{}", stable_number(&format!("{name}/{dns}"))), dns.clone()))
                .collect(),
            name,
        };

        // The ACME account key's thumbprint, the second half of every key authorization.
        let thumbprint = random_token();
        let mut authorizations = Vec::new();
        let mut specs = Vec::new();
        for (challenge_name, dns) in &order.challenge_names {
            let authz_id = stable_number(challenge_name);
            let authz_url = format!("{base}/acme/authz/{account}/{authz_id}");
            let token = random_token();
            let challenge_url = || format!("{base}/acme/chall/{account}/{authz_id}/{}", &random_token()[..6]);
            authorizations.push(json!({
                "url": authz_url,
                "identifier": dns,
                "initialState": "pending",
                "wildcard": false,
                "challenges": [
                    {"type": "http-01", "url": challenge_url(), "token": token},
                    {"type": "dns-01", "url": challenge_url(), "token": random_token()},
                    {"type": "tls-alpn-01", "url": challenge_url(), "token": random_token()},
                ],
            }));
            specs.push((challenge_name.clone(), json!({
                "url": authorizations.last().unwrap()["challenges"][0]["url"],
                "authorizationURL": authz_url,
                "dnsName": dns,
                "wildcard": false,
                "type": "HTTP-01",
                "token": token,
                "key": format!("{token}.{thumbprint}"),
                "solver": issuer.solver,
                "issuerRef": attempt.spec.issuer_ref,
            })));
        }
        order
            .write_status(json!({
                "url": format!("{base}/acme/order/{account}/{order_id}"),
                "finalizeURL": format!("{base}/acme/finalize/{account}/{order_id}"),
                "authorizations": authorizations,
                "state": "pending",
            }))
            .await?;

        let order_events = attempt.recorder("cert-manager-orders");
        let challenge_events = attempt.recorder("cert-manager-challenges");
        for (challenge_name, spec) in specs {
            let object: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "acme.cert-manager.io/v1",
                "kind": "Challenge",
                "metadata": {
                    "name": challenge_name,
                    "namespace": attempt.namespace,
                    "ownerReferences": [controller_ref(&order.reference)],
                },
                "spec": spec,
            }))
            .expect("a Challenge");
            let created = create_or_get(&order.challenges, &challenge_name, &object).await?;
            let challenge_ref = object_ref("acme.cert-manager.io/v1", "Challenge", &created.metadata);
            order_events.normal(
                &order.reference,
                "Created",
                &format!("Created Challenge resource {challenge_name:?} for domain {:?}", spec["dnsName"].as_str().unwrap_or_default()),
            );
            order
                .write_challenge_status(
                    &challenge_name,
                    json!({"processing": true, "presented": true, "presentedAt": now().to_string(), "state": "pending", "reason": ""}),
                )
                .await?;
            challenge_events.normal(&challenge_ref, "Started", "Challenge scheduled for processing");
            challenge_events.normal(&challenge_ref, "Presented", "Presented challenge using HTTP-01 challenge mechanism");
            order.challenge_refs.push(challenge_ref);
        }
        Ok(order)
    }

    async fn write_status(&self, status: Value) -> kube::Result<()> {
        let patch = json!({"status": status});
        let params = manager("orders");
        retry(|| async { self.orders.patch_status(&self.name, &params, &Patch::Merge(&patch)).await }).await?;
        Ok(())
    }

    async fn write_challenge_status(&self, name: &str, status: Value) -> kube::Result<()> {
        let patch = json!({"status": status});
        let params = manager("challenges");
        retry(|| async { self.challenges.patch_status(name, &params, &Patch::Merge(&patch)).await }).await?;
        Ok(())
    }

    /// The HTTP-01 self check never sees the token: every Challenge and the Order invalid.
    async fn fail(&self) -> kube::Result<()> {
        for (name, _) in &self.challenge_names {
            self.write_challenge_status(
                name,
                json!({"processing": false, "presented": false, "state": "invalid", "reason": SELF_CHECK_404}),
            )
            .await?;
        }
        self.write_status(json!({"state": "invalid", "failureTime": now().to_string()})).await
    }

    async fn succeed(&self, chain_base64: &str) -> kube::Result<()> {
        let events = self.attempt.recorder("cert-manager-challenges");
        for ((name, dns), reference) in self.challenge_names.iter().zip(&self.challenge_refs) {
            self.write_challenge_status(
                name,
                json!({"processing": false, "presented": false, "state": "valid", "reason": "Successfully authorized domain"}),
            )
            .await?;
            events.normal(reference, "DomainVerified", &format!("Domain {dns:?} verified with \"HTTP-01\" validation"));
        }
        self.write_status(json!({"state": "valid", "certificate": chain_base64})).await?;
        self.attempt.recorder("cert-manager-orders").normal(&self.reference, "Complete", "Order completed successfully");
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
            issuer_ref: IssuerRef { name: issuer.into(), kind: "ClusterIssuer".into(), group: "cert-manager.io".into() },
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
        let (reason, message) = issuance_reason(&spec("letsencrypt-staging", &["a.example"]), None).unwrap();
        assert_eq!(reason, "DoesNotExist");
        assert_eq!(message, "Issuing certificate as Secret does not exist");
    }

    #[test]
    fn an_issuer_switch_is_an_incorrect_issuer() {
        let secret = issued_secret("letsencrypt-staging", "a.example");
        assert!(issuance_reason(&spec("letsencrypt-staging", &["a.example"]), Some(&secret)).is_none());
        let (reason, message) = issuance_reason(&spec("letsencrypt-prod", &["a.example"]), Some(&secret)).unwrap();
        assert_eq!(reason, "IncorrectIssuer");
        assert_eq!(
            message,
            "Issuing certificate as Secret was previously issued by ClusterIssuer.cert-manager.io/letsencrypt-staging"
        );
        let (reason, _) = issuance_reason(&spec("letsencrypt-staging", &["a.example", "b.example"]), Some(&secret)).unwrap();
        assert_eq!(reason, "RequestChanged");
    }

    #[test]
    fn settled_means_ready_or_failed_at_this_generation() {
        let ready = json!({"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2}]});
        assert!(settled(&ready, 2));
        assert!(!settled(&ready, 3));
        let failed = json!({"conditions": [
            {"type": "Ready", "status": "False", "observedGeneration": 1},
            {"type": "Issuing", "status": "False", "reason": "Failed", "observedGeneration": 1},
        ]});
        assert!(settled(&failed, 1));
        let issuing = json!({"conditions": [{"type": "Issuing", "status": "True", "observedGeneration": 1}]});
        assert!(!settled(&issuing, 1));
        assert!(!settled(&Value::Null, 1));
    }

    #[test]
    fn generated_names_look_like_kubernetes_ones() {
        let suffix = random_suffix(5);
        assert_eq!(suffix.len(), 5);
        assert!(suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(random_token().len(), 43);
    }
}
