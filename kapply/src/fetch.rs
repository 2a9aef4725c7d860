//! `-f URL`: a manifest read over http(s) as kubectl reads it (Go's net/http): redirects
//! followed (a chain of at most 10 requests), the proxies of HTTP_PROXY, HTTPS_PROXY and
//! NO_PROXY, only a `200 OK` taken. Unlike kubectl, a redirect from https to plain http is
//! refused, the connection and a silent server have timeouts of their own besides
//! --timeout, and the answer has a size limit, read as it comes.

use kpipe_core::{Error, Result};
use reqwest::Url;
use std::time::Duration;
use tokio::time::Instant;

/// What bounds one read besides --timeout.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Opening the connection: TCP, the proxy's tunnel, the TLS handshake (Go's dialer
    /// gives up on TCP after 30s too).
    connect: Duration,
    /// The longest the server may stay silent, before its answer or inside its body
    /// (what ends a server that hangs when --timeout is 0).
    stall: Duration,
    /// The most bytes of an answer read; a longer one is cut off there.
    max_bytes: usize,
}

const LIMITS: Limits = Limits {
    connect: Duration::from_secs(30),
    stall: Duration::from_secs(30),
    max_bytes: 64 * 1024 * 1024,
};

/// As Go's net/http: the 10th answer that redirects ends the chain ("stopped after 10
/// redirects"), so 9 redirects are followed.
const MAX_REDIRECTS: usize = 10;

/// The body of a URL, all of it (connection, redirects, answer, body) by `deadline`, a
/// server that accepts and never answers included. https verifies the certificate with
/// the system's roots (the verifier kube's client uses), never switched off; plain http
/// is read, as kubectl reads it.
pub async fn fetch(url: &str, deadline: Option<Instant>) -> Result<String> {
    let proxies = ProxyEnv::read(|name| std::env::var(name).ok());
    let read = kpipe_core::api::bounded(deadline, fetch_within(url, &proxies, LIMITS)).await;
    read.unwrap_or_else(|| {
        Err(Error::Timeout(format!(
            "{url}: cannot read: no answer before --timeout ran out; nothing was applied"
        )))
    })
}

async fn fetch_within(url: &str, proxies: &ProxyEnv, limits: Limits) -> Result<String> {
    let fail = |why: String| Error::input(format!("{url}: cannot read: {why}"));
    let client = client(proxies, limits).map_err(fail)?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(why(&e, limits)))?;
    let body = read_body(url, response, limits).await?;
    kpipe_core::stream::text_of(url, body)
}

/// One client for one URL: kapply reads a few, once.
fn client(proxies: &ProxyEnv, limits: Limits) -> std::result::Result<reqwest::Client, String> {
    // The crypto of rustls here is ring, as kube's client has it (the only provider
    // built); installed unless something installed it first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("kapply/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::custom(
            |attempt| match refused_redirect(attempt.previous(), attempt.url()) {
                Some(why) => attempt.error(why),
                None => attempt.follow(),
            },
        ))
        .connect_timeout(limits.connect)
        .read_timeout(limits.stall)
        // The proxies below, not reqwest's own reading of the environment.
        .no_proxy();
    for proxy in proxies.proxies()? {
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up the client: {}", causes(&e)))
}

/// Why a redirect to `next` is not followed, after the requests to `previous`.
fn refused_redirect(previous: &[Url], next: &Url) -> Option<String> {
    if previous.len() >= MAX_REDIRECTS {
        return Some(format!(
            "stopped after {MAX_REDIRECTS} redirects (the last to {})",
            shown(next)
        ));
    }
    let from_https = previous.last().is_some_and(|p| p.scheme() == "https");
    if from_https && next.scheme() == "http" {
        return Some(format!(
            "redirected from https to plain http ({}): refused, as what came over it could \
             have been changed on the way; give that URL itself to -f if you trust it",
            shown(next)
        ));
    }
    None
}

/// A URL for a message: without a password or a query (a signed download link's token).
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    url.set_query(None);
    url.to_string()
}

/// Why a request failed, in words: reqwest's causes without its own wrapping (and the
/// URL it names, which the message names already).
fn why(e: &reqwest::Error, limits: Limits) -> String {
    if e.is_redirect() {
        // The policy's reason, which names where it was going.
        let mut source = std::error::Error::source(e);
        while let Some(inner) = source {
            if inner.source().is_none() {
                return inner.to_string();
            }
            source = inner.source();
        }
    }
    if e.is_timeout() {
        return if e.is_connect() {
            format!(
                "cannot connect: no connection within {}s",
                limits.connect.as_secs_f64()
            )
        } else {
            format!(
                "the server sent nothing for {}s",
                limits.stall.as_secs_f64()
            )
        };
    }
    let causes = causes(e);
    match causes.strip_prefix("client error (Connect): ") {
        Some(why) => format!("cannot connect: {why}"),
        None => causes,
    }
}

