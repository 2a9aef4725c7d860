//! Releases: each apply of a set recorded, as helm records a release and kapp an app
//! change, so that a day-2 user can list what ran when (`--history`), return to it
//! (`--rollback`), and have a failed release undone by itself (`--atomic`).
//!
//! A record is a Secret `kpipe-release.NAME.vN` next to the set's parent. It holds the
//! applied stream, gzipped (the stream carries the app's Secrets, so a record is a
//! Secret too: no secret value is ever written outside one), and, in labels and
//! annotations, what `--history` shows: time, images, config versions, issuer, result.
//! The records are not members of the set: a prune never sees them.

use crate::api::{Caller, Target};
use crate::applyset::ApplySet;
use crate::cli::{Args, DryRun};
use crate::pipeline::{Context, apply, deadline, read_input};
use crate::reporter::Reporter;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use kpipe_core::api::RetryPolicy;
use kpipe_core::{Document, Error, ObjectId, Result};
use kube::core::ApiResource;
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};

const RECORD_PREFIX: &str = "kpipe-release";
const RECORD_TYPE: &str = "kpipe.dev/release.v1";
const RELEASE_OF: &str = "kpipe.dev/release-of";
const REVISION: &str = "kpipe.dev/revision";
const RESULT: &str = "kpipe.dev/result";
const TIME: &str = "kpipe.dev/time";
const IMAGES: &str = "kpipe.dev/images";
const CONFIG: &str = "kpipe.dev/config";
const ISSUER: &str = "kpipe.dev/issuer";
const DESCRIPTION: &str = "kpipe.dev/description";
const MANIFEST: &str = "manifest.yaml.gz";
/// A Secret holds at most 1 MiB; a stream that does not fit gzipped is recorded
/// without it (shown, and no rollback to it).
const MANIFEST_MAX: usize = 900 * 1024;
/// Concurrent releases of one set: how often a revision taken meanwhile is skipped.
const REVISION_TRIES: u32 = 5;

/// One recorded release.
struct Record {
    revision: u32,
    name: String,
    good: bool,
    time: String,
    images: String,
    /// `configmap/NAME` and `secret/NAME` of the stream's immutable config versions.
    config: Vec<String>,
    issuer: String,
    description: String,
    /// The applied stream, gzipped (absent when it was too large to keep).
    manifest: Option<Vec<u8>>,
}

impl Record {
    fn of(object: &Value) -> Option<Record> {
        let meta = &object["metadata"];
        let note = |key: &str| {
            meta["annotations"][key]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        Some(Record {
            revision: meta["labels"][REVISION].as_str()?.parse().ok()?,
            name: meta["name"].as_str()?.to_owned(),
            good: meta["labels"][RESULT] == "deployed",
            time: note(TIME),
            images: note(IMAGES),
            config: note(CONFIG)
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            issuer: note(ISSUER),
            description: note(DESCRIPTION),
            manifest: object["data"][MANIFEST]
                .as_str()
                .and_then(|text| STANDARD.decode(text).ok()),
        })
    }
}

/// The recorded releases of one set, and where they live.
struct Releases<'a> {
    caller: Caller,
    reporter: &'a Reporter,
    secrets: ApiResource,
    namespace: String,
    /// The set's id: records are labelled with it.
    set_id: String,
    /// The parent's name, in the records' names.
    set_name: String,
    /// `applyset secret/polls in namespace shop`, for messages.
    set: String,
    /// Sorted by revision.
    records: Vec<Record>,
}

