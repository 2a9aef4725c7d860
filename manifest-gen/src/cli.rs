//! The command line: flags, their defaults (the tutorial's) and the help that teaches them.

use clap::{Parser, ValueEnum};

const ABOUT: &str =
    "Write the polls app's Deployment, Service and Ingress (+ Job, HPA, PDB) as a YAML stream";

const LONG_ABOUT: &str = "\
Write the Kubernetes manifests of the tutorial's steps 6-8 to stdout: a Deployment, a
Service and, with --host, an Ingress (networking.k8s.io/v1), plus on request a migration
Job, a HorizontalPodAutoscaler and a PodDisruptionBudget. The objects are built from typed
Kubernetes structs and follow current APIs; names, labels and the selector are the
tutorial's (`app: polls`), so the output can take over objects made by hand from it.

When stdin is not a terminal (or with -i FILE|-) manifest-gen reads a manifest stream,
writes every object of it first, unchanged and in order, then its own. A ConfigMap and an
Opaque Secret in that stream become the Deployment's envFrom (--config-map/--secret
override), and a sha256 over their names and data becomes the pod-template annotation
`kpipe/config-hash`: pods read env vars only at start, so a changed value must roll them.
Only the hash is written, never a value. When the stream holds a ConfigMap or a Secret,
only the sources found in it are referenced (a missing one would stop the pods); with no
stream the tutorial's polls-config and polls-secret are referenced. An empty pipe, or a
kpipe stream cut off before its last line `# kpipe stream: end`, is what a stage before
that failed leaves: refused, never read as no stream (a Deployment without its config
would follow). No stream on purpose: a terminal, `</dev/null` or an empty file.

--versioned-config (what `make deploy` uses) writes that ConfigMap and Secret as
immutable versions named by their content, as kustomize's generators name them:
`polls-config-<hash>` with `immutable: true`, the hash the first 10 hex digits of a
sha256 over the object's kind, name and stored data (a Secret hashes the same in
stringData or base64 data). The Deployment and the Job reference the versions. A changed
value makes a new version of that object alone; the live one is never written, so a
release that fails leaves everything the running pods read as it was, and a rollback
can return to it. Labels and annotations are kept, every other object passes through
unchanged, and a stream already versioned (this output, read again) keeps its names.
Only manifest-gen's own objects are re-pointed: another workload in the stream that
names the ConfigMap or Secret still names the unversioned one. A --config-map/--secret
that names no object of the stream is referenced as given.

