//! `kubesim serve` as `make demo` and the test helpers run it: kubeconfig,
//! stderr lines, signals, `--state`, `--http`, bad flags.

use crate::common::{Exec, Run, Sim};
use std::process::Command;

use serde_json::Value;

/// The kubeconfig `kubesim serve` wrote, read as kubectl reads it.
fn kubeconfig(s: &Sim) -> Value {
    crate::common::yaml(&std::fs::read_to_string(&s.kubeconfig).unwrap())
}

#[test]
fn kubeconfig_names_everything_kubesim_and_stderr_gives_the_address() {
    let s = Sim::start(&[]);
    let kc = kubeconfig(&s);
    assert_eq!(kc["current-context"], "kubesim");
    assert_eq!(kc["contexts"][0]["context"]["namespace"], "default");
    let server = kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(server.starts_with("https://127.0.0.1:"), "{server}");
    assert!(kc["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
    assert!(kc["users"][0]["user"]["token"].is_string());
    assert!(
        s.log().contains(&format!("kubesim: serving {server}")),
        "{}",
        s.log()
    );
    Run::from(s.kubectl_run(&["get", "ns", "-o", "name"]))
        .stdout_is("namespace/default\nnamespace/kube-public\nnamespace/kube-system\n");
    assert!(
        s.log().contains("GET /api/v1/namespaces -> 200"),
        "{}",
        s.log()
    );
}

#[test]
fn a_wrong_token_is_refused() {
    let s = Sim::start(&[]);
    let text = std::fs::read_to_string(&s.kubeconfig).unwrap();
    let token = kubeconfig(&s)["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(&s.kubeconfig, text.replace(&token, "wrong")).unwrap();
    // kubectl's words around the server's answer (and its log lines) are its own.
    let out = Run::from(s.kubectl_run(&["get", "configmaps"]));
    assert!(!out.status.success(), "{}", out.stderr());
    out.stderr_has("You must be logged in to the server");
}

#[test]
fn sigterm_and_sigint_stop_cleanly() {
    for signal in ["TERM", "INT"] {
        let s = Sim::start(&[]);
        assert_eq!(s.stop(signal), Some(0), "SIG{signal}");
    }
}

#[test]
fn state_is_saved_on_exit_and_loaded_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state_arg = state.to_str().unwrap();
    let s = Sim::start(&["--state", state_arg]);
    let manifest = dir.path().join("cm.yaml");
    // The CRD's group sorts after its custom resources' one in the saved file.
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.a.example.com\nspec:\n  group: a.example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions: [{name: v1, served: true, storage: true}]\n";
    let crd_file = dir.path().join("crd.yaml");
    std::fs::write(&crd_file, crd).unwrap();
    Run::from(s.kubectl_run(&["apply", "--server-side", "-f", crd_file.to_str().unwrap()]))
        .success();
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\ndata:\n  A: \"1\"\n---\napiVersion: a.example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
    )
    .unwrap();
    Run::from(s.kubectl_run(&["create", "-f", manifest.to_str().unwrap()])).success();
    assert_eq!(s.stop("TERM"), Some(0));
    assert!(state.exists());

    let s = Sim::start(&["--state", state_arg]);
    Run::from(s.kubectl_run(&["get", "configmap", "kept", "-o", "jsonpath={.data.A}"]))
        .stdout_is("1");
    Run::from(s.kubectl_run(&["get", "widget", "w", "-o", "name"]))
        .stdout_is("widget.a.example.com/w\n");
    // Changes go on from the saved resourceVersion, never back to an old one.
    Run::from(s.kubectl_run(&["label", "configmap", "kept", "x=y"])).success();
}

#[test]
fn plain_http_on_request() {
    let s = Sim::start(&["--http"]);
    let kc = kubeconfig(&s);
    assert!(
        kc["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    Run::from(s.kubectl_run(&["get", "ns", "default", "-o", "name"]))
        .stdout_is("namespace/default\n");
}

#[test]
fn faults_flag_fails_requests_and_bad_specs_are_usage_errors() {
    let s = Sim::start(&["--faults", "500:1@PATCH"]);
    let manifest = s.dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    )
    .unwrap();
    let apply = ["apply", "--server-side", "-f", manifest.to_str().unwrap()];
    let out = s.kubectl_run(&apply);
    assert!(!out.status.success());
    assert!(
        s.log()
            .contains("PATCH /api/v1/namespaces/default/configmaps/c -> 500"),
        "{}",
        s.log()
    );
    Run::from(s.kubectl_run(&apply)).success();

    Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(["serve", "--faults", "bogus"])
        .run()
        .code(2)
        .stdout_empty()
        .stderr_is(
            "kubesim: bad fault rule \"bogus\": expected CODE:N[@METHOD[/PATH]], \
             reset:N[@METHOD[/PATH]], lost:N[@METHOD[/PATH]], rate:CODE:P, latency:DURATION, \
             watch-close:N, watch-gone:N, hang, trickle:DURATION, storm:DURATION[+START], \
             down:DURATION[+START], freeze:DURATION[+START] or restart:DURATION[+START]\n",
        );
}