impl<'a> Releases<'a> {
    async fn open(args: &Args, reporter: &'a Reporter) -> Result<Releases<'a>> {
        let spec = args.applyset.as_deref().expect("clap requires --applyset");
        let connection = args.connect.connect(deadline(args)).await?;
        let caller = Caller::new(
            connection.client.clone(),
            RetryPolicy::new(args.retry_for),
            deadline(args),
            reporter.clone(),
        );
        let set = ApplySet::open(&caller, spec, &connection.namespace, args.force_applyset).await?;
        let namespace = set.namespace().unwrap_or(connection.namespace);
        let secrets = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
        let mut releases = Releases {
            caller,
            reporter,
            secrets,
            set_id: set.id.clone(),
            set_name: set.name().to_owned(),
            set: set.describe(),
            namespace,
            records: Vec::new(),
        };
        releases.records = releases.read().await?;
        Ok(releases)
    }

    async fn read(&self) -> Result<Vec<Record>> {
        let what = format!("releases of {}", self.set);
        let listed = self
            .caller
            .list_selected(
                &self.secrets,
                Some(&self.namespace),
                Some(&format!("{RELEASE_OF}={}", self.set_id)),
                &what,
            )
            .await
            .map_err(|f| Error::runtime(format!("reading the {what}: {}", f.message())))?;
        let mut records: Vec<Record> = listed.iter().filter_map(Record::of).collect();
        records.sort_by_key(|r| r.revision);
        Ok(records)
    }

    fn target(&self, name: &str) -> Target {
        Target {
            resource: self.secrets.clone(),
            namespace: Some(self.namespace.clone()),
            name: name.to_owned(),
        }
    }

    fn next_revision(&self) -> u32 {
        self.records.last().map_or(1, |r| r.revision + 1)
    }

    /// The newest good release before `revision` (before all, with `None`).
    fn last_good(&self, before: Option<u32>) -> Option<&Record> {
        self.records
            .iter()
            .rev()
            .filter(|r| before.is_none_or(|b| r.revision < b))
            .find(|r| r.good)
    }

    /// What `--rollback [N]` returns to: revision N, or the good release before the
    /// newest good one.
    fn rollback_target(&self, wanted: Option<u32>) -> Result<&Record> {
        let found = match wanted {
            Some(n) => self.records.iter().find(|r| r.revision == n).ok_or_else(|| {
                Error::input(format!(
                    "--rollback {n}: {} has no revision {n} (kapply --applyset ... --history lists them)",
                    self.set
                ))
            })?,
            None => {
                let newest_good = self.last_good(None).map(|r| r.revision);
                let current = self.records.last().map(|r| r.revision);
                // After a failed release left in place, the newest good one is the way back.
                let before = if newest_good == current { current } else { None };
                self.last_good(before).ok_or_else(|| {
                    Error::input(format!(
                        "--rollback: {} has no earlier good release to return to{}",
                        self.set,
                        if self.records.is_empty() {
                            " (none recorded)"
                        } else {
                            ""
                        }
                    ))
                })?
            }
        };
        if found.manifest.is_none() {
            return Err(Error::input(format!(
                "--rollback: revision {} of {} was too large to record its stream: it cannot be applied again",
                found.revision, self.set
            )));
        }
        Ok(found)
    }

    /// The stream revision `record` applied, read as any input is read.
    fn stream(&self, record: &Record) -> Result<Vec<Document>> {
        let text = self.text(record)?;
        let source = format!("revision {} of {}", record.revision, self.set);
        kpipe_core::stream::parse(&source, &text)
    }

    /// The text of the stream `record` applied.
    fn text(&self, record: &Record) -> Result<String> {
        let corrupt = |why: String| {
            Error::runtime(format!(
                "release record secret/{} is damaged ({why}): it cannot be applied again",
                record.name
            ))
        };
        let gz = record
            .manifest
            .as_deref()
            .ok_or_else(|| corrupt("no stream".into()))?;
        let mut text = String::new();
        GzDecoder::new(gz)
            .read_to_string(&mut text)
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(text)
    }

    /// Config versions of the good releases a prune keeps besides this run's own: the
    /// newest `keep - 1` (this run, once whole, is the newest).
    fn retained(&self, keep: u32, namespace: &str) -> Vec<(ObjectId, String)> {
        let keep = keep as usize;
        self.records
            .iter()
            .rev()
            .filter(|r| r.good)
            .take(keep.saturating_sub(1))
            .flat_map(|r| {
                r.config.iter().filter_map(move |name| {
                    let (kind, name) = match name.split_once('/')? {
                        ("configmap", name) => ("ConfigMap", name),
                        ("secret", name) => ("Secret", name),
                        _ => return None,
                    };
                    let id = ObjectId {
                        api_version: "v1".into(),
                        kind: kind.into(),
                        namespace: Some(namespace.to_owned()),
                        name: name.into(),
                    };
                    let why = format!(
                        "config version of revision {}, kept for a rollback (the last {keep} \
                         good releases keep theirs)",
                        r.revision
                    );
                    Some((id, why))
                })
            })
            .collect()
    }

    /// Writes the record of a release that reached the cluster; its revision, or `None`
    /// (said on stderr) when it could not be written: the release itself stands.
    async fn record(
        &mut self,
        docs: &[Document],
        outcome: &Result<()>,
        description: &str,
    ) -> Option<u32> {
        let summary = Summary::of(docs);
        let text = kpipe_core::yaml::to_stream(docs.iter().map(|d| &d.value));
        // Applied again as it was, the current release is still the current release: a
        // re-deploy with the same inputs changes nothing, not even the history.
        if let Some(current) = self.records.last().filter(|r| r.good)
            && outcome.is_ok()
            && self.text(current).is_ok_and(|t| t == text)
        {
            return Some(current.revision);
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        let manifest = gz
            .write_all(text.as_bytes())
            .and_then(|()| gz.finish())
            .ok()
            .filter(|bytes| bytes.len() <= MANIFEST_MAX);
        let mut description = match outcome {
            Ok(()) => description.to_owned(),
            Err(e) => format!("{description} failed: {}", one_line(&e.to_string())),
        };
        if manifest.is_none() {
            description.push_str(" (stream too large to record: no rollback to it)");
        }
        let result = if outcome.is_ok() {
            "deployed"
        } else {
            "failed"
        };
        let time = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        for _ in 0..REVISION_TRIES {
            let revision = self.next_revision();
            let name = format!("{RECORD_PREFIX}.{}.v{revision}", self.set_name);
            let mut body = json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "type": RECORD_TYPE,
                "metadata": {
                    "name": name,
                    "namespace": self.namespace,
                    "labels": {
                        RELEASE_OF: self.set_id,
                        REVISION: revision.to_string(),
                        RESULT: result,
                    },
                    "annotations": {
                        TIME: time,
                        IMAGES: summary.images,
                        CONFIG: summary.config.join(","),
                        ISSUER: summary.issuer,
                        DESCRIPTION: description,
                    },
                },
            });
            if let Some(gz) = &manifest {
                body["data"] = json!({ MANIFEST: STANDARD.encode(gz) });
            }
            let what = format!("secret/{name}");
            match self.caller.create(&self.target(&name), &body, &what).await {
                Ok(created) => {
                    self.records.extend(Record::of(&created));
                    return Some(revision);
                }
                // Another release of the set took this revision meanwhile.
                Err(failure) if failure.code() == Some(409) => match self.read().await {
                    Ok(records) => self.records = records,
                    Err(e) => return self.not_recorded(&e.to_string()),
                },
                Err(failure) => return self.not_recorded(&failure.message()),
            }
        }
        self.not_recorded("every revision tried was taken by a concurrent release")
    }

