//! The lines certwait ends with once every certificate is ready: one per certificate on
//! stdout (what [`crate::issued`] read from its Secret, else its status), warnings on
//! stderr (a staging CA, a Secret that cannot be read).

use crate::issued;
use crate::target::{CertKey, IssuerRef};
use crate::wait::Waiter;
use kpipe_core::Result;
use kpipe_core::api::bounded;
use std::time::Duration;
use tokio::time::Instant;

/// How long reading an issued certificate may take once the deadline has passed.
const READ_GRACE: Duration = Duration::from_millis(300);

impl Waiter {
    /// All ready: one line per certificate on stdout, staging warnings on stderr.
    pub(crate) async fn report_issued(&mut self) -> Result<()> {
        self.progress.clear();
        let mut out = String::new();
        for (key, tracked) in &self.tracked {
            let cert = tracked.cert.as_ref().expect("ready certificates were seen");
            let secret_name = cert.spec.secret_name.as_deref().unwrap_or(&key.name);
            // Past the deadline the Certificate's status has to do.
            let read = bounded(
                Some(self.deadline.max(Instant::now() + READ_GRACE)),
                issued::read(&self.client, &key.namespace, secret_name),
            );
            let read = read
                .await
                .unwrap_or_else(|| Err("the API server did not answer in time".into()));
            let line = match read {
                Ok(issued) => {
                    if issued.is_staging() {
                        let requested = tracked.issuer();
                        self.progress.always(&staging_warning(
                            key,
                            &issued.issuer,
                            requested.as_ref(),
                        ));
                    }
                    [
                        key.to_string(),
                        issued.dns_names.join(","),
                        issued.issuer,
                        issued.not_after,
                    ]
                }
                Err(why) => {
                    self.progress.always(&format!(
                        "certwait: warning: {key}: cannot read the certificate in Secret \
                         {}/{secret_name}: {why}; showing the Certificate's status instead",
                        key.namespace
                    ));
                    let not_after = cert
                        .status
                        .as_ref()
                        .and_then(|s| s.not_after.as_deref())
                        .unwrap_or("-");
                    [
                        key.to_string(),
                        cert.spec.dns_names.join(","),
                        "-".to_owned(),
                        not_after.to_owned(),
                    ]
                }
            };
            out.push_str(&line.join("\t"));
            out.push('\n');
        }
        kpipe_core::write_stdout(&out)
    }
}

/// What to do about a staging certificate depends on the issuer now requested: after
/// `make promote` the Certificate asks for letsencrypt-prod and only the new certificate
/// is missing, so advising promote again would send the user in a circle.
fn staging_warning(key: &CertKey, issuer: &str, requested: Option<&IssuerRef>) -> String {
    if let Some(requested) = requested.filter(|r| !r.name.contains("staging")) {
        return format!(
            "certwait: warning: {key}: the certificate in its Secret is still the one Let's \
             Encrypt's STAGING CA issued ({issuer}), but the Certificate now asks for \
             {requested}: cert-manager has not replaced it yet. Run certwait again in a \
             moment; `kubectl describe certificate -n {} {}` shows why if it stays so.",
            key.namespace, key.name
        );
    }
    format!(
        "certwait: warning: {key} was issued by Let's Encrypt's STAGING CA ({issuer}): browsers \
         will not trust it. When everything works, switch the Ingress to the production \
         ClusterIssuer letsencrypt-prod (`make promote`, or `manifest-gen --issuer \
         letsencrypt-prod ... | kapply`) and run certwait again."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_issuer(name: &str) -> IssuerRef {
        IssuerRef {
            kind: "ClusterIssuer".into(),
            name: name.into(),
            group: "cert-manager.io".into(),
            namespace: "default".into(),
        }
    }

    #[test]
    fn promote_is_advised_only_while_the_staging_issuer_is_requested() {
        let key = CertKey {
            namespace: "default".into(),
            name: "polls-tls".into(),
        };
        let staging = "CN=(STAGING) Ersatz Edamame E1";
        let asked_staging = cluster_issuer("letsencrypt-staging");
        assert!(staging_warning(&key, staging, Some(&asked_staging)).contains("make promote"));
        assert!(staging_warning(&key, staging, None).contains("make promote"));
        // After `make promote`: the old certificate is still there, the new one is asked for.
        let asked_prod = cluster_issuer("letsencrypt-prod");
        let after = staging_warning(&key, staging, Some(&asked_prod));
        assert!(!after.contains("promote"), "{after}");
        assert!(
            after.contains("now asks for ClusterIssuer letsencrypt-prod"),
            "{after}"
        );
    }
}
