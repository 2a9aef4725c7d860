//! What an object uses by name in its own namespace: the Secrets, ConfigMaps,
//! ServiceAccounts, Services and PersistentVolumeClaims its pod spec (of a Pod or of a
//! workload's pod template), its Ingress rules, its StatefulSet's governing Service
//! or its ServiceAccount's pull secrets name. A prune keeps what a kept object uses.
//!
//! The fields are read through k8s-openapi's types, so every place the API defines
//! (init and ephemeral containers, projected volume sources, ...) is covered by name.

use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, LocalObjectReference, ObjectReference, PodSpec, Volume,
};
use k8s_openapi::api::networking::v1::{IngressBackend, IngressSpec};
use serde_json::Value;

/// A kind other objects name in their spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Referent {
    Secret,
    ConfigMap,
    ServiceAccount,
    Service,
    PersistentVolumeClaim,
}

impl Referent {
    /// The referent an object of this kind is, if any (all are in the core group).
    pub fn of(group: &str, kind: &str) -> Option<Referent> {
        if !group.is_empty() {
            return None;
        }
        Some(match kind {
            "Secret" => Referent::Secret,
            "ConfigMap" => Referent::ConfigMap,
            "ServiceAccount" => Referent::ServiceAccount,
            "Service" => Referent::Service,
            "PersistentVolumeClaim" => Referent::PersistentVolumeClaim,
            _ => return None,
        })
    }
}

/// One use: the object named, and where (`envFrom`, `volume`, `tls`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub what: Referent,
    pub name: String,
    pub how: &'static str,
}

/// The kinds that use others by name: what a prune lists to find users it was not given.
pub const USERS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "ReplicationController"),
    ("", "ServiceAccount"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("networking.k8s.io", "Ingress"),
];

/// What `object`, of kind `kind` in `group`, uses; nothing for other kinds or for a
/// spec that does not read as its type.
pub fn uses(group: &str, kind: &str, object: &Value) -> Vec<Use> {
    let mut found = Vec::new();
    let pod_spec = match (group, kind) {
        ("", "Pod") => Some("/spec"),
        ("", "ReplicationController" | "PodTemplate")
        | ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job") => Some("/spec/template/spec"),
        ("batch", "CronJob") => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    };
    if let Some(spec) = pod_spec.and_then(|p| read::<PodSpec>(object.pointer(p))) {
        pod_uses(&spec, &mut found);
    }
    match (group, kind) {
        ("apps", "StatefulSet") => {
            if let Some(name) = object["spec"]["serviceName"].as_str() {
                push(&mut found, Referent::Service, name, "serviceName");
            }
        }
        ("networking.k8s.io", "Ingress") => {
            if let Some(spec) = read::<IngressSpec>(object.get("spec")) {
                ingress_uses(&spec, &mut found);
            }
        }
        ("", "ServiceAccount") => {
            let pulls = read::<Vec<LocalObjectReference>>(object.get("imagePullSecrets"));
            for secret in pulls.iter().flatten() {
                push(
                    &mut found,
                    Referent::Secret,
                    &secret.name,
                    "imagePullSecrets",
                );
            }
            let secrets = read::<Vec<ObjectReference>>(object.get("secrets"));
            for secret in secrets.iter().flatten() {
                if let Some(name) = &secret.name {
                    push(&mut found, Referent::Secret, name, "secrets");
                }
            }
        }
        _ => {}
    }
    found
}

fn read<T: k8s_openapi::serde::de::DeserializeOwned>(value: Option<&Value>) -> Option<T> {
    serde_json::from_value(value?.clone()).ok()
}

fn push(found: &mut Vec<Use>, what: Referent, name: &str, how: &'static str) {
    let used = Use {
        what,
        name: name.to_owned(),
        how,
    };
    if !name.is_empty() && !found.contains(&used) {
        found.push(used);
    }
}

fn pod_uses(spec: &PodSpec, found: &mut Vec<Use>) {
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c: &Container| (&c.env, &c.env_from));
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| (&c.env, &c.env_from));
    for (env, env_from) in containers.chain(ephemeral) {
        env_uses(env.as_deref(), env_from.as_deref(), found);
    }
    for volume in spec.volumes.iter().flatten() {
        volume_uses(volume, found);
    }
    for secret in spec.image_pull_secrets.iter().flatten() {
        push(found, Referent::Secret, &secret.name, "imagePullSecrets");
    }
    // serviceAccount is the deprecated spelling the server still fills in.
    let account = spec
        .service_account_name
        .as_ref()
        .or(spec.service_account.as_ref());
    if let Some(name) = account {
        push(found, Referent::ServiceAccount, name, "serviceAccountName");
    }
}

