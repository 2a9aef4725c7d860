//! Connecting to the API server the way kubectl does, in one place for every tool.
//!
//! Order of sources: `--kubeconfig FILE`, else `KUBECONFIG` (several files, merged) or
//! `~/.kube/config`, else the in-cluster service account. `--context`, `--cluster`,
//! `--user` pick from the kubeconfig; `-n` beats the context's namespace, which beats
//! `default`. Client certificates, tokens, CA data and exec credential plugins come
//! from kube-rs; exec credential plugins are run here, once per run, so that their
//! failures are told as kubectl tells them (which plugin, how it failed, its stderr,
//! never its stdout) and their credentials are known to the redaction choke point.
//! TLS verification is off only where the kubeconfig itself says
//! `insecure-skip-tls-verify: true`, and then with a warning on every run; together
//! with a CA it is refused, as kubectl refuses it.

use crate::error::{Error, Result};
use crate::time::parse_duration;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::config::{AuthInfo, ExecConfig, ExecInteractiveMode, KubeConfigOptions, Kubeconfig};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The connection flags every cluster-facing tool shares.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnectArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the
    /// in-cluster service account).
    #[arg(long, value_name = "FILE", global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,

    /// The kubeconfig cluster to use instead of the context's.
    #[arg(long, value_name = "NAME", global = true)]
    pub cluster: Option<String>,

    /// The kubeconfig user to use instead of the context's.
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,

    /// Namespace for namespaced objects (default: the context's, else "default").
    #[arg(short = 'n', long, value_name = "NS", global = true)]
    pub namespace: Option<String>,

    /// Timeout for a single API request, e.g. 30s or 1m; 0 means none.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, global = true)]
    pub request_timeout: Option<Duration>,
}

/// A ready client and the namespace to work in.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    /// `-n` if given, else the context's or the service account's namespace.
    pub namespace: String,
    /// Whether the namespace came from `-n`, which objects must then agree with.
    pub namespace_from_flag: bool,
    /// The API server's address, for messages.
    pub server: String,
}

impl ConnectArgs {
    /// Builds the kube-rs configuration these flags describe.
    pub async fn config(&self) -> Result<kube::Config> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        let mut config = if let Some(path) = &self.kubeconfig {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                Error::input(format!("cannot read kubeconfig {}: {e}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(as_kubectl_reads(kubeconfig)?, &options)
                .await
                .map_err(|e| Error::input(format!("kubeconfig {}: {e}", path.display())))?
        } else if let Some(kubeconfig) = local_kubeconfig()? {
            kube::Config::from_custom_kubeconfig(as_kubectl_reads(kubeconfig)?, &options)
                .await
                .map_err(|e| Error::input(format!("kubeconfig: {e}")))?
        } else if self.context.is_some() || self.cluster.is_some() || self.user.is_some() {
            return Err(Error::input(
                "--context/--cluster/--user need a kubeconfig, and none was found \
                 (set KUBECONFIG or --kubeconfig)",
            ));
        } else {
            kube::Config::incluster().map_err(|e| {
                Error::runtime(format!(
                    "no kubeconfig found (KUBECONFIG, --kubeconfig, ~/.kube/config) and not \
                     running in a cluster: {e}"
                ))
            })?
        };
        let mut token_from = "the kubeconfig's user".to_owned();
        if let Some(exec) = config.auth_info.exec.take() {
            token_from = format!(
                "exec credential plugin \"{}\"",
                exec.command.as_deref().unwrap_or_default()
            );
            let auth_info = config.auth_info.clone();
            config.auth_info =
                tokio::task::spawn_blocking(move || run_exec_plugin(&exec, auth_info))
                    .await
                    .map_err(|e| Error::runtime(format!("exec credential plugin: {e}")))??;
        }
        learn_credentials(&config.auth_info);
        check_token(config.auth_info.token.as_ref(), &token_from)?;
        if config.accept_invalid_certs {
            if config.root_cert.is_some() {
                return Err(Error::input(format!(
                    "kubeconfig: the cluster of {} sets both insecure-skip-tls-verify and a \
                     certificate authority; kubectl refuses that too (specifying a root \
                     certificates file with the insecure flag is not allowed): drop one",
                    config.cluster_url
                )));
            }
            warn_insecure(&config.cluster_url);
        }
        // The tools retry on their own terms (kpipe_core::api::retry).
        config.default_retry = false;
        if let Some(timeout) = self.request_timeout.filter(|t| !t.is_zero()) {
            config.read_timeout = Some(timeout);
            config.write_timeout = Some(timeout);
            config.connect_timeout = Some(timeout);
        }
        Ok(config)
    }

    /// Connects: builds the configuration and the client, whose every request and
    /// answer ends by `deadline` (see [`crate::transport`]).
    pub async fn connect(&self, deadline: Option<tokio::time::Instant>) -> Result<Connection> {
        let config = self.config().await?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        let client = crate::transport::client(config, deadline)
            .map_err(|e| Error::runtime(format!("cannot set up a client for {server}: {e}")))?;
        Ok(Connection {
            client,
            namespace,
            namespace_from_flag: self.namespace.is_some(),
            server,
        })
    }
}

/// Tells the redaction choke point the credentials, in case a library echoes them.
fn learn_credentials(auth: &AuthInfo) {
    let secrets = [&auth.token, &auth.password, &auth.client_key_data];
    for secret in secrets.into_iter().flatten() {
        let text = secret.expose_secret();
        crate::redact::learn(text);
        if let Ok(plain) = STANDARD.decode(text.trim()) {
            crate::redact::learn(&String::from_utf8_lossy(&plain));
        }
    }
}

/// Refuses a bearer token that no HTTP header can carry (a newline, another control
/// character: a token pasted with its line break, a plugin printing two lines), which
/// kube's client would otherwise panic on when it builds the `Authorization` header.
/// The message says where the token came from and what is wrong, never the token.
fn check_token(token: Option<&SecretString>, from: &str) -> Result<()> {
    let Some(token) = token else {
        return Ok(());
    };
    // The same test the client applies (http's HeaderValue), so what passes here is
    // what it accepts.
    if http::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).is_ok() {
        return Ok(());
    }
    Err(Error::runtime(format!(
        "the token of {from} holds a newline or another control character, which no HTTP \
         header may carry: check how the token was copied (a line break pasted with it?)"
    )))
}

