//! HTTP: authentication, routing of API paths to [`Cluster`] verbs, discovery,
//! watch streams, fault injection and the one-line-per-request log.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use http::{Method, Request, Response, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::cluster::{Cluster, Page, Patch, Propagation, Target, WriteOptions};
use crate::faults::{Faults, Verdict};
use crate::kinds::ResourceType;
use crate::select::Selector;
use crate::status::ApiError;
use crate::store::Event;
use crate::table::{self, Include};
use crate::typed::{self, Validation};
use crate::{convert, kinds, openapi, protobuf};

type Body = BoxBody<Bytes, Infallible>;

/// The largest request body accepted, as kube-apiserver's limit.
const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How long a watch without timeoutSeconds stays open.
const DEFAULT_WATCH_SECONDS: u64 = 1800;

/// Everything a request handler needs.
pub struct Shared {
    pub cluster: Arc<Cluster>,
    pub faults: Arc<Faults>,
    pub latency: Latency,
    /// With a write latency: client writes in flight now, and how many times a write
    /// arrived while none was (each a sequential write step, which `make bench` counts).
    pub writes_in_flight: AtomicUsize,
    pub write_steps: AtomicUsize,
    /// The bearer token every request must carry; None over plain HTTP, where
    /// kubectl (client-go) sends no credentials at all.
    pub token: Option<String>,
    /// host:port, for /api's serverAddressByClientCIDRs.
    pub address: String,
}

/// A real API server's answer time: a write passes admission and waits for etcd (10-15
/// ms on a real cluster), a read is served from the watch cache (1-3 ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub write: Duration,
    pub read: Duration,
}

impl Latency {
    /// `write=D,read=D` (either may be left out: zero), or one duration for both.
    pub fn parse(spec: &str) -> Result<Latency, String> {
        let duration = |d: &str| kpipe_core::time::parse_duration(d);
        let mut latency = Latency::default();
        for part in spec.split(',').map(str::trim) {
            match part.split_once('=') {
                Some(("write", d)) => latency.write = duration(d)?,
                Some(("read", d)) => latency.read = duration(d)?,
                Some((other, _)) => {
                    return Err(format!("unknown latency {other:?} (write or read)"));
                }
                None => {
                    let both = duration(part)?;
                    latency = Latency {
                        write: both,
                        read: both,
                    };
                }
            }
        }
        Ok(latency)
    }

    fn of(&self, method: &Method) -> Duration {
        if matches!(*method, Method::GET | Method::HEAD) {
            self.read
        } else {
            self.write
        }
    }
}

/// A client write being served, counted while it lasts (even if the client goes away).
struct WriteInFlight<'a>(&'a AtomicUsize);

impl<'a> WriteInFlight<'a> {
    fn start(shared: &'a Shared) -> WriteInFlight<'a> {
        if shared.writes_in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            let step = shared.write_steps.fetch_add(1, Ordering::SeqCst) + 1;
            eprintln!("kubesim: sequential write step {step}");
        }
        WriteInFlight(&shared.writes_in_flight)
    }
}

impl Drop for WriteInFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The header the simulated controllers send: their requests are exempt from
/// fault injection, so a test's faults are met by the client under test alone.
pub const CONTROLLER_HEADER: &str = "x-kubesim-controller";

/// Who sent a request, as the log names it: `kubesim-controller`, else the
/// User-Agent's first word (kubectl/v1.32.0), else `-` (kube-rs sends none).
#[derive(Clone)]
struct Caller {
    name: String,
    controller: bool,
}

impl Caller {
    fn of(req: &Request<Incoming>) -> Caller {
        if req.headers().contains_key(CONTROLLER_HEADER) {
            return Caller {
                name: "kubesim-controller".into(),
                controller: true,
            };
        }
        let name = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split_whitespace().next())
            .unwrap_or("-");
        Caller {
            name: name.to_string(),
            controller: false,
        }
    }
}

