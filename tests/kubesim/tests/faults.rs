//! Fault injection through the library API, seen by a kube-rs client.

use crate::support::no_retry_client as client;
use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, WatchEvent, WatchParams};
use kubesim::ServeOptions;
use serde_json::json;

async fn setup() -> (kubesim::RunningServer, Api<ConfigMap>) {
    let server = kubesim::serve(ServeOptions::default()).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    (server, cms)
}

async fn apply(cms: &Api<ConfigMap>, name: &str, value: &str) -> Result<ConfigMap, kube::Error> {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"V": value}});
    cms.patch(name, &PatchParams::apply("test"), &Patch::Apply(&cm))
        .await
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn counted_failures_hit_only_their_method_then_stop() {
    let (server, cms) = setup().await;
    server.set_faults("503:2@PATCH").unwrap();
    assert!(
        cms.get_opt("a").await.unwrap().is_none(),
        "GET must not be failed by a PATCH rule"
    );
    assert_eq!(code(apply(&cms, "a", "1").await.unwrap_err()), 503);
    assert_eq!(code(apply(&cms, "a", "1").await.unwrap_err()), 503);
    apply(&cms, "a", "1").await.unwrap();
}

#[tokio::test]
async fn kube_rs_rides_out_a_short_unavailability_by_itself() {
    let (server, _) = setup().await;
    server.set_faults("503:1").unwrap();
    let retrying: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    assert!(retrying.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let (server, _) = setup().await;
    server.set_faults("429:1").unwrap();
    let client = client(&server).await;
    let request = http::Request::get("/api/v1/namespaces")
        .body(kube::client::Body::empty())
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("TooManyRequests"))
    );
}

#[tokio::test]
async fn reset_closes_the_connection_without_an_answer() {
    let (server, cms) = setup().await;
    server.set_faults("reset:1").unwrap();
    match cms.get_opt("a").await {
        Err(kube::Error::Api(s)) => panic!("a reset must not be answered, got {s:?}"),
        Err(_) => {}
        Ok(v) => panic!("a reset must fail the request, got {v:?}"),
    }
    assert!(cms.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn rate_one_fails_everything_and_rate_zero_nothing() {
    let (server, cms) = setup().await;
    server.set_faults("rate:500:1").unwrap();
    assert_eq!(code(cms.get("x").await.unwrap_err()), 500);
    server.set_faults("rate:500:0,latency:1ms").unwrap();
    assert_eq!(code(cms.get("x").await.unwrap_err()), 404);
    assert!(server.set_faults("rate:500:7").is_err());
}

#[tokio::test]
async fn watch_close_ends_streams_and_watch_gone_answers_410() {
    let (server, cms) = setup().await;
    let first = apply(&cms, "a", "1").await.unwrap();
    let rv = first.metadata.resource_version.unwrap();
    apply(&cms, "a", "2").await.unwrap();
    apply(&cms, "a", "3").await.unwrap();

    server.set_faults("watch-close:1").unwrap();
    let events: Vec<_> = cms
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");

    server.set_faults("watch-gone:1").unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(stream.next().await.is_none());

    server.set_faults("").unwrap();
    let events: Vec<_> = cms
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        events.len(),
        2,
        "both changes after {rv} are replayed: {events:?}"
    );
}

#[tokio::test]
async fn the_simulated_controllers_are_exempt_from_faults() {
    // Faults are for the client under test: the controllers' own status writes
    // (PATCH /status) must neither fail nor use up the budget.
    let server = kubesim::serve(ServeOptions {
        controllers: Some(kubesim::ControllerOptions {
            deploy_delay: std::time::Duration::from_millis(100),
            ..Default::default()
        }),
        faults: "500:2@PATCH,watch-close:1,watch-gone:100".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let client = client(&server).await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "default");
    let deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    }))
    .unwrap();
    deployments
        .create(&Default::default(), &deployment)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let live = deployments.get("web").await.unwrap();
        if live.status.and_then(|s| s.available_replicas) == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the controller never made the Deployment available under faults"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    assert_eq!(code(apply(&cms, "a", "1").await.unwrap_err()), 500);
    assert_eq!(code(apply(&cms, "a", "1").await.unwrap_err()), 500);
    apply(&cms, "a", "1").await.unwrap();
}