fn env_uses(env: Option<&[EnvVar]>, env_from: Option<&[EnvFromSource]>, found: &mut Vec<Use>) {
    for source in env_from.into_iter().flatten() {
        if let Some(map) = &source.config_map_ref {
            push(found, Referent::ConfigMap, &map.name, "envFrom");
        }
        if let Some(secret) = &source.secret_ref {
            push(found, Referent::Secret, &secret.name, "envFrom");
        }
    }
    for from in env
        .into_iter()
        .flatten()
        .filter_map(|e| e.value_from.as_ref())
    {
        if let Some(key) = &from.config_map_key_ref {
            push(found, Referent::ConfigMap, &key.name, "env");
        }
        if let Some(key) = &from.secret_key_ref {
            push(found, Referent::Secret, &key.name, "env");
        }
    }
}

fn volume_uses(volume: &Volume, found: &mut Vec<Use>) {
    if let Some(name) = volume.secret.as_ref().and_then(|s| s.secret_name.as_ref()) {
        push(found, Referent::Secret, name, "volume");
    }
    if let Some(map) = &volume.config_map {
        push(found, Referent::ConfigMap, &map.name, "volume");
    }
    if let Some(claim) = &volume.persistent_volume_claim {
        push(
            found,
            Referent::PersistentVolumeClaim,
            &claim.claim_name,
            "volume",
        );
    }
    // Volume plugins that log in to their storage with a Secret's credentials.
    let plugin_secrets = [
        volume
            .csi
            .as_ref()
            .and_then(|c| c.node_publish_secret_ref.as_ref()),
        volume.cephfs.as_ref().and_then(|v| v.secret_ref.as_ref()),
        volume.cinder.as_ref().and_then(|v| v.secret_ref.as_ref()),
        volume
            .flex_volume
            .as_ref()
            .and_then(|v| v.secret_ref.as_ref()),
        volume.iscsi.as_ref().and_then(|v| v.secret_ref.as_ref()),
        volume.rbd.as_ref().and_then(|v| v.secret_ref.as_ref()),
        volume.scale_io.as_ref().map(|v| &v.secret_ref),
        volume
            .storageos
            .as_ref()
            .and_then(|v| v.secret_ref.as_ref()),
    ];
    for secret in plugin_secrets.into_iter().flatten() {
        push(found, Referent::Secret, &secret.name, "volume");
    }
    if let Some(azure) = &volume.azure_file {
        push(found, Referent::Secret, &azure.secret_name, "volume");
    }
    let sources = volume
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten());
    for source in sources {
        if let Some(secret) = &source.secret {
            push(found, Referent::Secret, &secret.name, "projected volume");
        }
        if let Some(map) = &source.config_map {
            push(found, Referent::ConfigMap, &map.name, "projected volume");
        }
    }
}

