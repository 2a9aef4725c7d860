//! The ACME side of an issuance: the Order a CertificateRequest gets from an ACME
//! issuer and its HTTP-01 Challenges, with the URLs, tokens and states cert-manager's
//! orders and challenges controllers record.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject};
use rand::Rng;
use serde_json::json;

use super::issuance::{Attempt, Request};
use super::issuers::{Issuer, acme_base};
use super::{challenges, create_or_get, dynamic, orders, stable_number, write_status};
use crate::controllers::support::{controller_ref, now, object_ref};

/// The CertificateRequest controller for ACME issuers, as Event source and field manager.
pub(super) const ACME_ISSUER: &str = "cert-manager-certificaterequests-issuer-acme";
const ORDERS: &str = "cert-manager-orders";
const CHALLENGES: &str = "cert-manager-challenges";
const SELF_CHECK_404: &str =
    "Waiting for HTTP-01 challenge propagation: wrong status code '404', expected '200'";

/// An HTTP-01 Challenge of an Order, for one DNS name.
struct Challenge {
    name: String,
    dns_name: String,
    reference: ObjectReference,
}

/// An ACME Order of a CertificateRequest with its Challenges.
pub(super) struct Order<'a> {
    attempt: &'a Attempt<'a>,
    pub(super) name: String,
    reference: ObjectReference,
    orders: Api<DynamicObject>,
    challenges_api: Api<DynamicObject>,
    challenges: Vec<Challenge>,
}

impl<'a> Order<'a> {
    /// Creates the Order of a request, named `<request>-<hash>` and owned by the
    /// request, and an HTTP-01 Challenge per DNS name, all pending.
    pub(super) async fn create(
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
        let client = attempt.client();
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
    pub(super) async fn fail(&self) -> kube::Result<()> {
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
    pub(super) async fn succeed(&self, chain_base64: &str) -> kube::Result<()> {
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

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_acme_sized() {
        let token = random_token();
        assert_eq!(token.len(), 43);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
