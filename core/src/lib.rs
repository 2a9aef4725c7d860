//! kpipe-core: what every kpipe tool shares.
//!
//! - [`stream`]: reading the multi-document manifest stream, with source positions.
//! - [`yaml`]: writing YAML that YAML 1.1 (Kubernetes) and 1.2 readers agree on.
//! - [`yaml11`]: reading one YAML document as Kubernetes reads it (YAML 1.1, go-yaml v2).
//! - [`object`]: object identity and the API server's name and key rules.
//! - [`error`]: errors as values, messages and exit codes, quiet broken pipes.
//! - [`redact`]: keeping secret values out of messages and terminals.
//! - [`envfile`]: env files (dotenv and docker/kubectl dialects), for envsplit and secretgen.
//! - [`connect`]: kubeconfig and client setup as kubectl does it (feature `cluster`).
//! - [`time`]: durations on the command line.
//! - [`cli`]: argument parsing plus completions and man pages from the same definitions.
//! - [`api`]: which API failures are transient, the one retry policy, deadlines, wording
//!   (feature `cluster`).
//! - [`transport`]: every request bounded by the run's deadline, refusals before the
//!   first answer failed at once, outages told once (feature `cluster`).
//! - [`interrupt`]: SIGINT/SIGTERM caught, so that a tool can stop cleanly (feature
//!   `cluster`).
//! - [`progress`]: lines and terminal spinners while a tool waits (feature `cluster`).

#[cfg(feature = "cluster")]
pub mod api;
pub mod cli;
#[cfg(feature = "cluster")]
pub mod connect;
pub mod envfile;
pub mod error;
#[cfg(feature = "cluster")]
pub mod interrupt;
pub mod object;
#[cfg(feature = "cluster")]
pub mod progress;
pub mod redact;
pub mod stream;
pub mod time;
#[cfg(feature = "cluster")]
pub mod transport;
pub mod yaml;
pub mod yaml11;

#[cfg(feature = "cluster")]
pub use error::run_async;
pub use error::{Error, Result, run, write_stdout};
pub use object::ObjectId;
pub use stream::Document;
