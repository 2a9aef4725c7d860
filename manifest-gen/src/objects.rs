//! The objects themselves, built from k8s-openapi's typed structs so that every field has
//! the type and name the API expects.

use crate::plan::{JOB_HASH_LEN, JobPlan, Plan, ProbeKind, Security};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, HTTPGetAction,
    HTTPHeader, LocalObjectReference, Namespace, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SeccompProfile, SecretEnvSource, SecurityContext, Service,
    ServicePort, ServiceSpec, TCPSocketAction,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The pod-template annotation that carries the hash of the envFrom sources.
pub const CONFIG_HASH_ANNOTATION: &str = "kpipe/config-hash";

/// The generated objects in apply order, and notes for stderr.
pub struct Generated {
    pub objects: Vec<Value>,
    pub notes: Vec<String>,
}

pub fn generate(plan: &Plan) -> Generated {
    let mut objects = Vec::new();
    let mut notes = Vec::new();
    if plan.emit_namespace
        && let Some(ns) = &plan.namespace
    {
        objects.push(to_value(&Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                ..Default::default()
            },
            ..Default::default()
        }));
    }
    // The Job first: a rolling Deployment then starts its pods while (or after) it migrates.
    if let Some(job) = &plan.job {
        objects.push(to_value(&migration_job(plan, job)));
    }
    objects.push(to_value(&deployment(plan)));
    objects.push(to_value(&service(plan)));
    if plan.ingress.is_some() {
        objects.push(to_value(&ingress(plan)));
    }
    if plan.hpa.is_some() {
        objects.push(to_value(&autoscaler(plan)));
    }
    if plan.pdb {
        if plan.max_replicas() > 1 {
            objects.push(to_value(&disruption_budget(plan)));
        } else {
            notes.push(format!(
                "--pdb skipped: at most {} replica can run, and a PodDisruptionBudget with \
                 minAvailable 1 would block every node drain",
                plan.max_replicas()
            ));
        }
    }
    Generated { objects, notes }
}

fn to_value<T: k8s_openapi::serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).expect("k8s-openapi objects serialize to JSON")
}

/// `app: <app>` exactly: the tutorial's selector, immutable on a Deployment.
fn selector_labels(plan: &Plan) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), plan.app.clone())])
}

/// Labels of objects and pod templates; never used as a selector.
fn labels(plan: &Plan, component: &str, with_app: bool) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), plan.app.clone()),
        (
            "app.kubernetes.io/component".to_owned(),
            component.to_owned(),
        ),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "kpipe".to_owned(),
        ),
    ]);
    if with_app {
        labels.extend(selector_labels(plan));
    }
    labels
}

/// kapp's change group of the migration Job, which the Deployment follows.
fn migration_group(plan: &Plan) -> String {
    format!("{}/migrate", plan.app)
}

/// The two ACME ClusterIssuers of the tutorial (cert-manager's documented form):
/// Let's Encrypt staging and production, HTTP-01 solved through the nginx class.
pub fn cluster_issuers(email: &str) -> Result<Vec<Value>, kpipe_core::Error> {
    let valid = email.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
    });
    if !valid {
        return Err(kpipe_core::Error::input(format!(
            "--cluster-issuers: {email:?} is not an email address (Let's Encrypt registers the ACME account with it)"
        )));
    }
    let issuer = |name: &str, server: &str| {
        serde_json::json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": {"name": name},
            "spec": {"acme": {
                "email": email,
                "server": server,
                "privateKeySecretRef": {"name": format!("{name}-account-key")},
                "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}],
            }},
        })
    };
    Ok(vec![
        issuer(
            "letsencrypt-staging",
            "https://acme-staging-v02.api.letsencrypt.org/directory",
        ),
        issuer(
            "letsencrypt-prod",
            "https://acme-v02.api.letsencrypt.org/directory",
        ),
    ])
}

fn metadata(plan: &Plan, name: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: plan.namespace.clone(),
        labels: Some(labels(plan, component, true)),
        ..Default::default()
    }
}

