//! kubesim's own tests: one test binary (as the workspace's tests/main.rs), one module
//! per subject. `cargo test -p kubesim --test main controllers::` runs one of them.

#[path = "../../common/mod.rs"]
mod common;
mod support;

mod cli;
mod controllers;
mod faults;
mod fixtures;
mod go_quote;
mod kube_client;
mod kubesim_kubectl;
mod yaml;
