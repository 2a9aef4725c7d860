//! The binary-level tests: one test binary (as ripgrep and fd have), one module per
//! tool, all running the built tools as a user does (pipes, exit codes, stderr).
//! `cargo test --test main kapply::` runs one tool's tests. kubesim's own tests live
//! with it in tests/kubesim/tests.

mod common;

mod certwait;
mod change_rules;
mod cli_contract;
mod corpus;
mod day2;
mod day2_apply;
mod envsplit;
mod kapply;
mod kapply_wait;
mod leaks;
mod lifecycle;
mod manifest_gen;
mod noop;
mod pipeline;
mod releases;
mod secretgen;
mod yaml11;
