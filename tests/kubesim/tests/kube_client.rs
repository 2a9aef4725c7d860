//! The kubectl scenarios again, through kube-rs (the client kapply and certwait
//! use), against an in-process simulator per test.

use crate::support::start;
use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::discovery::{ApiResource, Discovery};
use kube::runtime::wait::{await_condition, conditions};
use kubesim::ServeOptions;
use serde_json::{Value, json};

fn apply_as(manager: &str) -> PatchParams {
    PatchParams::apply(manager)
}

fn certificates(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate");
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "certificates"),
    )
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn version_and_discovery() {
    let (_server, client) = start(ServeOptions {
        cert_manager_crds: true,
        ..Default::default()
    })
    .await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut kinds: Vec<String> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources().into_iter().map(|(r, _)| r.kind))
        .collect();
    kinds.sort();
    for kind in [
        "Certificate",
        "ConfigMap",
        "Deployment",
        "Ingress",
        "Job",
        "Namespace",
        "Secret",
        "Service",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} not discovered in {kinds:?}"
        );
    }
}

#[tokio::test]
async fn server_side_apply_twice_keeps_the_resource_version() {
    let (_server, client) = start(ServeOptions::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"A": "1"}});
    let first = cms
        .patch("c", &apply_as("kapply"), &Patch::Apply(&cm))
        .await
        .unwrap();
    let second = cms
        .patch("c", &apply_as("kapply"), &Patch::Apply(&cm))
        .await
        .unwrap();
    assert_eq!(
        first.metadata.resource_version,
        second.metadata.resource_version
    );
    let changed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"A": "2"}});
    let third = cms
        .patch("c", &apply_as("kapply"), &Patch::Apply(&changed))
        .await
        .unwrap();
    assert_ne!(
        third.metadata.resource_version,
        second.metadata.resource_version
    );
    let got = cms.get("c").await.unwrap();
    assert_eq!(got.data.unwrap()["A"], "2");
    assert_eq!(got.metadata.uid, first.metadata.uid);
}

#[tokio::test]
async fn generation_bumps_only_on_spec_change() {
    let (_server, client) = start(ServeOptions::default()).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deploy = |image: &str, label: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"note": label}},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
    };
    let first = deploys
        .patch("d", &apply_as("kapply"), &Patch::Apply(deploy("a:1", "x")))
        .await
        .unwrap();
    assert_eq!(first.metadata.generation, Some(1));
    let relabeled = deploys
        .patch("d", &apply_as("kapply"), &Patch::Apply(deploy("a:1", "y")))
        .await
        .unwrap();
    assert_eq!(relabeled.metadata.generation, Some(1));
    let new_image = deploys
        .patch("d", &apply_as("kapply"), &Patch::Apply(deploy("a:2", "y")))
        .await
        .unwrap();
    assert_eq!(new_image.metadata.generation, Some(2));
    let status = json!({"status": {"observedGeneration": 2, "readyReplicas": 1}});
    let after_status = deploys
        .patch_status("d", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(after_status.metadata.generation, Some(2));
    assert_eq!(after_status.status.unwrap().ready_replicas, Some(1));
}

#[tokio::test]
async fn a_manager_that_stops_applying_a_field_removes_it() {
    let (_server, client) = start(ServeOptions::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    cms.patch(
        "c",
        &apply_as("kapply"),
        &Patch::Apply(cm(json!({"A": "1", "B": "2"}))),
    )
    .await
    .unwrap();
    cms.patch(
        "c",
        &apply_as("other"),
        &Patch::Apply(cm(json!({"B": "2"}))),
    )
    .await
    .unwrap();
    let after = cms
        .patch("c", &apply_as("kapply"), &Patch::Apply(cm(json!({}))))
        .await
        .unwrap();
    // A was kapply's alone and goes; B is still applied by "other" and stays.
    let data = after.data.unwrap_or_default();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["B"]);
}