/// Runs an exec credential plugin as client-go does and puts what it returns (a token,
/// or a client certificate and key) into `auth`. Its stderr is passed on (through the
/// redaction choke point); its stdout, which holds the credential, is never shown.
fn run_exec_plugin(exec: &ExecConfig, mut auth: AuthInfo) -> Result<AuthInfo> {
    let program = exec.command.clone().unwrap_or_default();
    let name = format!("exec credential plugin \"{program}\"");
    if program.is_empty() {
        return Err(Error::input(
            "kubeconfig: exec credential plugin without a command",
        ));
    }
    let interactive =
        exec.interactive_mode != Some(ExecInteractiveMode::Never) && std::io::stdin().is_terminal();
    let mut spec = serde_json::json!({"interactive": interactive});
    if exec.provide_cluster_info
        && let Some(cluster) = &exec.cluster
    {
        spec["cluster"] = serde_json::to_value(cluster).unwrap_or(Value::Null);
    }
    let info = serde_json::json!({
        "apiVersion": exec.api_version.as_deref().unwrap_or("client.authentication.k8s.io/v1"),
        "kind": "ExecCredential",
        "spec": spec,
    });
    let mut command = Command::new(&program);
    command
        .args(exec.args.iter().flatten())
        .env("KUBERNETES_EXEC_INFO", info.to_string())
        .stdin(if interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for pair in exec.env.iter().flatten() {
        if let (Some(k), Some(v)) = (pair.get("name"), pair.get("value")) {
            command.env(k, v);
        }
    }
    for k in exec.drop_env.iter().flatten() {
        command.env_remove(k);
    }
    let mut child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            let hint = exec
                .install_hint
                .as_deref()
                .map(|h| format!("\n{h}"))
                .unwrap_or_default();
            Error::runtime(format!("{name} not found{hint}"))
        } else {
            Error::runtime(format!("cannot run {name}: {e}"))
        }
    })?;
    // Its stderr goes on as it comes (a login prompt must show before it waits).
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let passing_on = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut chunk) {
            if n == 0 {
                break;
            }
            crate::redact::eprint(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    let mut stdout = Vec::new();
    let read = child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_end(&mut stdout);
    let status = child.wait();
    let _ = passing_on.join();
    let status = status.map_err(|e| Error::runtime(format!("{name}: {e}")))?;
    read.map_err(|e| Error::runtime(format!("{name}: cannot read its output: {e}")))?;
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exit code {code}"),
            None => "killed by a signal".to_owned(),
        };
        return Err(Error::runtime(format!("{name} failed with {how}")));
    }
    let credential = exec_credential(&stdout)
        .map_err(|why| Error::runtime(format!("{name} did not print an ExecCredential: {why}")))?;
    let status = &credential["status"];
    let text = |field: &str| status[field].as_str().filter(|s| !s.is_empty());
    for field in ["token", "clientKeyData", "clientCertificateData"] {
        if let Some(value) = text(field) {
            crate::redact::learn(value);
        }
    }
    match (
        text("token"),
        text("clientCertificateData"),
        text("clientKeyData"),
    ) {
        (Some(token), _, _) => auth.token = Some(SecretString::from(token.to_owned())),
        (None, Some(cert), Some(key)) => {
            auth.client_certificate_data = Some(STANDARD.encode(cert));
            auth.client_key_data = Some(SecretString::from(STANDARD.encode(key)));
        }
        _ => {
            return Err(Error::runtime(format!(
                "{name} did not print an ExecCredential: its status has neither a token nor \
                 a client certificate and key"
            )));
        }
    }
    Ok(auth)
}