/// What the log line adds about a response beyond its code (a watch's ERROR event).
#[derive(Clone)]
struct LogNote(String);

/// Returned by the service to make hyper drop the connection without answering.
#[derive(Debug)]
pub struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection")
    }
}

impl std::error::Error for ResetConnection {}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let mut body = serde_json::to_vec(value).expect("JSON values serialize");
    body.push(b'\n');
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .expect("valid response")
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut response = json_response(e.code, &e.to_status());
    if e.code == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// Query parameters, decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }
}

/// The manager recorded when a write names none: the User-Agent's program name.
fn default_manager(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

/// Serves one request: the hyper service function.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ResetConnection> {
    let method = req.method().clone();
    let query = Query::parse(req.uri().query());
    let is_watch = query.flag("watch");
    let path = if is_watch {
        format!("{}?watch", req.uri().path())
    } else {
        req.uri().path().to_string()
    };
    let caller = Caller::of(&req);
    let faults = (!caller.controller).then_some(&shared.faults);
    if let Some(latency) = faults.map(|f| f.latency()).filter(|l| !l.is_zero()) {
        tokio::time::sleep(latency).await;
    }
    let mut lost = false;
    let modelled = shared.latency.of(&method);
    let _in_flight = (!caller.controller
        && !shared.latency.write.is_zero()
        && !matches!(method, Method::GET | Method::HEAD))
    .then(|| WriteInFlight::start(&shared));
    if !caller.controller && !is_watch && !modelled.is_zero() {
        tokio::time::sleep(modelled).await;
    }
    if let Some(faults) = faults {
        let mut verdict = if is_watch {
            faults.watch_start_verdict(method.as_str(), &path)
        } else {
            faults.verdict(method.as_str(), req.uri().path())
        };
        if verdict == Verdict::Frozen {
            log(&method, &path, "frozen", &caller);
            while verdict == Verdict::Frozen {
                tokio::time::sleep(Duration::from_millis(50)).await;
                verdict = if is_watch {
                    faults.watch_start_verdict(method.as_str(), &path)
                } else {
                    faults.verdict(method.as_str(), req.uri().path())
                };
            }
        }
        lost = verdict == Verdict::Lost;
        match verdict {
            Verdict::Serve | Verdict::Lost | Verdict::Frozen => {}
            Verdict::Hang => {
                log(&method, &path, "hang", &caller);
                // Until the client gives up (dropping this future) or the rule is lifted.
                while faults.watch_verdict() == Verdict::Hang {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                return Err(ResetConnection);
            }
            Verdict::Fail(code) => {
                let response = error_response(&ApiError::injected(code));
                log(&method, &path, &code.to_string(), &caller);
                return Ok(response);
            }
            Verdict::Reset => {
                log(&method, &path, "reset", &caller);
                return Err(ResetConnection);
            }
        }
    }
    let response = match route(&shared, req, query).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    let mut outcome = response.status().as_u16().to_string();
    if let Some(LogNote(note)) = response.extensions().get::<LogNote>() {
        outcome = format!("{outcome} {note}");
    }
    // A server that went down (or was killed to restart) while serving this request
    // never sends the answer, what it wrote stays written: the connection is reset
    // now rather than when the listener notices.
    if lost || faults.is_some_and(|f| f.is_down() || f.restarting()) {
        log(&method, &path, &format!("{outcome} lost"), &caller);
        return Err(ResetConnection);
    }
    log(&method, &path, &outcome, &caller);
    match faults.and_then(|f| f.trickle()).filter(|_| !is_watch) {
        Some(pause) => Ok(trickle(response, pause).await),
        None => Ok(response),
    }
}

/// The same answer, its body sent one byte per `pause`.
async fn trickle(response: Response<Body>, pause: Duration) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let (mut tx, rx) = futures::channel::mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        for i in 0..bytes.len() {
            tokio::time::sleep(pause).await;
            if tx.send(bytes.slice(i..=i)).await.is_err() {
                return;
            }
        }
    });
    let mut response = streaming(rx);
    *response.status_mut() = parts.status;
    *response.headers_mut() = parts.headers;
    response
}