With --host and a DJANGO_ALLOWED_HOSTS in the stream's ConfigMap or Secret, every host
must be one Django admits (exact name, `.example.com` for the domain and its subdomains,
or `*`; the tutorial's settings split the value on `,`): Django answers 400 to every
request for any other, so that is refused (exit 2). Without it in the stream, nothing is
checked.

What it adds to the tutorial (each can be changed or turned off): readiness/liveness
probes, HTTP GET /admin/login/ with `Host: HOST` when there is a --host (so a pod whose
Django refuses HOST is never ready), TCP on the container port otherwise (--probe-path,
--tcp-probes, --no-probes), rolling updates that keep every old pod until a new one is
ready (--max-unavailable), modest requests and a memory limit (--cpu-request,
--memory-request, --cpu-limit, --memory-limit; `none` drops one), and a security context
the tutorial's root image still runs under (no privilege escalation, capabilities dropped,
seccomp RuntimeDefault; --run-as-user, --no-security-context).
Labels: `app: <app>` exactly in selectors; app.kubernetes.io/* labels only on objects and
pod templates, never in a selector (selectors are immutable).";

const AFTER_LONG_HELP: &str = "\
Examples:
  # Step 6 (Deployment) and the final ClusterIP Service, for kubectl or kapply:
  manifest-gen --image your_dockerhub_username/app_repo_name:latest | kubectl apply -f -

  # Step 7: the temporary NodePort Service to try the app on a node's port:
  manifest-gen --image your_dockerhub_username/app_repo_name:latest --service-type NodePort

  # Step 8: Ingress for your domain with a cert-manager staging certificate in polls-tls,
  # then the production issuer once the staging one works (the tutorial's placeholder
  # your_domain.com is not a valid host name: '_' is refused):
  manifest-gen --image IMAGE --host your-domain.com --issuer letsencrypt-staging
  manifest-gen --image IMAGE --host your-domain.com --issuer letsencrypt-prod

  # Two hosts, one certificate; an image from a private registry:
  secretgen --docker-config ~/.docker/config.json --name regcred | kapply
  manifest-gen --image registry.example.com/polls:v1 --image-pull-secret regcred \\
    --host polls.example.com,www.polls.example.com

  # The whole pipeline: config from the env file, a migration Job, autoscaling:
  envsplit --app polls env | secretgen \\
    | manifest-gen --image IMAGE --host your-domain.com --migrate --collectstatic \\
        --hpa 2:5:70 --pdb \\
    | kapply

  # Config as immutable versions (polls-config-<hash>), as make deploy renders it:
  envsplit --app polls env | secretgen \\
    | manifest-gen --image IMAGE --host your-domain.com --migrate --versioned-config

Exit status:
  0  the stream was written
  2  bad flag or input stream (message names the flag or object; an empty pipe or a
     cut-off stream: the stage before failed); nothing on stdout
  1  runtime failure (I/O)";

#[derive(Parser, Debug, Clone)]
#[command(name = "manifest-gen", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = AFTER_LONG_HELP)]
pub struct Args {
    /// Container image of the app (the tutorial's your_dockerhub_username/app_repo_name:latest)
    #[arg(
        long,
        value_name = "IMAGE",
        required_unless_present = "cluster_issuers"
    )]
    pub image: Option<String>,

    /// Emit only the ClusterIssuers the tutorial assumes, letsencrypt-staging and
    /// letsencrypt-prod (ACME, HTTP-01 through the nginx ingress class), registered
    /// with EMAIL, after the input stream; no app objects. Apply them once per cluster
    /// with cert-manager installed (`make issuers EMAIL=you@example.com`).
    #[arg(long, value_name = "EMAIL", conflicts_with = "image")]
    pub cluster_issuers: Option<String>,

    /// Read the manifest stream from FILE (`-` for stdin) [default: stdin when it is not a terminal]
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<String>,

    /// App name: label `app: APP` and the prefix of every object name
    #[arg(long, default_value = "polls", value_name = "APP")]
    pub app: String,

    /// Deployment (and HPA, PDB) name [default: APP-app]
    #[arg(long, value_name = "NAME")]
    pub deployment_name: Option<String>,

    /// Container name [default: APP]
    #[arg(long, value_name = "NAME")]
    pub container_name: Option<String>,

    /// Service name [default: APP]
    #[arg(long, value_name = "NAME")]
    pub service_name: Option<String>,

    /// Port gunicorn listens on: containerPort, Service port and targetPort
    #[arg(long, default_value_t = 8000, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Name of the container port (probes use it)
    #[arg(long, default_value = "gunicorn", value_name = "NAME")]
    pub port_name: String,

    /// Deployment replicas [default: 2; left out with --hpa]
    #[arg(long, value_name = "N", conflicts_with = "hpa", value_parser = clap::value_parser!(i32).range(0..))]
    pub replicas: Option<i32>,

    /// ConfigMap for envFrom [default: the stream's ConfigMap, else APP-config]
    #[arg(long, value_name = "NAME")]
    pub config_map: Option<String>,

    /// Secret for envFrom [default: the stream's Opaque Secret, else APP-secret]
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,

    /// Do not put the `kpipe/config-hash` annotation on the pod template
    #[arg(long)]
    pub no_config_hash: bool,

    /// Write the stream's ConfigMap and Secret the pods read as immutable versions named
    /// by their content, NAME-<10 hex of sha256> with `immutable: true`, and reference
    /// those from the Deployment and the Job (as kustomize's generators do)
    #[arg(long)]
    pub versioned_config: bool,

    /// Service type: ClusterIP (behind the Ingress), NodePort (the tutorial's step 7) or LoadBalancer
    #[arg(long, value_enum, default_value_t = ServiceType::ClusterIP, ignore_case = true)]
    pub service_type: ServiceType,

    /// Emit an Ingress APP-ingress for HOST: one rule per host, one certificate for all
    /// (repeatable or comma-separated; `*.example.com` allowed)
    #[arg(long = "host", value_name = "HOST[,HOST]", value_delimiter = ',')]
    pub hosts: Vec<String>,

    /// spec.ingressClassName of the Ingress
    #[arg(long, default_value = "nginx", value_name = "CLASS")]
    pub ingress_class: String,

    /// Secret that holds the certificate for all hosts [default: APP-tls]
    #[arg(long, value_name = "NAME")]
    pub tls_secret: Option<String>,

    /// No TLS section (and so no cert-manager annotation) on the Ingress
    #[arg(long, conflicts_with_all = ["tls_secret", "issuer", "namespaced_issuer"])]
    pub no_tls: bool,

    /// cert-manager ClusterIssuer (annotation cert-manager.io/cluster-issuer)
    #[arg(long, default_value = "letsencrypt-staging", value_name = "NAME")]
    pub issuer: String,

    /// cert-manager Issuer in the Ingress's namespace (cert-manager.io/issuer) instead
    #[arg(long, value_name = "NAME", conflicts_with = "issuer")]
    pub namespaced_issuer: Option<String>,

    /// No cert-manager annotation (the certificate is managed elsewhere)
    #[arg(long, conflicts_with_all = ["issuer", "namespaced_issuer"])]
    pub no_issuer: bool,

    /// Path of the HTTP probes [default with --host: /admin/login/, which every Django
    /// project with the admin answers with 200 without a database query]; they send
    /// `Host: HOST` (the first --host). Without --host they send the pod IP as Host
    /// (Django must allow it); without either they are TCP
    #[arg(long, value_name = "PATH")]
    pub probe_path: Option<String>,

    /// TCP probes (a connect to the port) even with --host
    #[arg(long, conflicts_with = "probe_path")]
    pub tcp_probes: bool,

    /// No readiness and liveness probes
    #[arg(long, conflicts_with_all = ["probe_path", "tcp_probes"])]
    pub no_probes: bool,

    /// Secret (type kubernetes.io/dockerconfigjson) to pull the image with, on the
    /// Deployment's and the Job's pods (repeatable; `secretgen --docker-config` makes one)
    #[arg(long, value_name = "NAME")]
    pub image_pull_secret: Vec<String>,

    /// Rolling update maxUnavailable (N or N%); 0 keeps old pods until new ones are ready
    #[arg(long, default_value = "0", value_name = "N|N%")]
    pub max_unavailable: String,

    /// CPU request (`none` for no request)
    #[arg(long, default_value = "100m", value_name = "QUANTITY")]
    pub cpu_request: String,

    /// Memory request (`none` for no request)
    #[arg(long, default_value = "128Mi", value_name = "QUANTITY")]
    pub memory_request: String,

    /// CPU limit [default: none: a CPU limit throttles gunicorn for no gain]
    #[arg(long, default_value = "none", value_name = "QUANTITY")]
    pub cpu_limit: String,

    /// Memory limit (`none` for no limit)
    #[arg(long, default_value = "512Mi", value_name = "QUANTITY")]
    pub memory_limit: String,

    /// Run as this non-root UID (adds runAsNonRoot; the tutorial's image runs as root)
    #[arg(long, value_name = "UID", value_parser = clap::value_parser!(i64).range(1..=2_147_483_647))]
    pub run_as_user: Option<i64>,

    /// No security context at all
    #[arg(long, conflicts_with = "run_as_user")]
    pub no_security_context: bool,

    /// Emit a Job that runs `python manage.py migrate --noinput` with the app's image and
    /// env, annotated with kapp change rules so that `kapply --wait` applies the
    /// Deployment only once the migration succeeded (a failed one leaves it untouched)
    #[arg(long)]
    pub migrate: bool,

    /// Also run `python manage.py collectstatic --noinput` in the Job, after the migration
    #[arg(long, requires = "migrate")]
    pub collectstatic: bool,

    /// The migration command instead: words split on spaces, or a JSON array (`["sh","-c","..."]`)
    #[arg(long, value_name = "COMMAND", requires = "migrate")]
    pub migrate_command: Option<String>,

    /// Delete a finished Job after this long (ttlSecondsAfterFinished)
    #[arg(
        long,
        default_value = "24h",
        value_name = "DURATION",
        requires = "migrate"
    )]
    pub job_ttl: String,

    /// Retries of a failed Job (backoffLimit)
    #[arg(long, default_value_t = 2, value_name = "N", requires = "migrate",
          value_parser = clap::value_parser!(i32).range(0..))]
    pub job_backoff_limit: i32,

    /// Emit a HorizontalPodAutoscaler (autoscaling/v2) on CPU utilisation [CPU% default 80]
    #[arg(long, value_name = "MIN:MAX[:CPU%]")]
    pub hpa: Option<String>,

    /// Emit a PodDisruptionBudget (minAvailable 1) when more than one replica can run
    #[arg(long)]
    pub pdb: bool,

    /// Namespace of every emitted object [default: the one kubectl/kapply apply to]
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Also emit the Namespace object, first in the stream so that it exists before its objects
    #[arg(long, requires = "namespace")]
    pub emit_namespace: bool,

    /// Allow Secret material from the input stream to be written to a terminal
    #[arg(long)]
    pub show: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    #[value(name = "ClusterIP")]
    ClusterIP,
    #[value(name = "NodePort")]
    NodePort,
    #[value(name = "LoadBalancer")]
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}
