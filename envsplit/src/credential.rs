//! The default split: whether a key holds a credential (Secret) or a setting
//! (ConfigMap) when no `--config`, `--secret` or `--rules` line says.
//!
//! Built and measured against labelled real env files (tests/corpus/env-labels.tsv,
//! `bench/heuristic.sh`): every labelled credential goes to the Secret, and at least 95%
//! of what goes there is one. A missed credential is a password in a ConfigMap, readable
//! by anyone who may read ConfigMaps; a setting in the Secret only costs a look with
//! `--explain`. So, in order, first match wins:
//!
//! 1. The value's shape, whatever the key: a URL with a password (in its user info or
//!    its query), a webhook URL that embeds its token (Slack, Discord), a well-known
//!    token prefix (`sk_live_`, `ghp_`, `xoxb-`, `AKIA`...), a PEM private key, a JWT.
//! 2. Public by design: a public or publishable key, and the variables a browser bundle
//!    is built with (`NEXT_PUBLIC_*`, `VITE_*`): a Secret would protect nothing.
//! 3. What the key names: its last part is the thing held, the others qualify it
//!    (`PASSWORD_MIN_LENGTH` is a length, `DB_PASSWORD` a password). A last part that
//!    names a setting (`_LENGTH`, `_EXPIRY`, `_METHOD`, `_EMAIL`, `_URL`, `_PATH`,
//!    `_ENABLED`...), or a first part that makes it a switch (`SKIP_`, `ENABLE_`), makes a
//!    setting, except an access key ID (half of a key pair) and an empty connection
//!    string (it will carry a password).
//! 4. A credential word anywhere in the key (`SECRET`, `PASSWORD`, `TOKEN`, `KEY`,
//!    `SALT`, `PAT`, `SK`, `OTP`...), plural forms too (`SECRETS`).
//! 5. A value that looks random (long hex, or long mixed letters, digits and symbols).
//! 6. Otherwise a setting.
//!
//! The reason returned is shown by `--explain`: it names key parts and rules, never the
//! value or any part of it.

/// What the default split decided for one key, and why (never quoting the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub secret: bool,
    pub reason: String,
}

impl Judgement {
    fn secret(reason: impl Into<String>) -> Self {
        Judgement {
            secret: true,
            reason: format!("default: {}", reason.into()),
        }
    }

    fn config(reason: impl Into<String>) -> Self {
        Judgement {
            secret: false,
            reason: format!("default: {}", reason.into()),
        }
    }
}

/// Words that make a key a credential wherever they stand (step 4). `AUTH` only counts
/// as the last part (`REDIS_AUTH`), where it is the thing held; elsewhere it qualifies a
/// setting (`AUTH_METHOD`, `FIREBASE_AUTH_DOMAIN`). `PRIVATE` is not one: it marks
/// server-only variables (`NEXT_PRIVATE_SMTP_HOST`), and a private key ends in `KEY`.
/// `CERT` is not one either: a certificate is the public half.
const CREDENTIAL_WORDS: &[&str] = &[
    "SECRET",
    "SECRETS",
    "PASSWORD",
    "PASSWORDS",
    "PASSWD",
    "PASSPHRASE",
    "PASS",
    "PWD",
    "PW",
    "PIN",
    "TOKEN",
    "TOKENS",
    "KEY",
    "KEYS",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "CREDS",
    "DSN",
    "SALT",
    "SIGNING",
    // A personal access token (`GITHUB_PAT`), a Stripe secret key (`STRIPE_SK`).
    "PAT",
    "SK",
    // One-time codes fixed for tests (`SMS_TEST_OTP`) log anyone in as that number.
    "OTP",
    // An encryption IV kept beside its key (`CREDS_KEY`, `CREDS_IV`) is key material.
    "IV",
];

/// Credential words also found glued to the end of the last part (`MYAPIKEY`,
/// `DBPASSWORD`): only long ones, as `PASS` ends `COMPASS` and `KEY` ends `MONKEY`.
const GLUED_WORDS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "TOKEN",
    "APIKEY",
];

/// Codes that let someone in: `INVITATION_CODE`, unlike `COUNTRY_CODE`.
const CREDENTIAL_CODES: &[&str] = &["INVITATION", "INVITE", "ACCESS", "RECOVERY", "BACKUP"];

