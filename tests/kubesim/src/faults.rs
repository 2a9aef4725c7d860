//! Fault injection (`--faults SPEC` and [`crate::RunningServer::set_faults`]):
//! failing, resetting, slowing or never answering requests, throttling storms, outages
//! and cutting watches short, so clients' retry, deadline and resume paths can be tested.
//!
//! Timed rules (`storm`, `down`) start with the first request of a client under test
//! after the rules were set, so a test need not race the tool it starts.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One rule of a fault spec.
#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// The next `remaining` requests (of `method`, if given) answer `code`.
    Fail {
        code: u16,
        remaining: u32,
        method: Scope,
    },
    /// The next `remaining` requests get their connection closed without an answer.
    Reset {
        remaining: u32,
        method: Scope,
    },
    /// The next `remaining` requests are served (a write is stored), but their
    /// connection is closed instead of the answer.
    Lost {
        remaining: u32,
        method: Scope,
    },
    /// A fraction of requests answer `code`.
    Rate {
        code: u16,
        probability: f64,
    },
    Latency(Duration),
    /// Every watch stream ends after this many events.
    WatchClose(u32),
    /// The next `remaining` watches that resume from a resourceVersion get 410.
    WatchGone {
        remaining: u32,
    },
    /// Every request (watches too) is accepted and never answered.
    Hang,
    /// Answers are sent one byte per this long.
    Trickle(Duration),
    /// Every request (watches too) answers 429 with `Retry-After: 1` from `start` on,
    /// for `length`: what a real API server's priority and fairness does under load.
    Storm(Window),
    /// Every request (watches too, open ones are cut) has its connection reset from
    /// `start` on, for `length`: an API server restart.
    Down(Window),
    /// From `start` on, for `length`, connections are accepted and nothing answers: a
    /// request waits until the window ends and is served then, open watches send
    /// nothing meanwhile (a stopped process: SIGSTOP, then SIGCONT).
    Freeze(Window),
    /// From `start` on, for `length`, the process is gone: the listener is closed (a
    /// connection is refused) and the connections of clients under test are reset;
    /// then it listens again on the same port with the same state and certificates (a
    /// killed API server that its supervisor starts again).
    Restart(Window),
}

/// Which requests a counted rule is for: `@METHOD` (any path), `@METHOD/PATH` (that
/// method on paths starting with PATH: `403:9@GET/api/v1/namespaces/ns/secrets/db`
/// forbids reading one Secret, as RBAC would; a PATH ending in `?watch` is for the
/// watches of that path, and only them), or every request.
#[derive(Debug, Clone, PartialEq, Default)]
struct Scope {
    method: Option<String>,
    path: Option<String>,
}

impl Scope {
    fn parse(spec: Option<&str>) -> Scope {
        let Some(spec) = spec else {
            return Scope::default();
        };
        let (method, path) = match spec.find('/') {
            Some(at) => (&spec[..at], Some(spec[at..].to_string())),
            None => (spec, None),
        };
        Scope {
            method: Some(method.to_ascii_uppercase()),
            path,
        }
    }

    fn applies(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.path.as_deref().is_none_or(|p| path.starts_with(p))
    }
}

/// A stretch of time, counted from the first request of a client under test.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    start: Duration,
    length: Duration,
}

impl Window {
    fn contains(&self, since_first: Duration) -> bool {
        since_first >= self.start && since_first < self.start + self.length
    }
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Serve,
    Fail(u16),
    Reset,
    Hang,
    /// Serve, then close the connection instead of answering.
    Lost,
    /// Wait (the server is frozen), then ask again.
    Frozen,
}

/// The active fault rules; deterministic (seeded) so test runs repeat.
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    rng: Mutex<StdRng>,
    /// When a client under test first asked anything since the rules were set.
    first_request: Mutex<Option<Instant>>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rules: Mutex::new(Vec::new()),
            rng: Mutex::new(StdRng::seed_from_u64(4)),
            first_request: Mutex::new(None),
        }
    }
}

fn parse_duration(s: &str, rule: &str) -> Result<Duration, String> {
    kpipe_core::time::parse_duration(s).map_err(|e| format!("bad fault rule {rule:?}: {e}"))
}

/// `LENGTH[+START]`: `10s` from the first request on, `5s+1s` one second later.
fn parse_window(s: &str, rule: &str) -> Result<Window, String> {
    let (length, start) = s.split_once('+').unwrap_or((s, "0s"));
    Ok(Window {
        start: parse_duration(start, rule)?,
        length: parse_duration(length, rule)?,
    })
}

fn parse_count(s: &str, rule: &str) -> Result<u32, String> {
    s.parse()
        .map_err(|_| format!("bad fault rule {rule:?}: {s:?} is not a count"))
}