/// An error's causes, outermost first, without reqwest's own wrapping ("builder
/// error") or a cause its successor repeats.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = e.source();
    while let Some(inner) = source {
        source = inner.source();
        if inner.is::<reqwest::Error>() {
            continue;
        }
        let text = inner.to_string();
        if let Some(last) = parts.last()
            && last.contains(&text)
        {
            parts.pop();
        }
        parts.push(text);
    }
    if parts.is_empty() {
        return e.to_string();
    }
    parts.join(": ")
}

/// The body of a `200 OK` answer, read as it comes and cut off past `max_bytes`. Any
/// other status is an error worded as kubectl's.
async fn read_body(url: &str, mut response: reqwest::Response, limits: Limits) -> Result<Vec<u8>> {
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let reason = status
            .canonical_reason()
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        return Err(Error::input(format!(
            "unable to read URL {url:?}, server reported {}{reason}, status code={}",
            status.as_u16(),
            status.as_u16()
        )));
    }
    let fail = |why: String| Error::input(format!("{url}: cannot read: {why}"));
    let max_bytes = limits.max_bytes;
    let too_big = || {
        const MIB: usize = 1024 * 1024;
        let most = if max_bytes.is_multiple_of(MIB) {
            format!("{} MiB", max_bytes / MIB)
        } else {
            format!("{max_bytes} bytes")
        };
        fail(format!(
            "the answer is over {most}, the most kapply reads from a URL (download it and \
             give -f the file)"
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fail(why(&e, limits)))? {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The proxies of the environment as Go's net/http takes them (`httpproxy.FromEnvironment`,
/// which kubectl uses): HTTPS_PROXY for https URLs, HTTP_PROXY for http ones (each also
/// in lower case, the first one set and not empty), NO_PROXY for the hosts reached
/// directly; `localhost` and loopback addresses are never proxied, and HTTP_PROXY is not
/// taken in a CGI program (where it can be a request's `Proxy:` header). ALL_PROXY, which
/// curl reads, is not read (kubectl does not).
#[derive(Debug, PartialEq, Eq)]
struct ProxyEnv {
    /// The variable and its value.
    http: Option<(&'static str, String)>,
    https: Option<(&'static str, String)>,
    /// NO_PROXY after the hosts Go never proxies.
    no_proxy: String,
}

impl ProxyEnv {
    fn read(var: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|name| var(name).filter(|v| !v.is_empty()).map(|v| (name, v)))
        };
        let cgi = var("REQUEST_METHOD").is_some_and(|v| !v.is_empty());
        let no_proxy = first(["NO_PROXY", "no_proxy"]).map(|(_, v)| v);
        ProxyEnv {
            http: first(["HTTP_PROXY", "http_proxy"]).filter(|_| !cgi),
            https: first(["HTTPS_PROXY", "https_proxy"]),
            no_proxy: format!("localhost,127.0.0.0/8,::1,{}", no_proxy.unwrap_or_default()),
        }
    }

    fn proxies(&self) -> std::result::Result<Vec<reqwest::Proxy>, String> {
        let mut proxies = Vec::new();
        for (proxy, for_https) in [(&self.http, false), (&self.https, true)] {
            let Some((name, value)) = proxy else {
                continue;
            };
            // The value is not printed: it may hold a password.
            let bad = |why: String| format!("{name} is not a proxy URL: {why}");
            let url = proxy_url(value).map_err(bad)?;
            let proxy = if for_https {
                reqwest::Proxy::https(url)
            } else {
                reqwest::Proxy::http(url)
            };
            let proxy = proxy.map_err(|e| bad(causes(&e)))?;
            proxies.push(proxy.no_proxy(reqwest::NoProxy::from_string(&self.no_proxy)));
        }
        Ok(proxies)
    }
}

/// A proxy variable's value as a URL, as Go reads it: `HOST:PORT` (no scheme) is an
/// http proxy. One reached over socks, which Go also knows, is refused: reqwest is
/// built without it here.
fn proxy_url(value: &str) -> std::result::Result<String, String> {
    let Some((scheme, _)) = value.split_once("://") else {
        return Ok(format!("http://{value}"));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "http" || scheme == "https" {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "kapply reaches a proxy over http or https, not {scheme}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn proxies_come_from_the_environment_as_go_reads_it() {
        let env = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            ProxyEnv::read(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        };
        assert_eq!(
            env(&[]),
            ProxyEnv {
                http: None,
                https: None,
                no_proxy: "localhost,127.0.0.0/8,::1,".into()
            }
        );
        let read = env(&[
            ("HTTP_PROXY", ""),
            ("http_proxy", "proxy:3128"),
            ("HTTPS_PROXY", "http://secure:3128"),
            ("https_proxy", "http://other:3128"),
            ("no_proxy", ".corp,10.0.0.0/8"),
            ("ALL_PROXY", "http://all:1"),
        ]);
        assert_eq!(read.http, Some(("http_proxy", "proxy:3128".into())));
        assert_eq!(
            read.https,
            Some(("HTTPS_PROXY", "http://secure:3128".into()))
        );
        assert_eq!(read.no_proxy, "localhost,127.0.0.0/8,::1,.corp,10.0.0.0/8");
        assert_eq!(read.proxies().unwrap().len(), 2);
        // Without a scheme, as people write it (a scheme to url, `proxy.corp:`): http.
        assert_eq!(
            proxy_url("proxy.corp:3128").unwrap(),
            "http://proxy.corp:3128"
        );
        assert_eq!(proxy_url("HTTPS://p:1").unwrap(), "HTTPS://p:1");
        // In a CGI program HTTP_PROXY may come from a request header (httpoxy).
        let cgi = env(&[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://evil:1")]);
        assert_eq!(cgi.http, None);
        let socks = env(&[("HTTPS_PROXY", "socks5://user:pw@proxy:1080")]);
        let err = socks.proxies().unwrap_err();
        assert_eq!(
            err,
            "HTTPS_PROXY is not a proxy URL: kapply reaches a proxy over http or https, not socks5"
        );
    }

    #[test]
    fn redirects_stop_at_go_s_limit_and_never_go_from_https_to_http() {
        let chain = |n: usize| vec![url("http://a.example/x"); n];
        assert_eq!(
            refused_redirect(&chain(9), &url("http://a.example/y")),
            None
        );
        assert_eq!(
            refused_redirect(&chain(10), &url("http://a.example/y?token=s3cr3t")).unwrap(),
            "stopped after 10 redirects (the last to http://a.example/y)"
        );
        assert_eq!(
            refused_redirect(&[url("http://a.example/x")], &url("https://b.example/y")),
            None
        );
        let why = refused_redirect(
            &[url("http://a.example/x"), url("https://b.example/y")],
            &url("http://user:pw@c.example/z?sig=1"),
        )
        .unwrap();
        assert!(
            why.starts_with(
                "redirected from https to plain http (http://user@c.example/z): refused"
            ),
            "{why}"
        );
    }

    /// A server on 127.0.0.1 that answers each connection with what `answer` writes,
    /// given the request line.
    fn serve(answer: impl Fn(&str, &mut std::net::TcpStream) + Send + 'static) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                answer(request.trim_end(), &mut stream);
            }
        });
        port
    }

    const SMALL: Limits = Limits {
        connect: Duration::from_secs(5),
        stall: Duration::from_millis(300),
        max_bytes: 4096,
    };

    async fn read(port: u16, limits: Limits) -> Result<String> {
        let none = ProxyEnv::read(|_| None);
        fetch_within(&format!("http://127.0.0.1:{port}/m.yaml"), &none, limits).await
    }

    #[tokio::test]
    async fn an_answer_over_the_limit_is_refused_or_cut_off_unread() {
        // Said up front: refused before the body, which never comes.
        let port = serve(|_, stream| {
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 4097\r\n\r\n");
            std::thread::sleep(Duration::from_secs(5));
        });
        let started = std::time::Instant::now();
        let err = read(port, SMALL).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            err.to_string(),
            format!(
                "http://127.0.0.1:{port}/m.yaml: cannot read: the answer is over 4096 bytes, the most \
                 kapply reads from a URL (download it and give -f the file)"
            )
        );
        assert_eq!(err.exit_code(), 2);
        // Sent without a length, and without an end: cut off at the limit.
        let port = serve(|_, stream| {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
            while stream.write_all(chunk.as_bytes()).is_ok() {}
        });
        let err = read(port, SMALL).await.unwrap_err().to_string();
        assert!(err.contains("the answer is over"), "{err}");
        // At the limit it is read.
        let port = serve(|_, stream| {
            let body = format!("# {}\n", "x".repeat(4096 - 3));
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        });
        assert_eq!(read(port, SMALL).await.unwrap().len(), 4096);
    }

    #[tokio::test]
    async fn a_server_that_stalls_is_given_up_on() {
        let port = serve(|_, stream| {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nkind: "
            );
            std::thread::sleep(Duration::from_secs(5));
        });
        let err = read(port, SMALL).await.unwrap_err().to_string();
        assert!(err.ends_with("the server sent nothing for 0.3s"), "{err}");
        let port = serve(|_, _| std::thread::sleep(Duration::from_secs(5)));
        let err = read(port, SMALL).await.unwrap_err().to_string();
        assert!(err.ends_with("the server sent nothing for 0.3s"), "{err}");
    }

    #[tokio::test]
    async fn only_200_is_an_answer_as_kubectl_takes_it() {
        let port = serve(|_, stream| {
            let _ = write!(
                stream,
                "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
            );
        });
        let err = read(port, SMALL).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "unable to read URL \"http://127.0.0.1:{port}/m.yaml\", server reported \
                 204 No Content, status code=204"
            )
        );
        assert_eq!(err.exit_code(), 2);
    }
}
