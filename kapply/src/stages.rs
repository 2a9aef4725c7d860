//! Applying in the stages kapp change rules make ([`crate::groups`]), and with
//! `--wait` waiting for each stage to be ready ([`crate::wait`]) before the next: a
//! Deployment that follows its migration Job is not touched when the Job fails.

use crate::apply::{Outcome, Run};
use crate::discover::InputCrd;
use crate::failure::Failure;
use crate::plan::Item;
use crate::wait::{End, Progress, Watched};
use crate::{diagnose, groups, wait};
use kpipe_core::{ObjectId, Result};
use kube::core::ApiResource;
use serde_json::Value;
use std::collections::HashMap;

/// What applying (and waiting) did.
pub(crate) struct Applied {
    /// In input order.
    pub outcomes: Vec<Outcome>,
    /// How the wait ended, with the objects waited for; None without `--wait`.
    pub waited: Option<(End, Vec<Watched>)>,
}

impl Applied {
    /// The objects waited for, as last seen (status included), by identity.
    pub fn live(&self) -> HashMap<ObjectId, Value> {
        self.waited
            .iter()
            .flat_map(|(_, objects)| objects)
            .map(|o| (o.id.clone(), o.live.clone()))
            .collect()
    }
}

impl Run {
    pub(crate) async fn apply_in_stages(
        &self,
        items: Vec<Item>,
        crds: &[InputCrd],
        lines: bool,
        wait: bool,
    ) -> Result<Applied> {
        let refs: Vec<(&ObjectId, &Value)> = items.iter().map(|i| (&i.id, &i.body)).collect();
        let stage_of = groups::stages(&refs)?;
        let last = stage_of.iter().copied().max().unwrap_or(0);
        let mut stages: Vec<Vec<Item>> = (0..=last).map(|_| Vec::new()).collect();
        for (item, stage) in items.into_iter().zip(stage_of) {
            stages[stage].push(item);
        }
        let wait = wait && !self.dry_run;
        let mut progress = Progress::new();
        let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
        let mut watched: Vec<Watched> = Vec::new();
        let mut end = End::AllReady;
        for items in stages {
            if end == End::Interrupted {
                outcomes.extend(
                    items
                        .iter()
                        .map(|i| (i.position, Outcome::Interrupted { in_flight: false })),
                );
                continue;
            }
            if end != End::AllReady {
                for item in items {
                    let groups = groups::followed(&item.body, &item.id).join(", ");
                    let message = format!(
                        "not applied: it follows change group {groups}, which did not become ready"
                    );
                    let name = crate::report::kubectl_name(&item.id);
                    self.caller.say(&format!("kapply: {name}: {message}\n"));
                    let failure = Failure::Transport {
                        message,
                        transient: false,
                    };
                    outcomes.push((item.position, Outcome::Failed(failure)));
                }
                continue;
            }
            let meta: Vec<(usize, ObjectId, ApiResource)> = {
                let mut m: Vec<_> = items
                    .iter()
                    .map(|i| (i.position, i.id.clone(), i.resolved.resource.clone()))
                    .collect();
                m.sort_by_key(|(position, _, _)| *position);
                m
            };
            let results = self.apply_all(items, crds, lines).await?;
            let mut stage_watched = Vec::new();
            for ((position, id, resource), outcome) in meta.into_iter().zip(results) {
                if wait && let Outcome::Done { object, .. } = &outcome {
                    stage_watched.push(Watched::new(id, resource, object.clone()));
                }
                outcomes.push((position, outcome));
            }
            // After SIGINT/SIGTERM, what was applied is reported at once: the wait
            // stops, and what it did not see ready counts as not ready.
            if wait {
                end = match self.interrupt.received() {
                    Some(_) => End::Interrupted,
                    None => tokio::select! {
                        end = wait::wait(
                            self.caller.client(),
                            &mut stage_watched,
                            self.caller.deadline(),
                            &mut progress,
                        ) => end,
                        _ = self.interrupt.wait() => End::Interrupted,
                    },
                };
                watched.extend(stage_watched);
            }
        }
        progress.clear();
        outcomes.sort_by_key(|(position, _)| *position);
        Ok(Applied {
            outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
            waited: wait.then_some((end, watched)),
        })
    }

    /// Prints why each object waited for is not ready; returns how many are not.
    pub(crate) async fn explain_not_ready(&self, watched: &[Watched]) -> usize {
        let mut count = 0;
        for object in watched
            .iter()
            .filter(|o| !matches!(o.state, crate::ready::State::Ready(_)))
        {
            count += 1;
            let text = diagnose::explain(self.caller.client(), object).await;
            self.caller.say(&format!("kapply: {text}"));
        }
        count
    }
}

/// The closing message of a wait that did not end with everything ready.
pub(crate) fn summary(end: &End, not_ready: usize, total: usize) -> String {
    let objects = if total == 1 { "object" } else { "objects" };
    let what = format!("{not_ready} of {total} {objects} not ready");
    match end {
        End::TimedOut => format!("timed out waiting: {what}"),
        _ => what,
    }
}