/// The plugin's output as an ExecCredential; the error says what is wrong with it,
/// never what it holds.
fn exec_credential(stdout: &[u8]) -> std::result::Result<Value, String> {
    // client-go reads it with a YAML-tolerant decoder; JSON is YAML. The reader's
    // messages never quote the input: the output holds the credential.
    let text = std::str::from_utf8(stdout).map_err(|_| "its output is not UTF-8".to_owned())?;
    let value = crate::yaml11::load(text)
        .map_err(|e| format!("its output is not JSON (line {})", e.line))?
        .value
        .unwrap_or_default();
    if value["kind"] != "ExecCredential" {
        return Err("its output is not an object of kind ExecCredential".into());
    }
    if !value["status"].is_object() {
        return Err("it has no status".into());
    }
    Ok(value)
}

/// `KUBECONFIG`'s files merged, skipping those that do not exist (as kubectl does),
/// else ~/.kube/config; `None` when there is none.
fn local_kubeconfig() -> Result<Option<Kubeconfig>> {
    let paths: Vec<PathBuf> = match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".kube").join("config"))
            .into_iter()
            .collect(),
    };
    let mut merged: Option<Kubeconfig> = None;
    for path in paths.iter().filter(|p| p.exists()) {
        let next = Kubeconfig::read_from(path)
            .map_err(|e| Error::input(format!("cannot read kubeconfig {}: {e}", path.display())))?;
        merged = Some(match merged {
            None => next,
            Some(first) => first
                .merge(next)
                .map_err(|e| Error::input(format!("kubeconfig {}: {e}", path.display())))?,
        });
    }
    Ok(merged)
}

/// What kubectl reads differently from kube-rs: a `tokenFile`'s token is trimmed (files
/// written with `echo` end in a newline, which no HTTP header may hold).
fn as_kubectl_reads(mut kubeconfig: Kubeconfig) -> Result<Kubeconfig> {
    for auth in kubeconfig
        .auth_infos
        .iter_mut()
        .filter_map(|named| named.auth_info.as_mut())
    {
        if auth.token.is_some() {
            continue;
        }
        if let Some(file) = auth.token_file.take() {
            let token = std::fs::read_to_string(&file).map_err(|e| {
                Error::input(format!("kubeconfig: cannot read tokenFile {file}: {e}"))
            })?;
            auth.token = Some(token.trim().to_owned().into());
        }
    }
    Ok(kubeconfig)
}

/// One line on stderr, every run: nothing proves the server is the one meant.
fn warn_insecure(server: &http::Uri) {
    crate::error::warn(&format!(
        "warning: TLS verification is off for {server} (insecure-skip-tls-verify in \
         the kubeconfig): anyone on the way can read and change what is sent"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_no_header_can_carry_is_refused_without_showing_it() {
        for bad in [
            "tok\nen-s3cr3t",
            "tok\ren-s3cr3t",
            "tok\u{7f}en-s3cr3t",
            "\u{1}s3cr3t",
        ] {
            let token = SecretString::from(bad.to_owned());
            let e = check_token(Some(&token), "the kubeconfig's user").unwrap_err();
            assert_eq!(e.exit_code(), 1);
            let message = e.to_string();
            assert!(message.contains("control character"), "{message}");
            assert!(!message.contains("s3cr3t"), "{message}");
        }
        let good = SecretString::from("eyJhbGciOi.JSUzI1-NiIs_In~+/=".to_owned());
        assert!(check_token(Some(&good), "x").is_ok());
        assert!(check_token(None, "x").is_ok());
    }
}