    fn not_recorded(&self, why: &str) -> Option<u32> {
        self.reporter.say(&format!(
            "kapply: warning: the release of {} was not recorded: {why}\n",
            self.set
        ));
        None
    }

    /// Deletes the oldest records beyond `max` (after a good release only).
    async fn trim(&mut self, max: u32) {
        let excess = self.records.len().saturating_sub(max as usize);
        let old: Vec<Record> = self.records.drain(..excess).collect();
        for record in old {
            let what = format!("secret/{}", record.name);
            let params = kube::core::params::DeleteParams::background();
            if let Err(failure) = self
                .caller
                .delete(&self.target(&record.name), &params, &what)
                .await
            {
                self.reporter.say(&format!(
                    "kapply: warning: old release record {what} not deleted: {}\n",
                    failure.message()
                ));
            }
        }
    }
}

/// What a record shows of its stream: only fields that are never secret.
struct Summary {
    images: String,
    config: Vec<String>,
    issuer: String,
}

impl Summary {
    fn of(docs: &[Document]) -> Summary {
        let mut images: Vec<String> = Vec::new();
        let mut config = Vec::new();
        let mut issuers: Vec<String> = Vec::new();
        for doc in docs {
            let value = &doc.value;
            match (doc.id().group(), doc.kind()) {
                ("apps", "Deployment" | "StatefulSet" | "DaemonSet") => {
                    let containers = value["spec"]["template"]["spec"]["containers"].as_array();
                    for image in containers
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c["image"].as_str())
                    {
                        if !images.iter().any(|i| i == image) {
                            images.push(image.to_owned());
                        }
                    }
                }
                ("", kind @ ("ConfigMap" | "Secret")) if value["immutable"] == true => {
                    config.push(format!("{}/{}", kind.to_lowercase(), doc.id().name));
                }
                ("networking.k8s.io", "Ingress") => {
                    let notes = &value["metadata"]["annotations"];
                    for key in ["cert-manager.io/cluster-issuer", "cert-manager.io/issuer"] {
                        if let Some(issuer) = notes[key].as_str()
                            && !issuers.iter().any(|i| i == issuer)
                        {
                            issuers.push(issuer.to_owned());
                        }
                    }
                }
                _ => {}
            }
        }
        Summary {
            images: images.join(","),
            config,
            issuer: issuers.join(","),
        }
    }
}