/// One line per request, never bodies: `METHOD PATH -> OUTCOME [CALLER]`.
fn log(method: &Method, path: &str, outcome: &str, caller: &Caller) {
    eprintln!("{method} {path} -> {outcome} [{}]", caller.name);
}

fn accept(req: &Request<Incoming>) -> &str {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn authorized(shared: &Shared, req: &Request<Incoming>) -> bool {
    let Some(token) = &shared.token else {
        return true;
    };
    let expected = format!("Bearer {token}");
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

async fn route(
    shared: &Shared,
    req: Request<Incoming>,
    query: Query,
) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => return Ok(json_response(200, &kinds::version())),
        ["healthz" | "livez" | "readyz"] => {
            return Ok(Response::builder()
                .status(200)
                .body(full("ok"))
                .expect("valid response"));
        }
        _ => {}
    }
    if !authorized(shared, &req) {
        return Err(ApiError::unauthorized());
    }
    let get = req.method() == Method::GET;
    match segments.as_slice() {
        ["api" | "apis"] if get && kinds::wants_aggregated(accept(&req)) => {
            let core = segments[0] == "api";
            let mut response =
                json_response(200, &kinds::aggregated(&shared.cluster.types(), core));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(kinds::AGGREGATED),
            );
            return Ok(response);
        }
        ["api"] if get => return Ok(json_response(200, &kinds::api_versions(&shared.address))),
        ["apis"] if get => {
            return Ok(json_response(
                200,
                &kinds::api_group_list(&shared.cluster.types()),
            ));
        }
        ["apis", group] if get => {
            let list = kinds::api_group_list(&shared.cluster.types());
            let found = list["groups"]
                .as_array()
                .and_then(|gs| gs.iter().find(|g| g["name"] == *group))
                .cloned();
            let mut found = found.ok_or_else(ApiError::no_route)?;
            found["kind"] = json!("APIGroup");
            found["apiVersion"] = json!("v1");
            return Ok(json_response(200, &found));
        }
        ["api", version] if get => {
            return kinds::api_resource_list(&shared.cluster.types(), "", version)
                .map(|l| json_response(200, &l))
                .ok_or_else(ApiError::no_route);
        }
        ["apis", group, version] if get => {
            return kinds::api_resource_list(&shared.cluster.types(), group, version)
                .map(|l| json_response(200, &l))
                .ok_or_else(ApiError::no_route);
        }
        ["openapi", "v3"] if get => {
            return Ok(json_response(200, &openapi::root(&shared.cluster.types())));
        }
        ["openapi", "v3", "api", version] if get => {
            return openapi::group_version(&shared.cluster.types(), "", version)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::no_route);
        }
        ["openapi", "v3", "apis", group, version] if get => {
            return openapi::group_version(&shared.cluster.types(), group, version)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::no_route);
        }
        _ => {}
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::no_route()),
    };
    let target = resolve(&shared.cluster, group, version, rest)?;
    serve_resource(shared, req, query, target).await
}

