//! ingress-shim: an Ingress annotated with `cert-manager.io/cluster-issuer` or
//! `cert-manager.io/issuer` gets one Certificate per `spec.tls` entry, named after its
//! secretName and controlled by the Ingress. Changing the annotation (staging -> prod)
//! updates the Certificate's issuerRef, which bumps its generation and re-issues it.

use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::{IssuerRef, certificates, create_or_get, dynamic};
use crate::controllers::support::{
    Change, Recorder, change, controller_ref, delete_controlled, is_controlled_by, key, object_ref,
    report, retry, spawn_watch,
};

const COMPONENT: &str = "cert-manager-ingress-shim";

pub(crate) fn spawn(client: &Client) {
    let recorder = Recorder::new(client.clone(), COMPONENT);
    let client = client.clone();
    spawn_watch(Api::<Ingress>::all(client.clone()), move |event| {
        let (client, recorder) = (client.clone(), recorder.clone());
        async move {
            let (ingress, result) = match change(event) {
                Some(Change::Applied(ingress)) => {
                    let result = sync(&client, &recorder, &ingress).await;
                    (ingress, result)
                }
                Some(Change::Deleted(ingress)) => {
                    // The garbage collector's part: Certificates go with their Ingress.
                    let result = delete_owned(&client, &ingress, &[]).await;
                    (ingress, result)
                }
                None => return,
            };
            if let Err(e) = result {
                report(COMPONENT, &key(&ingress), "syncing Certificates", &e);
            }
        }
    });
}

/// The issuer an Ingress asks for through its annotations, if any.
fn requested_issuer(ingress: &Ingress) -> Option<IssuerRef> {
    let annotations = ingress.metadata.annotations.as_ref()?;
    let (name, kind) = if let Some(name) = annotations.get("cert-manager.io/cluster-issuer") {
        (name, "ClusterIssuer")
    } else {
        let name = annotations.get("cert-manager.io/issuer")?;
        (
            name,
            annotations
                .get("cert-manager.io/issuer-kind")
                .map_or("Issuer", String::as_str),
        )
    };
    let group = annotations
        .get("cert-manager.io/issuer-group")
        .map_or("cert-manager.io", String::as_str);
    Some(IssuerRef {
        name: name.clone(),
        kind: kind.to_owned(),
        group: group.to_owned(),
    })
}

/// The Certificate specs an Ingress needs: (name, spec) per usable tls entry.
fn desired_certificates(ingress: &Ingress, issuer: &IssuerRef) -> Vec<(String, Value)> {
    let tls = ingress.spec.as_ref().and_then(|s| s.tls.as_ref());
    tls.into_iter()
        .flatten()
        .filter_map(|entry| {
            let secret = entry.secret_name.clone().filter(|s| !s.is_empty())?;
            let hosts = entry.hosts.clone().filter(|h| !h.is_empty())?;
            let spec = json!({
                "dnsNames": hosts,
                "secretName": secret,
                "issuerRef": issuer,
                "usages": ["digital signature", "key encipherment"],
            });
            Some((secret, spec))
        })
        .collect()
}

/// Whether an existing Certificate already has what ingress-shim would write.
fn up_to_date(existing: &Value, desired: &Value) -> bool {
    let issuer = |spec: &Value| serde_json::from_value::<IssuerRef>(spec["issuerRef"].clone()).ok();
    existing["dnsNames"] == desired["dnsNames"]
        && existing["secretName"] == desired["secretName"]
        && matches!((issuer(existing), issuer(desired)), (Some(a), Some(b)) if a.same_as(&b))
}

