//! manifest-gen: the tutorial's Deployment, Service and Ingress (+ Job, HPA, PDB) as a
//! YAML stream, appended to the manifest stream it reads. See README.md.

mod cli;
mod django;
mod objects;
mod plan;
mod quantity;
mod sources;

pub use cli::{Args, ServiceType};
pub use objects::CONFIG_HASH_ANNOTATION;

use kpipe_core::{Document, Error, Result, redact, stream, yaml};
use std::io::IsTerminal;

pub fn run(args: Args) -> Result<()> {
    let input = read_input(&args)?;
    if let Some(email) = &args.cluster_issuers {
        let issuers = objects::cluster_issuers(email)?;
        let text = yaml::to_stream(input.iter().map(|d| &d.value).chain(&issuers));
        return kpipe_core::write_stdout(&text);
    }
    let env = sources::resolve(
        &input,
        &sources::Wanted {
            config_map: args.config_map.as_deref(),
            secret: args.secret.as_deref(),
            default_config_map: format!("{}-config", args.app),
            default_secret: format!("{}-secret", args.app),
            namespace: args.namespace.as_deref(),
            versioned: args.versioned_config,
        },
    )?;
    let env = if args.no_config_hash {
        sources::EnvSources {
            config_hash: None,
            ..env
        }
    } else {
        env
    };
    let plan = plan::Plan::new(&args, env)?;
    let generated = objects::generate(&plan);

    if args.show {
        redact::show_on_terminal();
    }
    if !args.show
        && std::io::stdout().is_terminal()
        && let Some(secret) = input.iter().find(|d| redact::is_secret(&d.value))
    {
        return Err(Error::input(format!(
            "stdout is a terminal and the input holds {} ({}): pipe the stream on \
             (| kapply), redirect it to a file, or pass --show",
            secret.id(),
            secret.place()
        )));
    }

    // A Namespace must exist before anything in it, including the objects passed through.
    let (namespace, own): (Vec<_>, Vec<_>) = generated
        .objects
        .iter()
        .partition(|o| o["kind"] == "Namespace");
    let namespace = namespace
        .into_iter()
        .filter(|ns| !input.iter().any(|d| same_object(&d.value, ns)));
    // The stream's objects in order, the versioned ConfigMap and Secret in their places.
    let versions: Vec<(usize, serde_json::Value)> = plan
        .env
        .versions
        .iter()
        .map(|v| (v.position, sources::versioned_object(&input[v.position], v)))
        .collect();
    let passed = input.iter().enumerate().map(|(i, d)| {
        versions
            .iter()
            .find(|(position, _)| *position == i)
            .map_or(&d.value, |(_, versioned)| versioned)
    });
    let text = yaml::to_stream(namespace.chain(passed).chain(own));
    for note in &generated.notes {
        redact::eprint(&format!("manifest-gen: {note}\n"));
    }
    kpipe_core::write_stdout(&text)
}

/// `-i FILE|-`, else stdin unless it is a terminal (nobody is typing a manifest).
fn read_input(args: &Args) -> Result<Vec<Document>> {
    match args.input.as_deref() {
        Some(path) => stream::read(path),
        None if std::io::stdin().is_terminal() => Ok(Vec::new()),
        None => stream::read("-"),
    }
}

fn same_object(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    kpipe_core::ObjectId::of(a) == kpipe_core::ObjectId::of(b)
}
