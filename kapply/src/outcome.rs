//! What applying did to each object: what the waves pass on, the report tells and the
//! verdict counts.

use crate::failure::Failure;
use serde_json::Value;
use std::fmt;

/// What applying did to an object, decided from the live object before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Configured,
    Unchanged,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Configured => "configured",
            Change::Unchanged => "unchanged",
        })
    }
}

/// What happened to one object.
pub(crate) enum Outcome {
    Done {
        change: Change,
        object: Value,
        diff: String,
    },
    /// Not checkable in a dry run (its namespace or CRD comes with this input).
    Skipped(String),
    Failed(Failure),
    /// Not started, or cut short in flight, because SIGINT/SIGTERM came.
    Interrupted {
        in_flight: bool,
    },
}