/// A message's first line, scrubbed of anything secret, short enough for a column.
fn one_line(text: &str) -> String {
    let text = kpipe_core::redact::scrub(text);
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_owned(),
    }
}

/// `--release` and `--rollback`: apply, record, and with `--atomic` undo a failure.
pub async fn run(args: &Args, reporter: &Reporter) -> Result<()> {
    let dry_run = args.dry_run != DryRun::None || args.diff;
    let mut releases = Releases::open(args, reporter).await?;
    let (docs, description) = match args.rollback {
        Some(wanted) => {
            let target = releases.rollback_target(wanted)?;
            (
                releases.stream(target)?,
                format!("rollback to {}", target.revision),
            )
        }
        None => (
            read_input(args, deadline(args)).await?,
            if releases.records.is_empty() {
                "install".to_owned()
            } else {
                "upgrade".to_owned()
            },
        ),
    };
    let mut ctx = Context::new(deadline(args));
    ctx.retained = releases.retained(args.keep_releases, &releases.namespace);
    let outcome = apply(args, docs.clone(), &ctx, reporter).await;
    if dry_run || !ctx.wrote() || matches!(outcome, Err(Error::Input(_))) {
        return outcome;
    }
    if let Err(Error::Interrupted(..)) = &outcome {
        let back = releases
            .last_good(None)
            .map(|r| format!(": `--rollback {}` returns to the last good one", r.revision))
            .unwrap_or_default();
        releases.reporter.say(&format!(
            "kapply: a signal stops work: this release is not recorded and not rolled back{back}\n"
        ));
        return outcome;
    }
    let revision = releases.record(&docs, &outcome, &description).await;
    match outcome {
        Ok(()) => {
            releases.trim(args.history_max).await;
            Ok(())
        }
        Err(failure) if args.atomic => roll_back(args, &mut releases, failure, revision).await,
        Err(failure) => {
            if let Some(good) = releases.last_good(revision) {
                releases.reporter.say(&format!(
                    "kapply: the failed release stays (no --atomic); `--rollback {}` returns to \
                     the last good one\n",
                    good.revision
                ));
            }
            Err(failure)
        }
    }
}

/// `--atomic`: the last good release before `failed`, applied and waited for again.
/// The exit status stays the failure's; its message says where the app is now.
async fn roll_back(
    args: &Args,
    releases: &mut Releases<'_>,
    failure: Error,
    failed: Option<u32>,
) -> Result<()> {
    let failed_name = failed.map_or_else(|| "the release".to_owned(), |n| format!("revision {n}"));
    let Some(good) = releases.last_good(failed).filter(|r| r.manifest.is_some()) else {
        releases.reporter.say(&format!(
            "kapply: {failed_name} failed and {} has no earlier good release to roll back to: \
             it stays as it is\n",
            releases.set
        ));
        return Err(failure);
    };
    let (good, docs) = (good.revision, releases.stream(good)?);
    releases.reporter.say(&format!(
        "kapply: {failed_name} failed: rolling back to revision {good} (--atomic)\n"
    ));
    let mut ctx = Context::new(deadline(args));
    ctx.stdout = false;
    ctx.retained = releases.retained(args.keep_releases, &releases.namespace);
    let back = apply(args, docs.clone(), &ctx, releases.reporter).await;
    if ctx.wrote() && !matches!(back, Err(Error::Interrupted(..))) {
        let description = format!("rollback to {good} after {failed_name} failed");
        releases.record(&docs, &back, &description).await;
    }
    match back {
        Ok(()) => {
            releases.trim(args.history_max).await;
            Err(amend(
                failure,
                &format!("; rolled back to revision {good}, which runs again"),
            ))
        }
        Err(e) => {
            releases.reporter.say(&format!(
                "kapply: the rollback to revision {good} failed too: {}\n",
                one_line(&e.to_string())
            ));
            Err(amend(
                failure,
                &format!("; the rollback to revision {good} failed too"),
            ))
        }
    }
}

/// `failure` with `more` at the end of its message, its exit status kept.
fn amend(failure: Error, more: &str) -> Error {
    match failure {
        Error::Runtime(m) => Error::Runtime(m + more),
        Error::Timeout(m) => Error::Timeout(m + more),
        Error::Summary(m) => Error::Summary(m + more),
        other => other,
    }
}