fn env_from(plan: &Plan) -> Option<Vec<EnvFromSource>> {
    let mut sources = Vec::new();
    // The tutorial's order: the Secret, then the ConfigMap.
    if let Some(name) = &plan.env.secret {
        sources.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    if let Some(name) = &plan.env.config_map {
        sources.push(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    (!sources.is_empty()).then_some(sources)
}

fn resources(plan: &Plan) -> Option<ResourceRequirements> {
    let map = |list: &[(&str, String)]| {
        (!list.is_empty()).then(|| {
            list.iter()
                .map(|(name, q)| (name.to_string(), Quantity(q.clone())))
                .collect::<BTreeMap<_, _>>()
        })
    };
    let (requests, limits) = (map(&plan.requests), map(&plan.limits));
    (requests.is_some() || limits.is_some()).then(|| ResourceRequirements {
        requests,
        limits,
        ..Default::default()
    })
}

fn container_security(plan: &Plan) -> Option<SecurityContext> {
    match plan.security {
        Security::Off => None,
        Security::Restricted { run_as_user } => Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            run_as_non_root: run_as_user.map(|_| true),
            run_as_user,
            ..Default::default()
        }),
    }
}

fn pod_security(plan: &Plan) -> Option<PodSecurityContext> {
    match plan.security {
        Security::Off => None,
        Security::Restricted { .. } => Some(PodSecurityContext {
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

fn probe(plan: &Plan, initial_delay: i32, period: i32) -> Option<Probe> {
    let port = IntOrString::String(plan.port_name.clone());
    let (tcp_socket, http_get) = match plan.probe.as_ref()? {
        ProbeKind::Tcp => (
            Some(TCPSocketAction {
                port,
                ..Default::default()
            }),
            None,
        ),
        ProbeKind::HttpGet { path, host } => (
            None,
            Some(HTTPGetAction {
                path: Some(path.clone()),
                port,
                http_headers: host.as_ref().map(|host| {
                    vec![HTTPHeader {
                        name: "Host".into(),
                        value: host.clone(),
                    }]
                }),
                ..Default::default()
            }),
        ),
    };
    Some(Probe {
        tcp_socket,
        http_get,
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(3),
        ..Default::default()
    })
}

fn image_pull_secrets(plan: &Plan) -> Option<Vec<LocalObjectReference>> {
    (!plan.image_pull_secrets.is_empty()).then(|| {
        plan.image_pull_secrets
            .iter()
            .map(|name| LocalObjectReference { name: name.clone() })
            .collect()
    })
}

fn deployment(plan: &Plan) -> Deployment {
    let container = Container {
        name: plan.container.clone(),
        image: Some(plan.image.clone()),
        env_from: env_from(plan),
        ports: Some(vec![ContainerPort {
            container_port: plan.port,
            name: Some(plan.port_name.clone()),
            ..Default::default()
        }]),
        // Readiness early and often, liveness late and patient: a slow start must not
        // restart the container, a hung one must.
        readiness_probe: probe(plan, 5, 10),
        liveness_probe: probe(plan, 30, 20),
        resources: resources(plan),
        security_context: container_security(plan),
        ..Default::default()
    };
    // Kept under --versioned-config, where the versions' names alone already roll the
    // pods: it changes exactly when they do (so it never rolls them more often), the Job's
    // name is derived from it, and it still rolls the pods for a stream whose sources are
    // referenced by flag as given.
    let annotations = plan
        .env
        .config_hash
        .as_ref()
        .map(|hash| BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_owned(), hash.clone())]));
    let mut meta = metadata(plan, &plan.deployment, "web");
    if plan.job.is_some() {
        // Applied by `kapply --wait` only once the migration Job is complete.
        meta.annotations = Some(BTreeMap::from([(
            "kapp.k14s.io/change-rule".to_owned(),
            format!("upsert after upserting {}", migration_group(plan)),
        )]));
    }
    Deployment {
        metadata: meta,
        spec: Some(DeploymentSpec {
            replicas: plan.replicas,
            selector: LabelSelector {
                match_labels: Some(selector_labels(plan)),
                ..Default::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(plan.max_unavailable.clone()),
                    ..Default::default()
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(plan, "web", true)),
                    annotations,
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    image_pull_secrets: image_pull_secrets(plan),
                    security_context: pod_security(plan),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn service(plan: &Plan) -> Service {
    Service {
        metadata: metadata(plan, &plan.service, "web"),
        spec: Some(ServiceSpec {
            type_: Some(plan.service_type.as_str().into()),
            selector: Some(selector_labels(plan)),
            ports: Some(vec![ServicePort {
                port: plan.port,
                target_port: Some(IntOrString::Int(plan.port)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ingress(plan: &Plan) -> Ingress {
    let ingress = plan.ingress.as_ref().expect("called with an ingress plan");
    let annotations = ingress
        .tls
        .as_ref()
        .and_then(|tls| tls.issuer.clone())
        .map(|(key, issuer)| BTreeMap::from([(key.to_owned(), issuer)]));
    let rules = ingress
        .hosts
        .iter()
        .map(|host| IngressRule {
            host: Some(host.clone()),
            http: Some(HTTPIngressRuleValue {
                paths: vec![HTTPIngressPath {
                    path: Some("/".into()),
                    path_type: "Prefix".into(),
                    backend: IngressBackend {
                        service: Some(IngressServiceBackend {
                            name: plan.service.clone(),
                            port: Some(ServiceBackendPort {
                                number: Some(plan.port),
                                ..Default::default()
                            }),
                        }),
                        ..Default::default()
                    },
                }],
            }),
        })
        .collect();
    Ingress {
        metadata: ObjectMeta {
            annotations,
            ..metadata(plan, &ingress.name, "web")
        },
        spec: Some(IngressSpec {
            ingress_class_name: Some(ingress.class.clone()),
            tls: ingress.tls.as_ref().map(|tls| {
                vec![IngressTLS {
                    hosts: Some(ingress.hosts.clone()),
                    secret_name: Some(tls.secret.clone()),
                }]
            }),
            rules: Some(rules),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `<app>-migrate-<hash>`: a Job's pod template is immutable, so a Job that would run
/// something else (image, command, config, pull secrets) gets a new name instead of a failed apply.
pub fn job_name(plan: &Plan, job: &JobPlan) -> String {
    let mut hasher = Sha256::new();
    let mut feed = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    feed(plan.image.as_bytes());
    for step in &job.steps {
        feed(&(step.len() as u64).to_be_bytes());
        for word in step {
            feed(word.as_bytes());
        }
    }
    feed(
        plan.env
            .config_hash
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    );
    // Part of the immutable pod template too; none adds nothing, so names stay as they were.
    for secret in &plan.image_pull_secrets {
        feed(secret.as_bytes());
    }
    let hash = hex::encode(hasher.finalize());
    format!("{}-migrate-{}", plan.app, &hash[..JOB_HASH_LEN])
}

fn migration_job(plan: &Plan, job: &JobPlan) -> Job {
    let step_container = |name: &str, command: &[String]| Container {
        name: name.to_owned(),
        image: Some(plan.image.clone()),
        command: Some(command.to_vec()),
        env_from: env_from(plan),
        resources: resources(plan),
        security_context: container_security(plan),
        ..Default::default()
    };
    let (last, earlier) = job.steps.split_last().expect("a job has at least one step");
    let init_containers: Vec<Container> = earlier
        .iter()
        .enumerate()
        .map(|(i, command)| step_container(&step_name(i, command), command))
        .collect();
    let mut meta = metadata(plan, &job_name(plan, job), "migrate");
    meta.annotations = Some(BTreeMap::from([(
        "kapp.k14s.io/change-group".to_owned(),
        migration_group(plan),
    )]));
    Job {
        metadata: meta,
        spec: Some(JobSpec {
            backoff_limit: Some(job.backoff_limit),
            ttl_seconds_after_finished: Some(job.ttl_seconds),
            template: PodTemplateSpec {
                // No `app` label: the Service and the PodDisruptionBudget select `app`,
                // and a migration pod must neither get traffic nor count as a replica.
                metadata: Some(ObjectMeta {
                    labels: Some(labels(plan, "migrate", false)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    init_containers: (!init_containers.is_empty()).then_some(init_containers),
                    containers: vec![step_container(&step_name(earlier.len(), last), last)],
                    image_pull_secrets: image_pull_secrets(plan),
                    security_context: pod_security(plan),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `migrate`, `collectstatic`: the manage.py subcommand when there is one.
fn step_name(index: usize, command: &[String]) -> String {
    let known = command
        .iter()
        .position(|w| w == "manage.py")
        .and_then(|i| command.get(i + 1));
    match known {
        Some(sub) if kpipe_core::object::dns1123_label_error(sub).is_none() => sub.clone(),
        _ => format!("step-{}", index + 1),
    }
}

fn autoscaler(plan: &Plan) -> HorizontalPodAutoscaler {
    let hpa = plan.hpa.expect("called with an HPA plan");
    HorizontalPodAutoscaler {
        metadata: metadata(plan, &plan.deployment, "web"),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: plan.deployment.clone(),
            },
            min_replicas: Some(hpa.min),
            max_replicas: hpa.max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(hpa.cpu_percent),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn disruption_budget(plan: &Plan) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: metadata(plan, &plan.deployment, "web"),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(plan)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
