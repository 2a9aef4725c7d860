//! Image pull Secrets (type kubernetes.io/dockerconfigjson), byte for byte as
//! `kubectl create secret docker-registry` makes them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kpipe_core::{Error, Result};
use serde_json::{Value, json};

/// kubectl's `--docker-server` default: Docker Hub.
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// Where the registry credentials come from.
pub enum Credentials<'a> {
    /// A docker config file (`~/.docker/config.json`), used as it is.
    ConfigFile(&'a str),
    Login {
        server: &'a str,
        username: &'a str,
        password: &'a str,
        email: Option<&'a str>,
    },
}

/// The Secret, with `.dockerconfigjson` in `data` (base64).
pub fn secret(name: &str, namespace: Option<&str>, credentials: &Credentials) -> Result<Value> {
    let config = match credentials {
        Credentials::ConfigFile(path) => config_file(path)?,
        Credentials::Login {
            server,
            username,
            password,
            email,
        } => login_config(server, username, password, *email).into_bytes(),
    };
    let mut metadata = json!({ "name": name });
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "kubernetes.io/dockerconfigjson",
        "data": { ".dockerconfigjson": STANDARD.encode(config) },
    }))
}

/// The file's bytes, as `kubectl create secret docker-registry --from-file` takes them,
/// once they are known to hold credentials: the API server refuses a Secret that is not
/// JSON, and a config whose credentials sit in a desktop helper (`credsStore`,
/// `credHelpers`) gives the cluster nothing to pull with. Messages never quote the file.
fn config_file(path: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::input(format!("--docker-config {path}: cannot read: {e}")))?;
    let config: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::input(format!(
            "{path}:{}: not a docker config: invalid JSON at column {}",
            e.line(),
            e.column()
        ))
    })?;
    let has_auths = config
        .get("auths")
        .and_then(Value::as_object)
        .is_some_and(|auths| !auths.is_empty());
    if has_auths {
        return Ok(bytes);
    }
    let helper = if config.get("credsStore").is_some() || config.get("credHelpers").is_some() {
        ": its credentials are kept by a credential helper (credsStore/credHelpers), which \
         the cluster cannot run; give them with --docker-server, --docker-username and \
         --docker-password instead"
    } else {
        ""
    };
    Err(Error::input(format!(
        "{path}: not a docker config with credentials: no registry in \"auths\"{helper}"
    )))
}

/// kubectl's `.dockerconfigjson` for one registry login: Go's encoding/json of
/// `{"auths":{SERVER:{"username","password","email" (when given),"auth"}}}`.
fn login_config(server: &str, username: &str, password: &str, email: Option<&str>) -> String {
    let auth = STANDARD.encode(format!("{username}:{password}"));
    let email = email
        .filter(|e| !e.is_empty())
        .map(|e| format!(",\"email\":{}", go_json(e)))
        .unwrap_or_default();
    format!(
        "{{\"auths\":{{{}:{{\"username\":{},\"password\":{}{email},\"auth\":{}}}}}}}",
        go_json(server),
        go_json(username),
        go_json(password),
        go_json(&auth),
    )
}

/// A JSON string as Go's encoding/json writes it: serde_json's escapes, plus `<`, `>`,
/// `&`, U+2028 and U+2029 as `\u` escapes (outside strings JSON has none of them).
fn go_json(text: &str) -> String {
    serde_json::to_string(text)
        .expect("a string serializes")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_is_kubectls_json() {
        assert_eq!(
            login_config(DOCKER_HUB, "u", "p", None),
            r#"{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p","auth":"dTpw"}}}"#
        );
        assert_eq!(
            login_config("r.example.com", "u", "a<&>\"", Some("e@x.com")),
            r#"{"auths":{"r.example.com":{"username":"u","password":"a\u003c\u0026\u003e\"","email":"e@x.com","auth":"dTphPCY+Ig=="}}}"#
        );
    }
}