#[tokio::test]
async fn conflicts_name_the_owner_and_force_takes_over() {
    let (_server, client) = start(ServeOptions::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"LEVEL": v}});
    cms.patch("c", &apply_as("kapply"), &Patch::Apply(cm("info")))
        .await
        .unwrap();
    let status = api_error(
        cms.patch("c", &apply_as("other"), &Patch::Apply(cm("debug")))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"kapply\": .data.LEVEL"
    );
    let causes = status.details.unwrap().causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, ".data.LEVEL");
    let forced = cms
        .patch("c", &apply_as("other").force(), &Patch::Apply(cm("debug")))
        .await
        .unwrap();
    let managers: Vec<(String, Value)> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap(),
                serde_json::to_value(m.fields_v1.unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        managers,
        [("other".to_string(), json!({"f:data": {"f:LEVEL": {}}}))]
    );
}

#[tokio::test]
async fn secrets_fold_string_data_and_reject_bad_base64() {
    let (_server, client) = start(ServeOptions::default()).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"P": "s3cr3t"}});
    let stored = secrets
        .patch("s", &apply_as("kapply"), &Patch::Apply(&s))
        .await
        .unwrap();
    assert_eq!(stored.data.unwrap()["P"].0, b"s3cr3t");
    assert!(stored.string_data.is_none());
    let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}, "data": {"K": "***"}});
    let status = api_error(
        secrets
            .patch("b", &apply_as("kapply"), &Patch::Apply(&bad))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 500);
}

#[tokio::test]
async fn missing_namespace_and_missing_objects_are_404() {
    let (_server, client) = start(ServeOptions::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "nonexistent");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let status = api_error(
        cms.patch("x", &apply_as("kapply"), &Patch::Apply(&cm))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "namespaces \"nonexistent\" not found")
    );
    let defaults: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    assert!(defaults.get_opt("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn create_delete_and_dry_run() {
    let (_server, client) = start(ServeOptions::default()).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "polls"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let status = api_error(
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "polls");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"A": "1"}});
    cms.patch("c", &apply_as("kapply").dry_run(), &Patch::Apply(&cm))
        .await
        .unwrap();
    assert!(
        cms.get_opt("c").await.unwrap().is_none(),
        "a dry run stored the object"
    );
    cms.patch("c", &apply_as("kapply"), &Patch::Apply(&cm))
        .await
        .unwrap();
    cms.delete("c", &DeleteParams::default()).await.unwrap();
    assert!(cms.get_opt("c").await.unwrap().is_none());
    cms.patch("c", &apply_as("kapply"), &Patch::Apply(&cm))
        .await
        .unwrap();
    namespaces
        .delete("polls", &DeleteParams::default())
        .await
        .unwrap();
    assert!(namespaces.get_opt("polls").await.unwrap().is_none());
    let status = api_error(cms.get("c").await.unwrap_err());
    assert_eq!(status.code, 404);
}

#[tokio::test]
async fn await_condition_sees_a_status_subresource_write() {
    let (_server, client) = start(ServeOptions {
        cert_manager_crds: true,
        ..Default::default()
    })
    .await;
    let certs = certificates(&client);
    let cert = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "t"},
        "spec": {"secretName": "t", "dnsNames": ["a.example.com"], "issuerRef": {"name": "x", "kind": "ClusterIssuer"}}});
    certs
        .patch("t", &apply_as("kapply"), &Patch::Apply(&cert))
        .await
        .unwrap();
    let waiting = tokio::spawn(await_condition(
        certs.clone(),
        "t",
        |obj: Option<&DynamicObject>| {
            obj.and_then(|o| o.data["status"]["conditions"].as_array().cloned())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        },
    ));
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "ok"}]}});
    let patched = certs
        .patch_status("t", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["secretName"], "t");
    let seen = waiting.await.unwrap().unwrap().unwrap();
    assert_eq!(seen.metadata.generation, Some(1));
    // The condition helper kube-rs ships agrees with what the server stored.
    let gone = await_condition(certs.clone(), "nope", conditions::is_deleted(""))
        .await
        .unwrap();
    assert!(gone.is_none());
}