/// Last parts that name a setting, not a credential (step 3): where and who
/// (`_HOST`, `_USER`), identifiers, files, and settings about credentials (how long,
/// how many, which method, whether on).
const SETTING_HEADS: &[&str] = &[
    // where
    "URL",
    "URLS",
    "URI",
    "ENDPOINT",
    "HOST",
    "HOSTNAME",
    "DOMAIN",
    "PORT",
    "SERVER",
    "ADDRESS",
    "REGION",
    "BUCKET",
    "ISSUER",
    "AUDIENCE",
    "AUD",
    // who and which
    "USER",
    "USERNAME",
    "NAME",
    "EMAIL",
    "ID",
    "IDS",
    "SID",
    "DN",
    // files: a path to a key is not the key
    "PATH",
    "FILE",
    "DIR",
    "FOLDER",
    "CERTFILE",
    "KEYFILE",
    // public halves
    "CERT",
    "CERTS",
    "CERTIFICATE",
    "CA",
    "CACERT",
    // settings about credentials
    "LENGTH",
    "SIZE",
    "LIMIT",
    "MAX",
    "MIN",
    "COUNT",
    "ROUNDS",
    "EXPIRY",
    "EXPIRES",
    "EXP",
    "TTL",
    "LIFETIME",
    "TIMEOUT",
    "INTERVAL",
    "DURATION",
    "WITHIN",
    "UNTIL",
    "ENABLED",
    "ENABLE",
    "DISABLED",
    "DISABLE",
    "METHOD",
    "MODE",
    "TYPE",
    "PROVIDER",
    "ALGORITHM",
    "ATTR",
    "ATTRIBUTE",
    "FILTER",
    "HEADER",
    "SCOPE",
    "SCOPES",
    "VERSION",
    "LEVEL",
    "FORMAT",
    "PREFIX",
    "NOTIFICATION",
    "SUBJECT",
    "TEMPLATE",
    "ROTATION",
    "REAUTHENTICATION",
    "INITIATE",
    // fingerprints of public things
    "SHA",
    "COMMIT",
    "DIGEST",
    "CHECKSUM",
    "REVISION",
];

/// First parts that make a key a switch about something (`SKIP_INVITATION_CODE`,
/// `USE_API_KEY`), whatever it names.
const SWITCHES: &[&str] = &[
    "ENABLE", "DISABLE", "USE", "SKIP", "ALLOW", "REQUIRE", "FORCE",
];

/// Prefixes of variables compiled into the JavaScript a browser downloads.
const BROWSER_PREFIXES: &[&str] = &[
    "NEXT_PUBLIC_",
    "VITE_",
    "REACT_APP_",
    "NUXT_PUBLIC_",
    "EXPO_PUBLIC_",
    "GATSBY_",
];

/// Prefixes of well-known credentials: providers put them there so that scanners find
/// leaked ones, which lets us find them too.
const TOKEN_PREFIXES: &[&str] = &[
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "whsec_", // Stripe
    "sk-proj-",
    "sk-ant-",
    "sk-or-", // OpenAI, Anthropic, OpenRouter
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_", // GitHub
    "glpat-",      // GitLab
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxr-",
    "xoxs-",
    "xapp-", // Slack
    "AIza",  // Google API keys
    "SG.",   // SendGrid
    "npm_",
    "pypi-",
    "shpat_",
    "shpss_",
    "hf_",
    "dop_v1_",
    "r8_",
];

/// Webhook URLs whose path is the credential: whoever has it can post.
const WEBHOOK_HOSTS: &[&str] = &[
    "hooks.slack.com/",
    "discord.com/api/webhooks/",
    "discordapp.com/api/webhooks/",
    "webhook.office.com/",
];

/// Query parameters that carry a credential in a URL.
const QUERY_CREDENTIALS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "auth_token",
    "api_key",
    "apikey",
    "key",
    "sig",
    "signature",
    "x-amz-signature",
];