/// `--history`: the records as a table on stdout, oldest first.
pub async fn history(args: &Args, reporter: &Reporter) -> Result<()> {
    let releases = Releases::open(args, reporter).await?;
    if releases.records.is_empty() {
        releases.reporter.say(&format!(
            "kapply: no releases of {} recorded (kapply --release records them)\n",
            releases.set
        ));
        return Ok(());
    }
    let newest_good = releases.last_good(None).map(|r| r.revision);
    let mut rows = vec![[
        "REVISION".to_owned(),
        "UPDATED".to_owned(),
        "STATUS".to_owned(),
        "IMAGE".to_owned(),
        "CONFIG".to_owned(),
        "ISSUER".to_owned(),
        "DESCRIPTION".to_owned(),
    ]];
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    for r in &releases.records {
        let status = match (r.good, Some(r.revision) == newest_good) {
            (false, _) => "failed",
            (true, true) => "deployed",
            (true, false) => "superseded",
        };
        let config: Vec<&str> = r
            .config
            .iter()
            .map(|c| c.split_once('/').map_or(c.as_str(), |(_, name)| name))
            .collect();
        rows.push([
            r.revision.to_string(),
            or_dash(&r.time),
            status.to_owned(),
            or_dash(&r.images),
            or_dash(&config.join(",")),
            or_dash(&r.issuer),
            r.description.clone(),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   "));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    reporter.write(&text)
}

/// After `--delete-all` removed the whole set: its release records go too (a new
/// deploy starts at revision 1), or with a dry run, are listed.
pub async fn forget(
    caller: &Caller,
    reporter: &Reporter,
    set: &ApplySet,
    namespace: &str,
    dry_run: DryRun,
) {
    let secrets = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
    let namespace = set.namespace().unwrap_or_else(|| namespace.to_owned());
    let what = format!("releases of {}", set.describe());
    let listed = match caller
        .list_selected(
            &secrets,
            Some(&namespace),
            Some(&format!("{RELEASE_OF}={}", set.id)),
            &what,
        )
        .await
    {
        Ok(listed) => listed,
        Err(failure) => {
            reporter.say(&format!(
                "kapply: warning: the {what} were not deleted: {}\n",
                failure.message()
            ));
            return;
        }
    };
    let mut params = kube::core::params::DeleteParams::background();
    params.dry_run = dry_run == DryRun::Server;
    let suffix = match dry_run {
        DryRun::None => "",
        DryRun::Client => " (dry run)",
        DryRun::Server => " (server dry run)",
    };
    let mut text = String::new();
    for name in listed.iter().filter_map(|o| o["metadata"]["name"].as_str()) {
        let target = Target {
            resource: secrets.clone(),
            namespace: Some(namespace.clone()),
            name: name.to_owned(),
        };
        let what = format!("secret/{name}");
        let deleted = dry_run == DryRun::Client
            || match caller.delete(&target, &params, &what).await {
                Ok(_) => true,
                Err(failure) => {
                    reporter.say(&format!(
                        "kapply: warning: release record {what} not deleted: {}\n",
                        failure.message()
                    ));
                    false
                }
            };
        if deleted {
            text.push_str(&format!("{what} deleted{suffix}\n"));
        }
    }
    // The lines are data, as every other deletion's; a closed stdout ends quietly.
    let _ = reporter.write(&text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<Document> {
        kpipe_core::stream::parse("<stdin>", text).unwrap()
    }

    #[test]
    fn summary_names_images_config_versions_and_issuer_never_values() {
        let stream = "\
apiVersion: v1
kind: Secret
metadata: {name: polls-secret-0123456789}
immutable: true
stringData: {DATABASE_PASSWORD: hunter2-very-secret}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: polls-config-abcdef0123}
immutable: true
data: {DEBUG: 'False'}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: mutable}
data: {A: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: polls-app}
spec:
  template:
    spec:
      containers: [{name: polls, image: docker.io/sammy/polls:v2}, {name: side, image: docker.io/sammy/polls:v2}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: polls
  annotations: {cert-manager.io/cluster-issuer: letsencrypt-prod}
";
        let summary = Summary::of(&docs(stream));
        assert_eq!(summary.images, "docker.io/sammy/polls:v2");
        assert_eq!(
            summary.config,
            [
                "secret/polls-secret-0123456789",
                "configmap/polls-config-abcdef0123"
            ]
        );
        assert_eq!(summary.issuer, "letsencrypt-prod");
    }

    #[test]
    fn amend_keeps_the_exit_status() {
        let e = amend(Error::Timeout("not ready".into()), "; rolled back");
        assert!(matches!(&e, Error::Timeout(m) if m == "not ready; rolled back"));
        let e = amend(Error::Summary("1 failed".into()), "; x");
        assert!(matches!(&e, Error::Summary(m) if m == "1 failed; x"));
    }
}
