//! What was issued: the facts of the certificate in a Secret's `tls.crt` (names, issuer,
//! expiry), read with x509-parser. Only the public certificate is parsed; `tls.key` is
//! only made known to the redaction choke point.

use crate::api;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// The facts a user checks after issuance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub dns_names: Vec<String>,
    /// The issuer's distinguished name, e.g. `C=US, O=Let's Encrypt, CN=E5`.
    pub issuer: String,
    /// RFC 3339, UTC.
    pub not_after: String,
}

impl Issued {
    /// Let's Encrypt's staging CAs: `(STAGING) ...` today, `Fake LE ...` before 2020.
    pub fn is_staging(&self) -> bool {
        self.issuer.contains("(STAGING)") || self.issuer.contains("Fake LE")
    }
}

/// The certificate in the Secret `namespace/name`, read from the API server. Messages
/// never include the Secret's data.
pub async fn read(client: &kube::Client, namespace: &str, name: &str) -> Result<Issued, String> {
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    let secret = api::retry(|| secrets.get(name))
        .await
        .map_err(|e| api::describe(&e))?;
    // Its tls.key is a secret like any other: known before anything prints.
    if let Ok(mut value) = serde_json::to_value(&secret) {
        value["apiVersion"] = "v1".into();
        value["kind"] = "Secret".into();
        kpipe_core::redact::learn_objects([&value]);
    }
    let crt = secret
        .data
        .as_ref()
        .and_then(|d| d.get("tls.crt"))
        .ok_or("the Secret has no tls.crt")?;
    parse_tls_crt(&crt.0)
}

/// Reads the first (leaf) certificate of a PEM bundle.
pub fn parse_tls_crt(pem: &[u8]) -> Result<Issued, String> {
    let leaf = Pem::iter_from_buffer(pem)
        .next()
        .ok_or("no PEM certificate in tls.crt")?
        .map_err(|e| format!("tls.crt is not PEM: {e}"))?;
    if leaf.label != "CERTIFICATE" {
        return Err(format!(
            "tls.crt starts with a {:?} block, not a CERTIFICATE",
            leaf.label
        ));
    }
    let cert = leaf
        .parse_x509()
        .map_err(|e| format!("tls.crt is not an X.509 certificate: {e}"))?;
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("tls.crt has a bad subjectAltName: {e}")),
    };
    let not_after = Timestamp::from_second(cert.validity().not_after.timestamp())
        .map_err(|e| format!("tls.crt notAfter out of range: {e}"))?;
    Ok(Issued {
        dns_names,
        issuer: cert.issuer().to_string(),
        not_after: not_after.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    /// A CA named like Let's Encrypt's, and a leaf it signed for `names`.
    fn issued_by(organization: &str, common_name: &str, names: &[&str]) -> String {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, organization);
        dn.push(DnType::CommonName, common_name);
        ca.distinguished_name = dn;
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);

        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf = CertificateParams::new(names).unwrap();
        leaf.not_after = rcgen::date_time_ymd(2027, 2, 22);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        format!("{}{}", leaf_cert.pem(), ca_cert.pem())
    }

    #[test]
    fn reads_names_issuer_and_not_after_of_the_leaf() {
        let pem = issued_by(
            "Let's Encrypt",
            "E5",
            &["polls.example.com", "www.example.com"],
        );
        let issued = parse_tls_crt(pem.as_bytes()).unwrap();
        assert_eq!(issued.dns_names, ["polls.example.com", "www.example.com"]);
        assert!(issued.issuer.contains("CN=E5"), "{}", issued.issuer);
        assert!(
            issued.issuer.contains("O=Let's Encrypt"),
            "{}",
            issued.issuer
        );
        assert_eq!(issued.not_after, "2027-02-22T00:00:00Z");
        assert!(!issued.is_staging());
    }

    #[test]
    fn staging_issuers_are_recognised() {
        let pem = issued_by(
            "(STAGING) Let's Encrypt",
            "(STAGING) Ersatz Edamame E1",
            &["a.example"],
        );
        assert!(parse_tls_crt(pem.as_bytes()).unwrap().is_staging());
        let old = issued_by(
            "Fake LE Intermediate X1",
            "Fake LE Intermediate X1",
            &["a.example"],
        );
        assert!(parse_tls_crt(old.as_bytes()).unwrap().is_staging());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_tls_crt(b"").is_err());
        assert!(
            parse_tls_crt(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
        let key = KeyPair::generate().unwrap().serialize_pem();
        let e = parse_tls_crt(key.as_bytes()).unwrap_err();
        assert!(e.contains("PRIVATE KEY") && !e.contains("BEGIN"), "{e}");
    }
}