/// Works out resource, namespace, name and subresource from the path after the
/// group/version: `[namespaces/NS/]RESOURCE[/NAME[/SUBRESOURCE]]`.
fn resolve(
    cluster: &Cluster,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Target, ApiError> {
    let find = |plural: &str| cluster.find_type(group, version, plural);
    if let ["namespaces", ns, plural, tail @ ..] = rest
        && let Some(rt) = find(plural).filter(|t| t.namespaced)
        && tail.len() <= 2
    {
        return Ok(Target {
            rt,
            namespace: Some(ns.to_string()),
            name: tail.first().map(|s| s.to_string()),
            subresource: tail.get(1).map(|s| s.to_string()),
        });
    }
    match rest {
        [plural, tail @ ..] if tail.len() <= 2 => {
            let rt = find(plural).ok_or_else(ApiError::no_route)?;
            Ok(Target {
                rt,
                namespace: None,
                name: tail.first().map(|s| s.to_string()),
                subresource: tail.get(1).map(|s| s.to_string()),
            })
        }
        _ => Err(ApiError::no_route()),
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| ApiError::too_large(MAX_BODY_BYTES))
}

fn parse_object(content_type: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    if content_type == "application/vnd.kubernetes.protobuf" {
        return protobuf::decode(bytes);
    }
    if content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) => crate::yaml11::parse(bytes, "the body of the request could not be decoded"),
    }
}

async fn serve_resource(
    shared: &Shared,
    req: Request<Incoming>,
    query: Query,
    t: Target,
) -> Result<Response<Body>, ApiError> {
    // A view of another resource's storage (events.k8s.io Events) is served from it.
    let view = t.rt.clone();
    let Some(stored) = convert::storage(&view) else {
        return serve_stored(shared, req, query, t, &view).await;
    };
    let t = Target {
        rt: stored.clone(),
        ..t
    };
    serve_stored(shared, req, query, t, &view)
        .await
        .map_err(|e| convert::error(&view, &stored, e))
}

