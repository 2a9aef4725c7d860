//! Real X.509 material for the simulated issuance: a key and CSR per request, and a
//! certificate signed by a stand-in for the issuer's CA whose subject is what a client
//! sees as the issuer (Let's Encrypt staging or production).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// Let's Encrypt certificates live 90 days.
pub(crate) const VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);

/// The subject of the CA that signs for an issuer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Authority {
    pub organization: String,
    pub common_name: String,
}

impl Authority {
    /// Let's Encrypt's current intermediates, staging or production by the ACME server URL.
    pub(crate) fn lets_encrypt(acme_server: &str) -> Self {
        if acme_server.contains("staging") {
            Authority {
                organization: "(STAGING) Let's Encrypt".into(),
                common_name: "(STAGING) Ersatz Edamame E1".into(),
            }
        } else {
            Authority {
                organization: "Let's Encrypt".into(),
                common_name: "E5".into(),
            }
        }
    }

    /// A CA of this simulation for an issuer that is not ACME (selfSigned, ca, ...).
    pub(crate) fn local(issuer_name: &str) -> Self {
        Authority {
            organization: "kubesim".into(),
            common_name: issuer_name.into(),
        }
    }
}

/// What an issuance hands back, PEM-encoded.
pub(crate) struct Issued {
    /// The leaf followed by the CA, as ACME servers return the chain.
    pub chain_pem: String,
    pub ca_pem: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// One CA per issuer subject, made on first use and kept for the server's life, so that
/// every certificate of an issuer chains to the same ca.crt.
#[derive(Default)]
pub(crate) struct Authorities {
    issuers: Mutex<HashMap<Authority, Arc<CertifiedIssuer<'static, KeyPair>>>>,
}

impl Authorities {
    fn get(
        &self,
        authority: &Authority,
    ) -> Result<Arc<CertifiedIssuer<'static, KeyPair>>, rcgen::Error> {
        let mut issuers = self.issuers.lock().expect("authorities lock");
        if let Some(issuer) = issuers.get(authority) {
            return Ok(issuer.clone());
        }
        let mut params = CertificateParams::default();
        // rcgen's default subject is a placeholder CN; this one is built in X.509 order.
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "US");
        params
            .distinguished_name
            .push(DnType::OrganizationName, authority.organization.as_str());
        params
            .distinguished_name
            .push(DnType::CommonName, authority.common_name.as_str());
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        // Validity as an intermediate has it: a while ago to a few years ahead.
        let now = Timestamp::now();
        set_validity(
            &mut params,
            now - Duration::from_secs(30 * 24 * 3600),
            now + Duration::from_secs(3 * 365 * 24 * 3600),
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let issuer = Arc::new(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?);
        issuers.insert(authority.clone(), issuer.clone());
        Ok(issuer)
    }

    /// Signs a certificate for `dns_names` with `key`, valid for [`VALIDITY`] from
    /// `not_before`, with the first name as the subject's CN as Let's Encrypt does.
    pub(crate) fn issue(
        &self,
        authority: &Authority,
        dns_names: &[String],
        key: &KeyPair,
        not_before: Timestamp,
    ) -> Result<Issued, rcgen::Error> {
        let ca = self.get(authority)?;
        let mut params = leaf_params(dns_names)?;
        let not_after = not_before + VALIDITY;
        set_validity(&mut params, not_before, not_after);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let leaf = params.signed_by(key, &ca)?;
        Ok(Issued {
            chain_pem: leaf.pem() + &ca.pem(),
            ca_pem: ca.pem(),
            not_before,
            not_after,
        })
    }
}

fn leaf_params(dns_names: &[String]) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(dns_names.to_vec())?;
    params.distinguished_name = DistinguishedName::new();
    if let Some(first) = dns_names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    Ok(params)
}

/// rcgen takes `time`'s type; adding to its epoch avoids depending on `time` too.
fn set_validity(params: &mut CertificateParams, not_before: Timestamp, not_after: Timestamp) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(not_before.as_second().max(0) as u64);
    params.not_after = epoch + Duration::from_secs(not_after.as_second().max(0) as u64);
}

/// The PEM CSR cert-manager puts in a CertificateRequest's spec.request.
pub(crate) fn csr_pem(dns_names: &[String], key: &KeyPair) -> Result<String, rcgen::Error> {
    leaf_params(dns_names)?.serialize_request(key)?.pem()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_and_production_look_like_lets_encrypt() {
        let staging =
            Authority::lets_encrypt("https://acme-staging-v02.api.letsencrypt.org/directory");
        assert_eq!(staging.common_name, "(STAGING) Ersatz Edamame E1");
        assert_eq!(staging.organization, "(STAGING) Let's Encrypt");
        let prod = Authority::lets_encrypt("https://acme-v02.api.letsencrypt.org/directory");
        assert_eq!(prod.common_name, "E5");
        assert_eq!(prod.organization, "Let's Encrypt");
    }

    #[test]
    fn issues_a_chain_and_a_csr_for_the_names() {
        let authorities = Authorities::default();
        let key = KeyPair::generate().unwrap();
        let names = vec![
            "your_domain.com".to_owned(),
            "www.your_domain.com".to_owned(),
        ];
        let start: Timestamp = "2026-11-24T17:49:10Z".parse().unwrap();
        let issued = authorities
            .issue(
                &Authority::lets_encrypt("https://acme-v02.api.letsencrypt.org/directory"),
                &names,
                &key,
                start,
            )
            .unwrap();
        assert_eq!(issued.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(issued.chain_pem.ends_with(&issued.ca_pem));
        assert_eq!(issued.not_after.to_string(), "2027-02-22T17:49:10Z");
        assert!(
            csr_pem(&names, &key)
                .unwrap()
                .contains("BEGIN CERTIFICATE REQUEST")
        );
    }
}
