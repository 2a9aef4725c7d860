//! Helpers for the tests that run kubesim in process (the library API) and talk to it
//! with kube-rs, the client kapply and certwait use. Those that run `kubesim serve` and
//! the installed kubectl use the workspace's harness, `crate::common` (tests/common).

use kubesim::{RunningServer, ServeOptions};

/// An in-process simulator on its own port and state, and a client of it.
pub async fn start(opts: ServeOptions) -> (RunningServer, kube::Client) {
    let server = kubesim::serve(opts).await.unwrap();
    let client = server.client().await.unwrap();
    (server, client)
}

/// A client that does not retry by itself (kube-rs retries 429, 503 and 504), so
/// that every injected failure is seen.
pub async fn no_retry_client(server: &RunningServer) -> kube::Client {
    let mut config = server.config().await.unwrap();
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}