/// A request on the resource that stores the objects of `view`: `view` is `t.rt`
/// unless [`convert::storage`] says otherwise; bodies go in and out as `view` has them.
async fn serve_stored(
    shared: &Shared,
    req: Request<Incoming>,
    query: Query,
    t: Target,
    view: &ResourceType,
) -> Result<Response<Body>, ApiError> {
    match t.subresource.as_deref() {
        None => {}
        Some("status") if t.rt.status_subresource => {}
        Some("scale") if t.rt.scale_subresource() => return serve_scale(shared, req, t).await,
        Some("log") if t.rt.serves_logs() && req.method() == Method::GET => {
            return serve_log(shared, &query, &t);
        }
        Some(_) => return Err(ApiError::no_route()),
    }
    if t.rt.namespaced && t.namespace.is_none() && !matches!(*req.method(), Method::GET) {
        return Err(ApiError::method_not_allowed());
    }
    let opts = write_options(&req, &query);
    let validation = Validation::parse(query.get("fieldValidation"));
    let cluster = &shared.cluster;
    let printer = Printer::new(cluster, &req, &query, view);
    let method = req.method().clone();
    let content_type = content_type(&req);
    match (method, t.name.is_some()) {
        (Method::GET, true) => {
            let object = cluster.get(&t)?;
            let rv = object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let object = printer.object(object);
            Ok(json_response(
                200,
                &printer
                    .print(std::slice::from_ref(&object), &rv)
                    .unwrap_or(object),
            ))
        }
        (Method::GET, false) => {
            let selector = Selector::parse(query.get("labelSelector"), query.get("fieldSelector"))?;
            if query.flag("watch") {
                let path = format!("{}?watch", req.uri().path());
                Ok(watch(
                    shared,
                    t,
                    selector,
                    &query,
                    printer,
                    Caller::of(&req),
                    path,
                ))
            } else {
                let page = Page {
                    limit: query
                        .get("limit")
                        .and_then(|l| l.parse().ok())
                        .filter(|l| *l > 0),
                    continue_token: query.get("continue").map(String::from),
                };
                let list = printer.object(cluster.list(&t, &selector, &page)?);
                let table = printer
                    .print(
                        list["items"].as_array().map_or(&[], Vec::as_slice),
                        list["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or_default(),
                    )
                    .map(|mut table| {
                        // kubectl get pages through Tables too.
                        if let Some(token) = list["metadata"].get("continue") {
                            table["metadata"]["continue"] = token.clone();
                        }
                        table
                    });
                Ok(json_response(200, &table.unwrap_or(list)))
            }
        }
        (Method::POST, false) => {
            let mut body = parse_object(&content_type, &read_body(req).await?)?;
            let warnings = typed::check(view, &mut body, validation, false)?;
            let body = convert::inward(view, &t.rt, body);
            let (code, obj) = cluster.create(&t, body, &opts)?;
            let obj = printer.object(obj);
            let mut warnings = warnings;
            warnings.extend(pod_security(cluster, &t, &obj));
            Ok(with_warnings(json_response(code, &obj), &warnings))
        }
        (Method::PUT, true) => {
            let mut body = parse_object(&content_type, &read_body(req).await?)?;
            let warnings = typed::check(view, &mut body, validation, false)?;
            let body = convert::inward(view, &t.rt, body);
            let (code, obj) = cluster.update(&t, body, &opts)?;
            let obj = printer.object(obj);
            let mut warnings = warnings;
            warnings.extend(pod_security(cluster, &t, &obj));
            Ok(with_warnings(json_response(code, &obj), &warnings))
        }
        (Method::PATCH, true) => {
            let bytes = read_body(req).await?;
            let mut warnings = Vec::new();
            let patch = match content_type.as_str() {
                "application/apply-patch+yaml" => {
                    let mut applied = crate::yaml11::parse_apply(&bytes)?;
                    warnings = typed::check(view, &mut applied, validation, true)?;
                    Patch::Apply(convert::inward(view, &t.rt, applied))
                }
                "application/merge-patch+json" => Patch::Merge(convert::inward(
                    view,
                    &t.rt,
                    parse_object(&content_type, &bytes)?,
                )),
                "application/strategic-merge-patch+json" if !t.rt.custom => Patch::Strategic(
                    convert::inward(view, &t.rt, parse_object(&content_type, &bytes)?),
                ),
                "application/json-patch+json" => {
                    let undecodable = |e: serde_json::Error| {
                        ApiError::bad_request(format!(
                            "the body of the request could not be decoded: {e}"
                        ))
                    };
                    let mut ops: Value = serde_json::from_slice(&bytes).map_err(undecodable)?;
                    for op in ops.as_array_mut().into_iter().flatten() {
                        for field in ["path", "from"] {
                            if let Some(path) = op[field].as_str() {
                                op[field] = json!(convert::inward_path(view, path));
                            }
                        }
                    }
                    Patch::Json(serde_json::from_value(ops).map_err(undecodable)?)
                }
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let (code, obj) = cluster.patch(&t, patch, &opts)?;
            let obj = printer.object(obj);
            warnings.extend(pod_security(cluster, &t, &obj));
            Ok(with_warnings(json_response(code, &obj), &warnings))
        }
        (Method::DELETE, named) => {
            let bytes = read_body(req).await?;
            // kubectl and kube-rs send DeleteOptions in the body; the query may too.
            let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::bad_request(format!(
                        "the body of the request could not be decoded: {e}"
                    ))
                })?
            };
            let body_dry_run = body["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "All"));
            let opts = WriteOptions {
                dry_run: opts.dry_run || body_dry_run,
                ..opts
            };
            let policy = delete_policy(&body, &query)?;
            let (answer, garbage) = if named {
                let (answer, garbage) = cluster.delete(&t, &opts, policy)?;
                (answer, Vec::from_iter(garbage))
            } else {
                if t.rt.plural == "namespaces" && !t.rt.custom {
                    return Err(ApiError::method_not_allowed());
                }
                let selector =
                    Selector::parse(query.get("labelSelector"), query.get("fieldSelector"))?;
                cluster.delete_collection(&t, &selector, &opts, policy)?
            };
            if !garbage.is_empty() {
                // Logged before the answer, and again once done: a test that has the
                // answer knows whether there is anything to wait for, and waits for the
                // second line rather than for a while.
                for work in &garbage {
                    eprintln!("kubesim: garbage collector: will act on the deletion of {work}");
                }
                let cluster = shared.cluster.clone();
                tokio::spawn(async move {
                    // The garbage collector acts a moment after the deletion, not in it.
                    tokio::time::sleep(GC_DELAY).await;
                    for work in &garbage {
                        cluster.collect(work);
                        eprintln!("kubesim: garbage collector: acted on the deletion of {work}");
                    }
                });
            }
            Ok(json_response(200, &printer.object(answer)))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// How long after a deletion the simulated garbage collector deletes its dependents.
const GC_DELAY: Duration = Duration::from_millis(50);

/// The propagation policy of a DELETE: DeleteOptions' `propagationPolicy`, or the old
/// `orphanDependents`, from the body or else the query; None for the resource's default.
fn delete_policy(body: &Value, query: &Query) -> Result<Option<Propagation>, ApiError> {
    if let Some(policy) = body["propagationPolicy"]
        .as_str()
        .or_else(|| query.get("propagationPolicy"))
    {
        return Propagation::parse(policy).map(Some);
    }
    let orphan = body["orphanDependents"]
        .as_bool()
        .or_else(|| query.get("orphanDependents").map(|v| v == "true"));
    Ok(orphan.map(|o| {
        if o {
            Propagation::Orphan
        } else {
            Propagation::Background
        }
    }))
}

/// Adds one `Warning: 299 - "..."` header per warning, as kube-apiserver does.
/// Pod Security admission's warning for a pod or workload written in a labelled
/// namespace (not for status writes).
fn pod_security(cluster: &Cluster, t: &Target, obj: &Value) -> Option<String> {
    if t.subresource.is_some() {
        return None;
    }
    let labels = cluster.namespace_labels(t.namespace.as_deref()?);
    crate::podsecurity::warning(&labels, obj)
}

fn with_warnings(mut response: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = format!(
            "299 - {}",
            serde_json::to_string(w).expect("strings serialize")
        );
        if let Ok(value) = header::HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

fn write_options(req: &Request<Incoming>, query: &Query) -> WriteOptions {
    WriteOptions {
        field_manager: query.get("fieldManager").map(String::from),
        default_manager: default_manager(req),
        force: query.flag("force"),
        dry_run: query.get("dryRun") == Some("All"),
    }
}

fn content_type(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or_default().trim().to_string())
        .unwrap_or_default()
}

/// GET pods/NAME/log: the container's output as plain text (see [`crate::logs`]).
fn serve_log(shared: &Shared, query: &Query, t: &Target) -> Result<Response<Body>, ApiError> {
    let pod = shared.cluster.get(&Target {
        subresource: None,
        ..t.clone()
    })?;
    let request = crate::logs::LogRequest {
        container: query.get("container"),
        tail_lines: query.get("tailLines").and_then(|n| n.parse().ok()),
        previous: query.flag("previous"),
    };
    let text = crate::logs::pod_log(&shared.cluster, &pod, &request)?;
    Ok(Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(full(text))
        .expect("valid response"))
}

/// The /scale subresource (`kubectl scale`): a Scale view whose spec.replicas
/// writes through to the Deployment.
async fn serve_scale(
    shared: &Shared,
    req: Request<Incoming>,
    t: Target,
) -> Result<Response<Body>, ApiError> {
    let opts = write_options(&req, &Query::parse(req.uri().query()));
    let content_type = content_type(&req);
    let method = req.method().clone();
    if method == Method::GET {
        return Ok(json_response(200, &shared.cluster.get_scale(&t)?));
    }
    let body = read_body(req).await?;
    let change = |scale: Value| -> Result<Value, ApiError> {
        match (&method, content_type.as_str()) {
            (&Method::PUT, _) => parse_object(&content_type, &body),
            (
                &Method::PATCH,
                "application/merge-patch+json" | "application/strategic-merge-patch+json",
            ) => {
                let mut scale = scale;
                json_patch::merge(&mut scale, &parse_object(&content_type, &body)?);
                Ok(scale)
            }
            (&Method::PATCH, "application/json-patch+json") => {
                let patch: json_patch::Patch = serde_json::from_slice(&body).map_err(|e| {
                    ApiError::bad_request(format!(
                        "the body of the request could not be decoded: {e}"
                    ))
                })?;
                let mut scale = scale;
                json_patch::patch(&mut scale, &patch)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                Ok(scale)
            }
            (&Method::PATCH, other) => Err(ApiError::unsupported_media_type(other)),
            _ => Err(ApiError::method_not_allowed()),
        }
    };
    let (code, scale) = shared.cluster.set_scale(&t, change, &opts)?;
    Ok(json_response(code, &scale))
}

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .expect("JSON values serialize");
    line.push(b'\n');
    Bytes::from(line)
}

fn streaming(rx: futures::channel::mpsc::Receiver<Bytes>) -> Response<Body> {
    use futures::StreamExt;
    let stream = rx.map(|b| Ok::<_, Infallible>(Frame::data(b)));
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("valid response")
}

/// Prints objects as a Table when the client asked for one.
struct Printer {
    wanted: Option<(ResourceType, Option<Value>, Include)>,
    /// The resource as the client addressed it, whose form objects are shown in.
    view: ResourceType,
}

impl Printer {
    fn new(
        cluster: &Cluster,
        req: &Request<Incoming>,
        query: &Query,
        view: &ResourceType,
    ) -> Printer {
        let wanted = table::wanted(accept(req)).then(|| {
            (
                view.clone(),
                cluster.definition(view),
                Include::parse(query.get("includeObject")),
            )
        });
        Printer {
            wanted,
            view: view.clone(),
        }
    }

    /// A stored object, list or Status as the client's resource shows it.
    fn object(&self, stored: Value) -> Value {
        convert::outward(&self.view, stored)
    }

    fn print(&self, objects: &[Value], resource_version: &str) -> Option<Value> {
        let (rt, crd, include) = self.wanted.as_ref()?;
        Some(table::table(
            rt,
            crd.as_ref(),
            objects,
            resource_version,
            *include,
        ))
    }

    /// A watch event's object, as a one-row Table if tables were asked for.
    fn event_object(&self, stored: &Value) -> Value {
        let object = &self.object(stored.clone());
        let rv = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        self.print(std::slice::from_ref(object), rv)
            .unwrap_or_else(|| object.clone())
    }
}

/// A watch: 200 and then one JSON event per line until timeoutSeconds, a fault
/// cut, or the client leaves. Too old a resourceVersion gets one ERROR event.
fn watch(
    shared: &Shared,
    t: Target,
    selector: Selector,
    query: &Query,
    printer: Printer,
    caller: Caller,
    path: String,
) -> Response<Body> {
    let rv = query
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0");
    let parsed_rv = rv.and_then(|v| v.parse::<u64>().ok());
    let bookmarks = query.flag("allowWatchBookmarks");
    let initial_events = query.flag("sendInitialEvents");
    let timeout = Duration::from_secs(
        query
            .get("timeoutSeconds")
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_WATCH_SECONDS),
    );
    let limit = (!caller.controller)
        .then(|| shared.faults.watch_limit())
        .flatten();
    // A client under test loses its watches when the server goes down.
    let faults = (!caller.controller).then(|| shared.faults.clone());
    let (mut tx, rx) = futures::channel::mpsc::channel::<Bytes>(64);

    let expired = |requested: u64, oldest: u64| {
        watch_line("ERROR", &ApiError::expired(requested, oldest).to_status())
    };
    let mut note = None;
    let start = if rv.is_some() && !caller.controller && shared.faults.take_watch_gone() {
        note = Some("ERROR 410 Expired (watch-gone)");
        let current = shared.cluster.resource_version();
        Err(expired(parsed_rv.unwrap_or(0), current))
    } else {
        // A resourceVersion we cannot read is as good as a compacted one.
        match shared.cluster.watch(
            &t,
            if rv.is_some() {
                Some(parsed_rv.unwrap_or(0))
            } else {
                None
            },
        ) {
            Ok(started) => Ok(started),
            Err(oldest) => {
                note = Some("ERROR 410 Expired");
                Err(expired(parsed_rv.unwrap_or(0), oldest))
            }
        }
    };
    // What this watch reports of a change, if anything: an object entering or
    // leaving the selection is ADDED or DELETED for it, as on a real server.
    let seen = move |e: &Event, t: &Target| -> Option<&'static str> {
        let ours = e.key.group == t.rt.group
            && e.key.plural == t.rt.plural
            && t.namespace
                .as_deref()
                .is_none_or(|ns| !t.rt.namespaced || e.key.namespace == ns);
        // Every watch sees every change: another resource's costs one comparison.
        if !ours {
            return None;
        }
        let now = selector.matches(&e.object);
        let before = e.previous.as_ref().map(|p| selector.matches(p));
        match (e.kind, before, now) {
            ("MODIFIED", Some(false), true) => Some("ADDED"),
            ("MODIFIED", Some(true), false) => Some("DELETED"),
            (kind, _, true) => Some(kind),
            _ => None,
        }
    };
    tokio::spawn(async move {
        let (current, (past, mut live)) = match start {
            Ok(s) => s,
            Err(line) => {
                let _ = tx.send(line).await;
                return;
            }
        };
        let bookmark = |rv: u64, initial_end: bool| {
            let mut meta = json!({"resourceVersion": rv.to_string()});
            if initial_end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            watch_line(
                "BOOKMARK",
                &printer.object(
                    json!({"kind": t.rt.kind, "apiVersion": t.rt.api_version(), "metadata": meta}),
                ),
            )
        };
        let mut sent = 0u32;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut last_rv = current;
        let cut = |sent: u32| {
            log(
                &Method::GET,
                &path,
                &format!("closed after {sent} events (watch-close)"),
                &caller,
            );
        };
        for (kind, e) in past.iter().filter_map(|e| Some((seen(e, &t)?, e))) {
            if limit.is_some_and(|l| sent >= l) {
                cut(sent);
                return;
            }
            if tx
                .send(watch_line(kind, &printer.event_object(&e.object)))
                .await
                .is_err()
            {
                return;
            }
            sent += 1;
            last_rv = last_rv.max(e.rv);
        }
        if initial_events && tx.send(bookmark(current, true)).await.is_err() {
            return;
        }
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        ticker.tick().await;
        let mut outage = tokio::time::interval(Duration::from_millis(100));
        loop {
            if limit.is_some_and(|l| sent >= l) {
                cut(sent);
                return;
            }
            tokio::select! {
                () = &mut deadline => return,
                _ = outage.tick(), if faults.is_some() => {
                    if faults.as_ref().is_some_and(|f| f.is_down()) {
                        log(&Method::GET, &path, "cut (down)", &caller);
                        return;
                    }
                    // Frozen: the events wait (in the channel) until it thaws.
                    while faults.as_ref().is_some_and(|f| f.is_frozen()) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                }
                event = live.recv() => match event {
                    Ok(e) => {
                        let Some(kind) = seen(&e, &t).filter(|_| e.rv > current) else {
                            continue;
                        };
                        last_rv = e.rv;
                        if tx.send(watch_line(kind, &printer.event_object(&e.object))).await.is_err() {
                            return;
                        }
                        sent += 1;
                    }
                    // Fell behind or the server is stopping: the client re-lists.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                },
            }
        }
    });
    let mut response = streaming(rx);
    if let Some(note) = note {
        response.extensions_mut().insert(LogNote(note.to_string()));
    }
    response
}
