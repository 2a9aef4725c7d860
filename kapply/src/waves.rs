//! Running the change graph ([`crate::graph`]): wave after wave, the changes of a wave
//! in parallel ([`crate::apply`]). With `--wait`, a change that follows others by a
//! kapp change rule starts only once they are ready ([`crate::wait`]): a Deployment
//! that follows its migration Job is not touched when the Job fails. Then everything
//! applied is waited for.

use crate::apply::{Memory, Run};
use crate::discover::InputCrd;
use crate::failure::Failure;
use crate::graph::{self, Change};
use crate::outcome::Outcome;
use crate::plan::Item;
use crate::wait::{End, Progress, Watched};
use crate::{diagnose, wait};
use kpipe_core::{ObjectId, Result};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

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

impl Run<'_> {
    pub(crate) async fn apply_waves(
        &self,
        items: Vec<Item>,
        crds: &[InputCrd],
        wait: bool,
    ) -> Result<Applied> {
        let crd_groups: HashSet<String> = crds.iter().map(|c| c.group.clone()).collect();
        let schedule = {
            let changes: Vec<Change> = items
                .iter()
                .map(|i| Change {
                    id: &i.id,
                    object: &i.body,
                })
                .collect();
            graph::upserts(&changes, &crd_groups)?
        };
        let wait = wait && !self.dry_run;
        let n = items.len();
        let mut slots: Vec<Option<Item>> = items.into_iter().map(Some).collect();
        let mut outcomes: Vec<(usize, Outcome)> = Vec::with_capacity(n);
        // By index in the input: what was applied, to wait for; whether it was.
        let mut watched: Vec<Option<Watched>> = (0..n).map(|_| None).collect();
        let mut waited = vec![false; n];
        let mut progress = Progress::new();
        let mut end = End::AllReady;
        let mut memory = Memory::default();
        self.reporter.tick_progress();
        let mut read_from = 0;
        for (at, wave) in schedule.waves.iter().enumerate() {
            let mut before: Vec<usize> = wave
                .iter()
                .flat_map(|&i| schedule.ready_before[i].iter().copied())
                .filter(|&p| !waited[p])
                .collect();
            before.sort_unstable();
            before.dedup();
            if wait && end == End::AllReady && !before.is_empty() {
                end = self
                    .wait_for(&before, &mut watched, &mut waited, &mut progress)
                    .await;
            }
            if end == End::Interrupted || self.interrupt.received().is_some() {
                for &i in wave {
                    let position = slots[i].take().expect("once").position;
                    outcomes.push((position, Outcome::Interrupted { in_flight: false }));
                }
                continue;
            }
            if end != End::AllReady {
                for &i in wave {
                    let item = slots[i].take().expect("once");
                    let message = match schedule.follows[i].as_slice() {
                        [] => "not applied: changes it waits for did not become ready".to_owned(),
                        groups => format!(
                            "not applied: it follows change group {}, which did not become ready",
                            groups.join(", ")
                        ),
                    };
                    let name = crate::report::kubectl_name(&item.id);
                    self.reporter.say(&format!("kapply: {name}: {message}\n"));
                    let failure = Failure::NotApplied(message);
                    outcomes.push((item.position, Outcome::Failed(failure)));
                }
                continue;
            }
            // The live objects are read once per stretch of waves between two waits,
            // each stretch as late as it can be.
            if at >= read_from {
                read_from = schedule.waves[at..]
                    .iter()
                    .position(|w| {
                        w.iter()
                            .any(|&i| schedule.ready_before[i].iter().any(|&p| !waited[p]))
                    })
                    .filter(|&k| k > 0 && wait)
                    .map_or(schedule.waves.len(), |k| at + k);
                let stretch: Vec<&Item> = schedule.waves[at..read_from]
                    .iter()
                    .flatten()
                    .filter_map(|&i| slots[i].as_ref())
                    .collect();
                self.read_before(&stretch, &mut memory).await;
            }
            let items: Vec<Item> = wave
                .iter()
                .map(|&i| slots[i].take().expect("once"))
                .collect();
            let index: HashMap<usize, usize> = wave
                .iter()
                .zip(&items)
                .map(|(&i, item)| (item.position, i))
                .collect();
            let mut meta: Vec<(usize, ObjectId, kube::core::ApiResource)> = items
                .iter()
                .map(|i| (i.position, i.id.clone(), i.resolved.resource.clone()))
                .collect();
            meta.sort_by_key(|(position, _, _)| *position);
            let results = self.apply_wave(items, crds, &mut memory).await?;
            for ((position, id, resource), outcome) in meta.into_iter().zip(results) {
                if wait && let Outcome::Done { object, .. } = &outcome {
                    watched[index[&position]] = Some(Watched::new(id, resource, object.clone()));
                }
                outcomes.push((position, outcome));
            }
        }
        self.reporter.end_progress();
        // After SIGINT/SIGTERM, what was applied is reported at once: the wait stops,
        // and what it did not see ready counts as not ready.
        if wait && end == End::AllReady {
            let rest: Vec<usize> = (0..n)
                .filter(|&i| !waited[i] && watched[i].is_some())
                .collect();
            end = self
                .wait_for(&rest, &mut watched, &mut waited, &mut progress)
                .await;
        }
        progress.clear();
        outcomes.sort_by_key(|(position, _)| *position);
        Ok(Applied {
            outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
            waited: wait.then(|| (end, watched.into_iter().flatten().collect())),
        })
    }

    /// Waits until the applied changes `which` are ready (one not applied is not);
    /// SIGINT/SIGTERM ends the wait.
    async fn wait_for(
        &self,
        which: &[usize],
        watched: &mut [Option<Watched>],
        waited: &mut [bool],
        progress: &mut Progress,
    ) -> End {
        if which.iter().any(|&i| watched[i].is_none()) {
            return End::SomeFailed;
        }
        let mut objects: Vec<Watched> = which
            .iter()
            .map(|&i| watched[i].take().expect("checked"))
            .collect();
        let end = match self.interrupt.received() {
            Some(_) => End::Interrupted,
            None => tokio::select! {
                end = wait::wait(
                    self.caller.client(),
                    &mut objects,
                    self.caller.deadline(),
                    progress,
                ) => end,
                _ = self.interrupt.wait() => End::Interrupted,
            },
        };
        for (&i, object) in which.iter().zip(objects) {
            watched[i] = Some(object);
            waited[i] = true;
        }
        end
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
            self.reporter.say(&format!("kapply: {text}"));
        }
        count
    }
}

/// The closing message of a wait that did not end with everything ready.
pub(crate) fn summary(end: &End, not_ready: usize, total: usize) -> String {
    let what = format!(
        "{not_ready} of {} not ready",
        crate::report::counted(total, "object")
    );
    match end {
        End::TimedOut => format!("timed out waiting: {what}"),
        _ => what,
    }
}