/// The default side of `key` with `value`, and why.
pub fn judge(key: &str, value: &str) -> Judgement {
    let value = unquoted(value.trim());
    if let Some(what) = credential_value(value) {
        return Judgement::secret(format!("value is {what}"));
    }
    let upper = key.to_ascii_uppercase();
    let parts: Vec<&str> = upper
        .split(['_', '-', '.'])
        .filter(|p| !p.is_empty())
        .collect();
    let Some(&head) = parts.last() else {
        return Judgement::config("no credential word in the key");
    };
    if let Some(prefix) = BROWSER_PREFIXES.iter().find(|p| upper.starts_with(*p)) {
        return Judgement::config(format!("{prefix}* is built into what browsers download"));
    }
    if head == "KEY"
        && let Some(public) = parts
            .iter()
            .rev()
            .nth(1)
            .filter(|p| matches!(**p, "PUBLIC" | "PUBLISHABLE" | "PUB"))
    {
        return Judgement::config(format!("key part {public}: the public half"));
    }
    if parts.ends_with(&["ACCESS", "KEY", "ID"]) {
        return Judgement::secret("an access key ID, half of a key pair");
    }
    let connection = parts
        .iter()
        .any(|p| matches!(*p, "CONNECTION" | "DATASOURCE"));
    if connection && value.is_empty() {
        return Judgement::secret("an empty connection string, which usually holds a password");
    }
    if let Some(switch) = parts.first().filter(|p| SWITCHES.contains(*p))
        && parts.len() > 1
    {
        return Judgement::config(format!("the key is a switch ({switch}_*)"));
    }
    if SETTING_HEADS.contains(&head) {
        return Judgement::config(format!("key ends in _{head}, which names a setting"));
    }
    if head == "CODE"
        && let Some(kind) = parts
            .iter()
            .rev()
            .nth(1)
            .filter(|p| CREDENTIAL_CODES.contains(*p))
    {
        return Judgement::secret(format!("key part {kind}_CODE"));
    }
    if head == "AUTH" {
        return Judgement::secret("key part AUTH");
    }
    if let Some(word) = parts.iter().find(|p| CREDENTIAL_WORDS.contains(*p)) {
        return Judgement::secret(format!("key part {word}"));
    }
    if let Some(word) = GLUED_WORDS.iter().find(|w| head.ends_with(*w)) {
        return Judgement::secret(format!("key ends in {word}"));
    }
    if looks_random(value) {
        return Judgement::secret("value looks random");
    }
    Judgement::config("no credential word in the key")
}

/// `value` without one pair of surrounding quotes: docker-format files keep them.
fn unquoted(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

/// What makes `value` a credential by its shape alone (step 1), in words that do not
/// quote it.
fn credential_value(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return None;
    }
    if let Some((scheme, rest)) = value.split_once("://")
        && is_scheme(scheme)
    {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let password = authority
            .rsplit_once('@')
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .is_some_and(|(_, pw)| !pw.is_empty());
        if password {
            return Some("a URL with a password");
        }
        if query_has_credential(rest) {
            return Some("a URL with a credential in its query");
        }
        if WEBHOOK_HOSTS.iter().any(|h| rest.starts_with(h)) {
            return Some("a webhook URL, which embeds its token");
        }
        return None;
    }
    if TOKEN_PREFIXES.iter().any(|p| value.starts_with(p)) || is_aws_key_id(value) {
        return Some("a token of a well-known kind");
    }
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    if is_jwt(value) {
        return Some("a signed token (JWT)");
    }
    None
}

fn is_scheme(scheme: &str) -> bool {
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `?password=...`, `&api_key=...`: a non-empty credential parameter.
fn query_has_credential(rest: &str) -> bool {
    let Some((_, query)) = rest.split_once('?') else {
        return false;
    };
    let query = query.split('#').next().unwrap_or_default();
    query.split(['&', ';']).any(|pair| {
        pair.split_once('=').is_some_and(|(name, v)| {
            !v.is_empty() && QUERY_CREDENTIALS.contains(&name.to_ascii_lowercase().as_str())
        })
    })
}

/// An AWS access key ID: `AKIA` or `ASIA` and 16 upper-case letters or digits.
fn is_aws_key_id(value: &str) -> bool {
    value.len() == 20
        && (value.starts_with("AKIA") || value.starts_with("ASIA"))
        && value[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Three base64url parts, the first a JSON header (`eyJ` is `{"` in base64).
fn is_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
        })
}

/// Whether a value reads as generated key material rather than a word, number, name,
/// list, URL or path: 32 or more hex digits, or 20 or more characters mixing lower and
/// upper case and digits with high entropy.
fn looks_random(value: &str) -> bool {
    if value
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '/' | ':' | '@' | ',' | '.'))
    {
        return false;
    }
    let hex = value.bytes().all(|b| b.is_ascii_hexdigit());
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    if hex {
        // All digits is a number, however long.
        return value.len() >= 32 && digits < value.len();
    }
    // Both cases and digits: base64 and generated passwords have them, slugs and model
    // names (`text-davinci-002-render-sha`) do not.
    let mixed = value.bytes().any(|b| b.is_ascii_lowercase())
        && value.bytes().any(|b| b.is_ascii_uppercase())
        && digits > 0;
    value.len() >= 20 && mixed && entropy(value) >= 3.5
}