fn parse_code(s: &str, rule: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(code) if (400..600).contains(&code) => Ok(code),
        _ => Err(format!(
            "bad fault rule {rule:?}: {s:?} is not an HTTP error code (400-599)"
        )),
    }
}

fn parse_rule(rule: &str) -> Result<Rule, String> {
    let (body, method) = match rule.split_once('@') {
        Some((b, m)) => (b, Scope::parse(Some(m))),
        None => (rule, Scope::parse(None)),
    };
    let parts: Vec<&str> = body.split(':').collect();
    match parts.as_slice() {
        ["reset", n] => Ok(Rule::Reset {
            remaining: parse_count(n, rule)?,
            method,
        }),
        ["lost", n] => Ok(Rule::Lost {
            remaining: parse_count(n, rule)?,
            method,
        }),
        ["rate", code, p] => {
            let probability: f64 = p
                .parse()
                .map_err(|_| format!("bad fault rule {rule:?}: {p:?} is not a fraction"))?;
            if !(0.0..=1.0).contains(&probability) {
                return Err(format!(
                    "bad fault rule {rule:?}: the fraction must be between 0 and 1"
                ));
            }
            Ok(Rule::Rate {
                code: parse_code(code, rule)?,
                probability,
            })
        }
        ["latency", d] => parse_duration(d, rule).map(Rule::Latency),
        ["hang"] => Ok(Rule::Hang),
        ["trickle", d] => parse_duration(d, rule).map(Rule::Trickle),
        ["storm", w] => parse_window(w, rule).map(Rule::Storm),
        ["down", w] => parse_window(w, rule).map(Rule::Down),
        ["freeze", w] => parse_window(w, rule).map(Rule::Freeze),
        ["restart", w] => parse_window(w, rule).map(Rule::Restart),
        ["watch-close", n] => Ok(Rule::WatchClose(parse_count(n, rule)?)),
        ["watch-gone", n] => Ok(Rule::WatchGone {
            remaining: parse_count(n, rule)?,
        }),
        [code, n] => Ok(Rule::Fail {
            code: parse_code(code, rule)?,
            remaining: parse_count(n, rule)?,
            method,
        }),
        _ => Err(format!(
            "bad fault rule {rule:?}: expected CODE:N[@METHOD[/PATH]], reset:N[@METHOD[/PATH]], lost:N[@METHOD[/PATH]], rate:CODE:P, latency:DURATION, watch-close:N, watch-gone:N, hang, trickle:DURATION, storm:DURATION[+START], down:DURATION[+START], freeze:DURATION[+START] or restart:DURATION[+START]"
        )),
    }
}

impl Faults {
    /// Replaces the rules with those of `spec` (comma-separated; empty clears them).
    pub fn set(&self, spec: &str) -> Result<(), String> {
        let rules = spec
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(parse_rule)
            .collect::<Result<Vec<_>, _>>()?;
        *self.rules.lock().unwrap_or_else(|e| e.into_inner()) = rules;
        *self.first_request.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    /// How long since the first request of a client under test (which this may be).
    fn since_first_request(&self) -> Duration {
        self.first_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now)
            .elapsed()
    }

    /// The fate of any request, watches included, under the hang and timed rules.
    fn timed_verdict(&self) -> Verdict {
        let since = self.since_first_request();
        self.with_rules(|rules| {
            for rule in rules.iter() {
                match rule {
                    Rule::Hang => return Verdict::Hang,
                    Rule::Down(w) | Rule::Restart(w) if w.contains(since) => {
                        return Verdict::Reset;
                    }
                    Rule::Freeze(w) if w.contains(since) => return Verdict::Frozen,
                    Rule::Storm(w) if w.contains(since) => return Verdict::Fail(429),
                    _ => {}
                }
            }
            Verdict::Serve
        })
    }

    /// The fate of a watch request.
    pub fn watch_verdict(&self) -> Verdict {
        self.timed_verdict()
    }

    /// Whether the server is down right now: open watches end.
    pub fn is_down(&self) -> bool {
        self.timed_verdict() == Verdict::Reset
    }

    /// Whether the server is frozen right now: open watches hold their events.
    pub fn is_frozen(&self) -> bool {
        self.timed_verdict() == Verdict::Frozen
    }

    /// Whether a restart rule is set (the listener then checks [`Self::restarting`]).
    pub fn has_restart(&self) -> bool {
        self.with_rules(|rules| rules.iter().any(|r| matches!(r, Rule::Restart(_))))
    }