async fn sync(client: &Client, recorder: &Recorder, ingress: &Ingress) -> kube::Result<()> {
    let Some(issuer) = requested_issuer(ingress) else {
        return Ok(());
    };
    if ingress.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let namespace = ingress
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let ingress_ref = object_ref("networking.k8s.io/v1", "Ingress", &ingress.metadata);
    let uid = ingress_ref.uid.clone().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &certificates());
    let desired = desired_certificates(ingress, &issuer);
    for (name, spec) in &desired {
        match retry(|| api.get_opt(name)).await? {
            None => {
                let certificate = dynamic(json!({
                    "apiVersion": "cert-manager.io/v1",
                    "kind": "Certificate",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "ownerReferences": [controller_ref(&ingress_ref)],
                    },
                    "spec": spec,
                }));
                create_or_get(&api, &certificate, COMPONENT).await?;
                recorder.normal(
                    &ingress_ref,
                    "CreateCertificate",
                    &format!("Successfully created Certificate {name:?}"),
                );
            }
            // Someone else's Certificate: cert-manager refuses to touch it too.
            Some(existing) if !is_controlled_by(&existing.metadata, &uid) => {}
            Some(existing) if up_to_date(&existing.data["spec"], spec) => {}
            Some(_) => {
                let params = PatchParams {
                    field_manager: Some(COMPONENT.to_owned()),
                    ..PatchParams::default()
                };
                let patch = json!({"spec": spec});
                retry(|| async { api.patch(name, &params, &Patch::Merge(&patch)).await }).await?;
                recorder.normal(
                    &ingress_ref,
                    "UpdateCertificate",
                    &format!("Successfully updated Certificate {name:?}"),
                );
            }
        }
    }
    let keep: Vec<&str> = desired.iter().map(|(name, _)| name.as_str()).collect();
    delete_owned(client, ingress, &keep).await
}

/// Deletes the Certificates this Ingress controls except those in `keep`: a tls entry
/// removed from the Ingress takes its Certificate with it, as in cert-manager.
async fn delete_owned(client: &Client, ingress: &Ingress, keep: &[&str]) -> kube::Result<()> {
    let (Some(namespace), Some(uid)) = (&ingress.metadata.namespace, &ingress.metadata.uid) else {
        return Ok(());
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &certificates());
    delete_controlled(&api, std::slice::from_ref(uid), keep)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(annotations: Value, tls: Value) -> Ingress {
        serde_json::from_value(json!({
            "metadata": {"name": "polls-ingress", "namespace": "default", "annotations": annotations},
            "spec": {"tls": tls},
        }))
        .unwrap()
    }

    #[test]
    fn reads_the_issuer_annotations() {
        let cluster = ingress(
            json!({"cert-manager.io/cluster-issuer": "letsencrypt-staging"}),
            json!([]),
        );
        let issuer = requested_issuer(&cluster).unwrap();
        assert_eq!(
            (issuer.name.as_str(), issuer.kind.as_str()),
            ("letsencrypt-staging", "ClusterIssuer")
        );
        assert_eq!(issuer.group, "cert-manager.io");

        let namespaced = ingress(json!({"cert-manager.io/issuer": "ca"}), json!([]));
        assert_eq!(requested_issuer(&namespaced).unwrap().kind, "Issuer");

        let plain = ingress(json!({"kubernetes.io/ingress.class": "nginx"}), json!([]));
        assert!(requested_issuer(&plain).is_none());
    }

    #[test]
    fn one_certificate_per_usable_tls_entry() {
        let ing = ingress(
            json!({"cert-manager.io/cluster-issuer": "letsencrypt-staging"}),
            json!([
                {"hosts": ["your_domain.com"], "secretName": "polls-tls"},
                {"hosts": ["a.example", "b.example"], "secretName": "ab-tls"},
                {"hosts": ["no-secret.example"]},
                {"secretName": "no-hosts"},
            ]),
        );
        let issuer = requested_issuer(&ing).unwrap();
        let desired = desired_certificates(&ing, &issuer);
        let names: Vec<&str> = desired.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["polls-tls", "ab-tls"]);
        assert_eq!(desired[1].1["dnsNames"], json!(["a.example", "b.example"]));
        assert_eq!(
            desired[0].1["issuerRef"],
            json!({"name": "letsencrypt-staging", "kind": "ClusterIssuer", "group": "cert-manager.io"})
        );
    }

    #[test]
    fn an_issuer_switch_is_a_change() {
        let ing = ingress(
            json!({"cert-manager.io/cluster-issuer": "letsencrypt-prod"}),
            json!([{"hosts": ["your_domain.com"], "secretName": "polls-tls"}]),
        );
        let desired = &desired_certificates(&ing, &requested_issuer(&ing).unwrap())[0].1;
        let mut existing = desired.clone();
        assert!(up_to_date(&existing, desired));
        existing["issuerRef"]["name"] = json!("letsencrypt-staging");
        assert!(!up_to_date(&existing, desired));
    }
}