#[tokio::test]
async fn a_watch_with_a_label_selector_sees_objects_enter_and_leave_it() {
    let (_server, client) = start(ServeOptions::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = |tier: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"tier": tier}}});
    let start = cms
        .patch("c", &apply_as("t"), &Patch::Apply(cm("db")))
        .await
        .unwrap();
    let rv = start.metadata.resource_version.unwrap();
    cms.patch("c", &apply_as("t"), &Patch::Apply(cm("web")))
        .await
        .unwrap();
    cms.patch("c", &apply_as("t"), &Patch::Apply(cm("db")))
        .await
        .unwrap();
    let params = WatchParams::default().labels("tier=web").timeout(1);
    let events: Vec<WatchEvent<ConfigMap>> = cms
        .watch(&params, &rv)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        })
        .collect();
    assert_eq!(kinds, ["ADDED", "DELETED"]);
}

#[tokio::test]
async fn delete_collection_takes_what_the_selector_matches() {
    let (_server, client) = start(ServeOptions::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (name, app) in [("a", "polls"), ("b", "polls"), ("c", "other")] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": app}}});
        cms.patch(name, &apply_as("t"), &Patch::Apply(&cm))
            .await
            .unwrap();
    }
    let lp = kube::api::ListParams::default().labels("app=polls");
    let deleted = cms
        .delete_collection(&DeleteParams::default(), &lp)
        .await
        .unwrap();
    let names: Vec<String> = deleted
        .left()
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let left: Vec<String> = cms
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["c"]);
}

#[tokio::test]
async fn associative_lists_merge_by_key_between_managers() {
    let (_server, client) = start(ServeOptions::default()).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deploy = |containers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": containers}}}})
    };
    let app = json!([{"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}]);
    deploys
        .patch("d", &apply_as("kapply"), &Patch::Apply(deploy(app)))
        .await
        .unwrap();
    // A second manager adds an env var to the same container and a sidecar.
    let extra = json!([{"name": "app", "env": [{"name": "B", "value": "2"}]}, {"name": "sidecar", "image": "s:1"}]);
    deploys
        .patch("d", &apply_as("mesh"), &Patch::Apply(deploy(extra)))
        .await
        .unwrap();
    // kapply re-applies without A: A goes, B and the sidecar stay.
    let app = json!([{"name": "app", "image": "app:2"}]);
    let result = deploys
        .patch("d", &apply_as("kapply"), &Patch::Apply(deploy(app)))
        .await
        .unwrap();
    let containers = result.spec.unwrap().template.spec.unwrap().containers;
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app", "sidecar"]);
    assert_eq!(containers[0].image.as_deref(), Some("app:2"));
    let env: Vec<&str> = containers[0]
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, ["B"]);
}

#[tokio::test]
async fn lists_come_in_pages_when_a_limit_is_asked() {
    let (_server, client) = start(ServeOptions::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b", "c", "d", "e"] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        cms.patch(name, &apply_as("test"), &Patch::Apply(&cm))
            .await
            .unwrap();
    }
    // Another namespace's objects are not in this namespace's pages.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "z"}});
    Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .patch("z", &apply_as("test"), &Patch::Apply(&other))
        .await
        .unwrap();
    let mut names = Vec::new();
    let mut pages = 0;
    let mut params = kube::api::ListParams::default().limit(2);
    loop {
        let page = cms.list(&params).await.unwrap();
        pages += 1;
        names.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(pages, 3);
    let bad = cms
        .list(&kube::api::ListParams::default().continue_token("garbage"))
        .await
        .unwrap_err();
    assert_eq!(api_error(bad).code, 400);
}