    /// Whether the process is gone right now. Asking does not start the clock: only a
    /// client's request does.
    pub fn restarting(&self) -> bool {
        let since = *self.first_request.lock().unwrap_or_else(|e| e.into_inner());
        let Some(since) = since.map(|first| first.elapsed()) else {
            return false;
        };
        self.with_rules(|rules| {
            rules
                .iter()
                .any(|r| matches!(r, Rule::Restart(w) if w.contains(since)))
        })
    }

    /// The delay between two bytes of an answer, when answers trickle.
    pub fn trickle(&self) -> Option<Duration> {
        self.with_rules(|rules| {
            rules.iter().find_map(|r| match r {
                Rule::Trickle(d) => Some(*d),
                _ => None,
            })
        })
    }

    fn with_rules<T>(&self, f: impl FnOnce(&mut Vec<Rule>) -> T) -> T {
        f(&mut self.rules.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn latency(&self) -> Duration {
        self.with_rules(|rules| {
            rules
                .iter()
                .map(|r| {
                    if let Rule::Latency(d) = r {
                        *d
                    } else {
                        Duration::ZERO
                    }
                })
                .sum()
        })
    }

    /// Decides the fate of a watch request (`path` is `PATH?watch`): the timed rules,
    /// then the counted failures scoped to watches (`403:9@GET/apis/apps/v1/namespaces/
    /// default/deployments?watch`: RBAC's list without watch). Other counted rules are
    /// for the requests that are no watch.
    pub fn watch_start_verdict(&self, method: &str, path: &str) -> Verdict {
        let timed = self.timed_verdict();
        if timed != Verdict::Serve {
            return timed;
        }
        self.with_rules(|rules| {
            for rule in rules.iter_mut() {
                if let Rule::Fail {
                    code,
                    remaining,
                    method: scope,
                } = rule
                    && *remaining > 0
                    && scope.path.as_deref().is_some_and(|p| p.contains("?watch"))
                    && scope.applies(method, path)
                {
                    *remaining -= 1;
                    return Verdict::Fail(*code);
                }
            }
            Verdict::Serve
        })
    }

    /// Decides the fate of a non-watch request, using up counted rules.
    pub fn verdict(&self, method: &str, path: &str) -> Verdict {
        let timed = self.timed_verdict();
        if timed != Verdict::Serve {
            return timed;
        }
        let applies = |scope: &Scope| scope.applies(method, path);
        let rate = self.with_rules(|rules| {
            for rule in rules.iter_mut() {
                match rule {
                    Rule::Fail {
                        code,
                        remaining,
                        method,
                    } if *remaining > 0 && applies(method) => {
                        *remaining -= 1;
                        return Err(Verdict::Fail(*code));
                    }
                    Rule::Reset { remaining, method } if *remaining > 0 && applies(method) => {
                        *remaining -= 1;
                        return Err(Verdict::Reset);
                    }
                    Rule::Lost { remaining, method } if *remaining > 0 && applies(method) => {
                        *remaining -= 1;
                        return Err(Verdict::Lost);
                    }
                    _ => {}
                }
            }
            Ok(rules.iter().find_map(|r| {
                if let Rule::Rate { code, probability } = r {
                    Some((*code, *probability))
                } else {
                    None
                }
            }))
        });
        match rate {
            Err(verdict) => verdict,
            Ok(Some((code, p)))
                if self
                    .rng
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .random_bool(p) =>
            {
                Verdict::Fail(code)
            }
            Ok(_) => Verdict::Serve,
        }
    }

    /// How many events a watch may send before it is cut (None: no limit).
    pub fn watch_limit(&self) -> Option<u32> {
        self.with_rules(|rules| {
            rules.iter().find_map(|r| {
                if let Rule::WatchClose(n) = r {
                    Some(*n)
                } else {
                    None
                }
            })
        })
    }

    /// Whether this resuming watch is to be answered 410 Gone (uses up the rule).
    pub fn take_watch_gone(&self) -> bool {
        self.with_rules(|rules| {
            rules.iter_mut().any(|r| match r {
                Rule::WatchGone { remaining } if *remaining > 0 => {
                    *remaining -= 1;
                    true
                }
                _ => false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_run_out_and_respect_the_method() {
        let f = Faults::default();
        f.set("503:2@PATCH,reset:1,latency:10ms,watch-close:3")
            .unwrap();
        assert_eq!(f.verdict("GET", "/api"), Verdict::Reset);
        assert_eq!(f.verdict("GET", "/api"), Verdict::Serve);
        assert_eq!(f.verdict("PATCH", "/api"), Verdict::Fail(503));
        assert_eq!(f.verdict("PATCH", "/api"), Verdict::Fail(503));
        assert_eq!(f.verdict("PATCH", "/api"), Verdict::Serve);
        assert_eq!(f.latency(), Duration::from_millis(10));
        assert_eq!(f.watch_limit(), Some(3));
        assert!(!f.take_watch_gone());
    }

    #[test]
    fn a_rule_may_be_for_one_path() {
        let f = Faults::default();
        f.set("403:2@get/api/v1/namespaces/ns/secrets/db").unwrap();
        assert_eq!(
            f.verdict("GET", "/api/v1/namespaces/ns/secrets"),
            Verdict::Serve
        );
        assert_eq!(
            f.verdict("PATCH", "/api/v1/namespaces/ns/secrets/db"),
            Verdict::Serve
        );
        assert_eq!(
            f.verdict("GET", "/api/v1/namespaces/ns/secrets/db"),
            Verdict::Fail(403)
        );
        assert_eq!(
            f.verdict("GET", "/api/v1/namespaces/ns/secrets/db"),
            Verdict::Fail(403)
        );
        assert_eq!(
            f.verdict("GET", "/api/v1/namespaces/ns/secrets/db"),
            Verdict::Serve
        );
    }

    #[test]
    fn a_rule_may_be_for_the_watches_of_a_path_only() {
        let f = Faults::default();
        f.set("403:2@GET/apis/apps/v1/namespaces/ns/deployments?watch,503:1@GET")
            .unwrap();
        let list = "/apis/apps/v1/namespaces/ns/deployments";
        let watch = "/apis/apps/v1/namespaces/ns/deployments?watch";
        assert_eq!(f.verdict("GET", list), Verdict::Fail(503));
        assert_eq!(f.verdict("GET", list), Verdict::Serve);
        assert_eq!(f.watch_start_verdict("GET", watch), Verdict::Fail(403));
        assert_eq!(
            f.watch_start_verdict("GET", "/api/v1/namespaces/ns/pods?watch"),
            Verdict::Serve
        );
        assert_eq!(f.watch_start_verdict("GET", watch), Verdict::Fail(403));
        assert_eq!(f.watch_start_verdict("GET", watch), Verdict::Serve);
    }

    #[test]
    fn bad_specs_are_explained() {
        let f = Faults::default();
        assert!(f.set("700:1").unwrap_err().contains("HTTP error code"));
        assert!(f.set("rate:500:2").unwrap_err().contains("between 0 and 1"));
        assert!(f.set("bogus").is_err());
        f.set("rate:500:1,watch-gone:1").unwrap();
        assert_eq!(f.verdict("GET", "/api"), Verdict::Fail(500));
        assert!(f.take_watch_gone());
        assert!(!f.take_watch_gone());
        assert!(f.set("storm:soon").unwrap_err().contains("storm:soon"));
    }

    #[test]
    fn timed_rules_count_from_the_first_request() {
        let f = Faults::default();
        f.set("storm:200ms,down:200ms+300ms,trickle:10ms").unwrap();
        assert_eq!(f.trickle(), Some(Duration::from_millis(10)));
        std::thread::sleep(Duration::from_millis(250));
        // Nothing asked yet: the storm starts now.
        assert_eq!(f.verdict("GET", "/api"), Verdict::Fail(429));
        assert_eq!(f.watch_verdict(), Verdict::Fail(429));
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(f.verdict("GET", "/api"), Verdict::Serve);
        std::thread::sleep(Duration::from_millis(100));
        assert!(f.is_down());
        assert_eq!(f.verdict("PATCH", "/api"), Verdict::Reset);
        std::thread::sleep(Duration::from_millis(250));
        assert!(!f.is_down());
        f.set("freeze:200ms,restart:200ms+300ms").unwrap();
        assert!(f.has_restart());
        assert!(!f.restarting(), "no request yet: the clock has not started");
        assert_eq!(f.verdict("GET", "/api"), Verdict::Frozen);
        assert!(f.is_frozen() && !f.restarting());
        std::thread::sleep(Duration::from_millis(350));
        assert!(f.restarting());
        assert_eq!(f.verdict("GET", "/api"), Verdict::Reset);
        std::thread::sleep(Duration::from_millis(200));
        assert!(!f.restarting() && !f.is_frozen());
        assert_eq!(f.verdict("GET", "/api"), Verdict::Serve);
        f.set("hang").unwrap();
        assert_eq!(f.verdict("GET", "/api"), Verdict::Hang);
        f.set("lost:1@PATCH").unwrap();
        assert_eq!(f.verdict("GET", "/api"), Verdict::Serve);
        assert_eq!(f.verdict("PATCH", "/api"), Verdict::Lost);
        assert_eq!(f.verdict("PATCH", "/api"), Verdict::Serve);
    }
}