/// Shannon entropy of `value`, in bits per character.
fn entropy(value: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in value.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = value.chars().count() as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(key: &str, value: &str) -> bool {
        judge(key, value).secret
    }

    #[test]
    fn credential_words_in_the_key() {
        for key in [
            "DJANGO_SECRET_KEY",
            "DATABASE_PASSWORD",
            "STATIC_ACCESS_KEY_ID",
            "db.passwd",
            "GITHUB_TOKEN",
            "SENTRY_DSN",
            "APIKEY",
            "MYAPIKEY",
            "JWT_SIGNING",
            "AWS_CREDENTIALS",
            "DB_PW",
            "PWD",
            "MYSQL_ROOT_PASS",
            "GPG_PASSPHRASE",
            "SIM_PIN",
            "API_TOKENS",
            "STRIPE_KEYS",
            "GOOGLE_APPLICATION_CREDENTIALS",
            // Issue 21: each went to the ConfigMap.
            "GITHUB_PAT",
            "STRIPE_SK",
            "SECRETS",
            "PASSWORDS",
            "SECRET_KEY_BASE",
            "REDIS_AUTH",
            "INVITATION_CODE",
            "SMS_TEST_OTP",
            "NEXT_PRIVATE_SMTP_PASSWORD",
            "NEXT_PRIVATE_ENCRYPTION_KEY",
        ] {
            assert!(secret(key, "x"), "{key}");
        }
        for key in [
            "DEBUG",
            "DATABASE_HOST",
            "DJANGO_ALLOWED_HOSTS",
            "KEYBOARD_LAYOUT",
            "PASSAGE",
            "SPIN_COUNT",
            "PINNED_VERSION",
            "UPWARD",
            "COUNTRY_CODE",
            // Issue 21: each went to the Secret.
            "NEXT_PRIVATE_SMTP_HOST",
            "AUTH_METHOD",
            "CERT_EMAIL",
            "API_KEY_RATE_LIMIT",
            "MIN_PASSWORD_LENGTH",
            "REFRESH_TOKEN_EXPIRY",
            "SSL_KEY_PATH",
            "TLS_CA_CERT",
            "FIREBASE_AUTH_DOMAIN",
            "AUTH_GITHUB_ID",
            "STRIPE_PUBLISHABLE_KEY",
            "JWT_PUBLIC_KEY",
            "NEXT_PUBLIC_STRIPE_KEY",
            "RTCSTATS_S3_USEIAMAUTH",
            "SKIP_INVITATION_CODE",
        ] {
            assert!(!secret(key, "x"), "{key}");
        }
    }

    #[test]
    fn the_value_speaks_whatever_the_key() {
        let cases = [
            ("DATABASE_URL", "postgres://u:pw@db/x"),
            ("REDIS_URL", "redis://:pw@r:6379/0"),
            ("DB_URL", "mysql://db/app?user=u&password=hunter2"),
            ("MAPS_URL", "https://maps.example.com/api?key=abc123"),
            (
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
            ),
            ("STRIPE", "sk_live_51Habcdefghijklmnop"),
            ("GH", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            ("BOT", "xoxb-1234-5678-abcdef"),
            ("AWS_ID", "AKIAIOSFODNN7EXAMPLE"),
            ("NEXT_PUBLIC_LEAK", "sk_live_51Habcdefghijklmnop"),
            (
                "TLS",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
            ),
            (
                "SERVICE_ROLE",
                "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoieCJ9.c2lnbmF0dXJl",
            ),
            ("RAILS_MASTER", "f34be427ebb29de8d88c107a71546019"),
            ("SESSION_SEED", "Xk9#mQ2$vL7%pR4!zT8wYb"),
            ("\"QUOTED\"", "\"postgres://u:pw@db/x\""),
        ];
        for (key, value) in cases {
            let j = judge(key, value);
            assert!(j.secret, "{key}: {j:?}");
            assert!(!j.reason.contains(value), "{key}: {}", j.reason);
        }
        for (key, value) in [
            ("DATABASE_URL", "postgres://u@db/x"),
            ("HOME_URL", "https://example.com/a:b@c"),
            ("SEARCH_URL", "https://example.com/?q=key&page=2"),
            ("WEBHOOK_URL", "https://example.com/hooks/deploy"),
            ("BUILD_NUMBER", "1234567890123456789012345678901234567890"),
            ("GIT_SHA", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            ("PROJECT_ID", "7a88fb47-b4e2-43b8-a06c-a5ce950dc6a4"),
            ("IMAGE", "ghcr.io/org/app:1.2.3-alpine"),
            ("GREETING", "Welcome to the Example App"),
            ("CHATGPT_MODELS", "text-davinci-002-render-sha"),
            ("SMTP_CONNECTION_URL", "smtp://mail:25"),
        ] {
            assert!(!secret(key, value), "{key}");
        }
    }

    #[test]
    fn key_pairs_and_connection_strings() {
        assert!(secret("LANGFUSE_S3_ACCESS_KEY_ID", "minio"));
        assert!(!secret("KMS_KEY_ID", "1234"));
        assert!(secret("SMTP_CONNECTION_URL", ""));
        assert!(!secret("SMTP_URL", ""));
    }
}