fn ingress_uses(spec: &IngressSpec, found: &mut Vec<Use>) {
    for tls in spec.tls.iter().flatten() {
        if let Some(name) = &tls.secret_name {
            push(found, Referent::Secret, name, "tls");
        }
    }
    let backend = |backend: &IngressBackend, how, found: &mut Vec<Use>| {
        if let Some(service) = &backend.service {
            push(found, Referent::Service, &service.name, how);
        }
    };
    if let Some(default) = &spec.default_backend {
        backend(default, "defaultBackend", found);
    }
    let paths = spec
        .rules
        .iter()
        .flatten()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| &h.paths);
    for path in paths {
        backend(&path.backend, "backend", found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(found: &[Use]) -> Vec<String> {
        found
            .iter()
            .map(|u| format!("{:?}/{} ({})", u.what, u.name, u.how))
            .collect()
    }

    #[test]
    fn a_pod_template_uses_what_its_containers_volumes_and_account_name() {
        let spec = json!({
            "serviceAccountName": "runner",
            "imagePullSecrets": [{"name": "registry"}],
            "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "init-config"}}]}],
            "containers": [{"name": "c",
                "envFrom": [{"secretRef": {"name": "app-secret"}}],
                "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "K"}}},
                        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "P"}}},
                        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
            "ephemeralContainers": [{"name": "debug", "envFrom": [{"secretRef": {"name": "debug-secret"}}]}],
            "volumes": [
                {"name": "a", "secret": {"secretName": "certs"}},
                {"name": "b", "configMap": {"name": "files"}},
                {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "d", "projected": {"sources": [{"secret": {"name": "p-secret"}},
                                                        {"configMap": {"name": "p-config"}},
                                                        {"serviceAccountToken": {"path": "t"}}]}},
                {"name": "e", "emptyDir": {}}]
        });
        let deployment = json!({"spec": {"template": {"spec": spec}}});
        assert_eq!(
            names(&uses("apps", "Deployment", &deployment)),
            [
                "Secret/app-secret (envFrom)",
                "ConfigMap/app-config (env)",
                "Secret/db (env)",
                "ConfigMap/init-config (envFrom)",
                "Secret/debug-secret (envFrom)",
                "Secret/certs (volume)",
                "ConfigMap/files (volume)",
                "PersistentVolumeClaim/data (volume)",
                "Secret/p-secret (projected volume)",
                "ConfigMap/p-config (projected volume)",
                "Secret/registry (imagePullSecrets)",
                "ServiceAccount/runner (serviceAccountName)",
            ]
        );
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}});
        assert_eq!(uses("batch", "CronJob", &cron).len(), 12);
        assert_eq!(uses("", "Pod", &json!({"spec": spec})).len(), 12);
        // The same spec under a kind that has none: nothing.
        assert!(uses("", "ConfigMap", &deployment).is_empty());
    }

    #[test]
    fn volume_plugins_use_the_secrets_they_log_in_with() {
        let pod = json!({"spec": {"containers": [{"name": "c"}], "volumes": [
            {"name": "a", "cephfs": {"monitors": ["m"], "secretRef": {"name": "ceph"}}},
            {"name": "b", "rbd": {"monitors": ["m"], "image": "i", "secretRef": {"name": "rbd"}}},
            {"name": "c", "iscsi": {"targetPortal": "t", "iqn": "q", "lun": 0,
                                    "secretRef": {"name": "iscsi"}}},
            {"name": "d", "flexVolume": {"driver": "x", "secretRef": {"name": "flex"}}},
            {"name": "e", "azureFile": {"secretName": "azure", "shareName": "s"}},
            {"name": "f", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi"}}}]}});
        assert_eq!(
            names(&uses("", "Pod", &pod)),
            [
                "Secret/ceph (volume)",
                "Secret/rbd (volume)",
                "Secret/iscsi (volume)",
                "Secret/flex (volume)",
                "Secret/azure (volume)",
                "Secret/csi (volume)",
            ]
        );
    }

    #[test]
    fn an_ingress_uses_its_tls_secrets_and_backend_services() {
        let ingress = json!({"spec": {
            "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
            "tls": [{"hosts": ["a.example.com"], "secretName": "a-tls"}],
            "rules": [{"host": "a.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                {"path": "/r", "pathType": "Prefix", "backend": {"resource": {"kind": "Bucket", "name": "b"}}}]}}]
        }});
        assert_eq!(
            names(&uses("networking.k8s.io", "Ingress", &ingress)),
            [
                "Secret/a-tls (tls)",
                "Service/fallback (defaultBackend)",
                "Service/web (backend)"
            ]
        );
    }

    #[test]
    fn a_statefulset_uses_its_service_and_an_account_its_pull_secrets() {
        let sts = json!({"spec": {"serviceName": "db-headless", "selector": {},
            "template": {"spec": {"containers": [{"name": "c"}]}}}});
        assert_eq!(
            names(&uses("apps", "StatefulSet", &sts)),
            ["Service/db-headless (serviceName)"]
        );
        let account =
            json!({"imagePullSecrets": [{"name": "registry"}], "secrets": [{"name": "token"}]});
        assert_eq!(
            names(&uses("", "ServiceAccount", &account)),
            [
                "Secret/registry (imagePullSecrets)",
                "Secret/token (secrets)"
            ]
        );
    }
}
