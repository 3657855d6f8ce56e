//! The load generator: a few concurrent senders post batches of events (of
//! every category in `schemas/`, over many sessions, a few percent invalid)
//! to the gateway as the demo client, and behave like a careful client: a
//! request that fails as a whole with a retryable answer (503, 429, a timeout,
//! a refused connection) is sent again with the same body, and events the
//! gateway answered `"failed"` are sent again, until they are accepted or the
//! deadline passes.
//!
//! Every event carries a marker (`data.path` = `/fs/<run>/<n>`), so a row read
//! back, or a reject in `/v1/errors`, is matched to the event it came from.
//! The [`Ledger`] keeps, per event, what the gateway finally answered.
//!
//! Bounded: at most [`LoadPlan::max_events`] events, no new request after
//! [`LoadPlan::run_for`], and no retry after `run_for + retry_for`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eye_contract::Timestamp;
use serde_json::{json, Value};

/// The demo client's write key (deploy/clients.toml).
pub const WRITE_KEY: &str = "eye_demo_write_key";

/// How much load, for how long.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Concurrent senders.
    pub workers: usize,
    /// Most events sent in all.
    pub max_events: usize,
    /// No new request after this.
    pub run_for: Duration,
    /// How long after `run_for` unfinished events are still retried.
    pub retry_for: Duration,
    /// Pause of each sender between two requests.
    pub pause: Duration,
    /// Largest batch (batch sizes are 1..=this).
    pub max_batch: usize,
    /// Invalid events, in percent.
    pub invalid_percent: u32,
    /// Sessions the events are spread over.
    pub sessions: usize,
    /// The impatient client: every request is given up after a few
    /// milliseconds and sent again with the same body (the first may still
    /// be stored).
    pub resend_every_request: bool,
    /// Events named `poison` (category party), in percent, for the
    /// dead-letter scenario.
    pub poison_percent: u32,
    /// Seed of the random batch sizes and contents (printed by the report).
    pub seed: u64,
}

impl Default for LoadPlan {
    fn default() -> Self {
        LoadPlan {
            workers: 4,
            max_events: 12_000,
            run_for: Duration::from_secs(15),
            retry_for: Duration::from_secs(60),
            pause: Duration::from_millis(300),
            max_batch: 40,
            invalid_percent: 3,
            sessions: 200,
            resend_every_request: false,
            poison_percent: 0,
            seed: seed(),
        }
    }
}

fn seed() -> u64 {
    std::env::var("EYE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

/// What the gateway finally said about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not answered yet.
    Pending,
    /// Accepted with this event id.
    Accepted(String),
    /// Rejected with this code.
    Rejected(String),
    /// Never answered definitively before the deadline; the last problem.
    Unconfirmed(String),
}

/// One event sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Its marker (`data.path` and part of every other field's text).
    pub marker: String,
    /// Whether it was built valid (invalid ones must be rejected).
    pub valid: bool,
    /// Whether it is a poison event (valid, but ClickHouse refuses it).
    pub poison: bool,
    /// The answer.
    pub state: State,
}

/// Everything the senders saw.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Every event, by number.
    pub events: Vec<Sent>,
    /// HTTP requests sent (first tries and retries).
    pub requests: u64,
    /// Requests that were retries of an earlier one.
    pub retries: u64,
    /// Answers by kind: the HTTP status, `timeout` or `connect`.
    pub answers: BTreeMap<String, u64>,
    /// When each request that got an answer with at least one accepted event
    /// was answered (for recovery times).
    pub accepted_at: Vec<Instant>,
    /// When each request failed as a whole or had failed events.
    pub failed_at: Vec<Instant>,
    /// Events accepted twice with different ids (must stay empty).
    pub id_conflicts: Vec<String>,
    /// Answers no careful client could handle (e.g. 400 to a valid body).
    pub unexpected: Vec<String>,
}

impl Ledger {
    /// Events in `state` kind: (accepted, rejected, unconfirmed, pending).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for e in &self.events {
            match e.state {
                State::Accepted(_) => c.0 += 1,
                State::Rejected(_) => c.1 += 1,
                State::Unconfirmed(_) => c.2 += 1,
                State::Pending => c.3 += 1,
            }
        }
        c
    }

    /// The first accepted answer after `t`, as a delay from `t`.
    pub fn first_accept_after(&self, t: Instant) -> Option<Duration> {
        self.accepted_at
            .iter()
            .filter(|a| **a >= t)
            .min()
            .map(|a| a.duration_since(t))
    }

    /// `answers` as `202×10, 503×2`.
    pub fn answers_text(&self) -> String {
        self.answers
            .iter()
            .map(|(k, v)| format!("{k}×{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A load in progress.
pub struct Load {
    ledger: Arc<Mutex<Ledger>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// When it started.
    pub started: Instant,
    /// The plan it runs.
    pub plan: LoadPlan,
}

struct Shared {
    plan: LoadPlan,
    url: String,
    run: String,
    next: AtomicUsize,
    stop_at: Instant,
    give_up_at: Instant,
    base_us: i64,
    sessions: Vec<String>,
    http: reqwest::Client,
    ledger: Arc<Mutex<Ledger>>,
}

impl Load {
    /// Starts the senders against the gateway at `gateway_url` (`http://…`).
    pub fn start(gateway_url: &str, plan: LoadPlan) -> Load {
        let started = Instant::now();
        let mut rng = fastrand::Rng::with_seed(plan.seed);
        let sessions = (0..plan.sessions.max(1))
            .map(|_| uuid::Uuid::from_u128(rng.u128(..)).to_string())
            .collect();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let shared = Arc::new(Shared {
            url: format!("{gateway_url}/v1/events"),
            run: format!("{:08x}", rng.u32(..)),
            next: AtomicUsize::new(0),
            stop_at: started + plan.run_for,
            give_up_at: started + plan.run_for + plan.retry_for,
            // An hour ago: every timestamp is in the past, none too old.
            base_us: Timestamp::now().as_micros() - 3_600_000_000,
            sessions,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_else(|e| panic!("HTTP client: {e}")),
            ledger: ledger.clone(),
            plan: plan.clone(),
        });
        let workers = (0..plan.workers.max(1))
            .map(|w| {
                let shared = shared.clone();
                let seed = plan.seed.wrapping_add(w as u64 + 1);
                tokio::spawn(async move { shared.worker(seed).await })
            })
            .collect();
        Load {
            ledger,
            workers,
            started,
            plan,
        }
    }

    /// Events numbered so far.
    pub fn sent(&self) -> usize {
        lock(&self.ledger).events.len()
    }

    /// Events accepted so far.
    pub fn accepted(&self) -> usize {
        lock(&self.ledger).counts().0
    }

    /// Answers so far whose label starts with `prefix` (e.g. `503`).
    pub fn answers(&self, prefix: &str) -> u64 {
        lock(&self.ledger)
            .answers
            .iter()
            .filter(|(label, _)| label.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Waits for the senders to finish (they stop by themselves: no new
    /// request after `run_for`, no retry after `retry_for` more) and returns
    /// the ledger.
    pub async fn finish(self) -> Ledger {
        for worker in self.workers {
            if let Err(error) = worker.await {
                panic!("a load sender failed: {error}");
            }
        }
        let mut ledger = std::mem::take(&mut *lock(&self.ledger));
        for event in &mut ledger.events {
            if event.state == State::Pending {
                event.state = State::Unconfirmed("never answered".to_owned());
            }
        }
        ledger
    }
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    // A sender that panicked while holding it left consistent data.
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// One request's outcome, as far as the client can tell.
enum Answer {
    /// Per-event results (`results` of a 202, 422 or 503).
    Results(u16, Vec<Value>),
    /// A retryable failure of the whole request (its label).
    Retry(String),
    /// Anything else (its label and body).
    Unexpected(String),
}

impl Shared {
    async fn worker(self: Arc<Self>, seed: u64) {
        let mut rng = fastrand::Rng::with_seed(seed);
        while Instant::now() < self.stop_at {
            let n = rng.usize(1..=self.plan.max_batch.max(1));
            let first = self.next.fetch_add(n, Ordering::Relaxed);
            if first >= self.plan.max_events {
                break;
            }
            let n = n.min(self.plan.max_events - first);
            let batch: Vec<(usize, Value)> = {
                let mut ledger = lock(&self.ledger);
                (first..first + n)
                    .map(|i| {
                        let (event, valid, poison) = self.event(i, &mut rng);
                        let marker = self.marker(i);
                        // Senders claim ranges concurrently: fill the gaps.
                        while ledger.events.len() <= i {
                            ledger.events.push(Sent {
                                marker: String::new(),
                                valid: true,
                                poison: false,
                                state: State::Pending,
                            });
                        }
                        ledger.events[i] = Sent {
                            marker,
                            valid,
                            poison,
                            state: State::Pending,
                        };
                        (i, event)
                    })
                    .collect()
            };
            self.send(batch, &mut rng).await;
            tokio::time::sleep(self.plan.pause).await;
        }
    }

    fn marker(&self, i: usize) -> String {
        format!("/fs/{}/{i}", self.run)
    }

    /// Event `i`: valid (one of every category's types) or, a few percent of
    /// the time, invalid in one of several ways.
    fn event(&self, i: usize, rng: &mut fastrand::Rng) -> (Value, bool, bool) {
        let session = &self.sessions[rng.usize(..self.sessions.len())];
        let marker = self.marker(i);
        let ts = Timestamp::from_micros(self.base_us + i as i64 * 997);
        let timestamp = if i.is_multiple_of(2) {
            ts.to_rfc3339()
        } else {
            ts.to_rfc3339()
                .replace('T', " ")
                .trim_end_matches('Z')
                .to_owned()
        };
        let host = format!("h{}.example", i % 7);
        if rng.u32(0..100) < self.plan.poison_percent {
            let event = json!({"session_id": session, "category": "party", "name": "poison",
                "data": {"host": host, "path": marker}, "timestamp": timestamp});
            return (event, true, true);
        }
        let mut event = match i % 4 {
            0 => {
                json!({"session_id": session, "category": "party", "name": format!("App{}", i % 5),
                "data": {"host": host, "path": marker}, "timestamp": timestamp})
            }
            1 => json!({"session_id": session, "category": "page interaction", "name": "pageview",
                "data": {"host": host, "path": marker}, "timestamp": timestamp}),
            2 => json!({"session_id": session, "category": "page interaction", "name": "cta click",
                "data": {"host": host, "path": marker, "element": "chat bubble ✓"}, "timestamp": timestamp}),
            _ => json!({"session_id": session, "category": "form interaction", "name": "submit",
                "data": {"host": host, "path": marker, "form": {"email": format!("u{i}@example.com"), "plan": "pro"}},
                "timestamp": timestamp}),
        };
        if rng.u32(0..100) >= self.plan.invalid_percent {
            return (event, true, false);
        }
        match rng.u32(0..5) {
            0 => event["session_id"] = json!(format!("not-a-uuid-{i}")),
            1 => event["category"] = json!("no such category"),
            2 => event["data"]["unexpected"] = json!(true),
            3 => event["timestamp"] = json!("2999-01-01 00:00:00"),
            _ => {
                if let Some(object) = event.as_object_mut() {
                    object.remove("name");
                }
            }
        }
        (event, false, false)
    }

    /// Sends `batch` until every event is answered or the deadline passes.
    async fn send(&self, batch: Vec<(usize, Value)>, rng: &mut fastrand::Rng) {
        let mut pending = batch;
        let mut pause = Duration::from_millis(100);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let body = if pending.len() == 1 && rng.bool() {
                pending[0].1.clone()
            } else {
                Value::Array(pending.iter().map(|(_, e)| e.clone()).collect())
            };
            let body = serde_json::to_vec(&body).unwrap_or_default();
            let mut answers = Vec::new();
            if self.plan.resend_every_request {
                // Give up on the first try after a few milliseconds (it may
                // still be published), then send the very same body again.
                let impatient = Duration::from_millis(rng.u64(1..30));
                answers.push(self.post(&body, Some(impatient), attempt > 1).await);
                answers.push(self.post(&body, None, true).await);
            } else {
                answers.push(self.post(&body, None, attempt > 1).await);
            }
            let mut settled = vec![false; pending.len()];
            let mut last_problem = String::new();
            for answer in answers {
                match answer {
                    Answer::Results(status, results) => {
                        self.record_results(&pending, &results, &mut settled);
                        if settled.iter().any(|s| !s) {
                            last_problem = format!("{status} with failed events");
                        }
                    }
                    Answer::Retry(label) => last_problem = label,
                    Answer::Unexpected(label) => {
                        let mut ledger = lock(&self.ledger);
                        ledger.unexpected.push(label.clone());
                        for (i, _) in &pending {
                            if ledger.events[*i].state == State::Pending {
                                ledger.events[*i].state = State::Unconfirmed(label.clone());
                            }
                        }
                        return;
                    }
                }
            }
            pending = pending
                .into_iter()
                .zip(settled)
                .filter(|(_, done)| !done)
                .map(|(event, _)| event)
                .collect();
            if pending.is_empty() {
                return;
            }
            lock(&self.ledger).failed_at.push(Instant::now());
            if Instant::now() + pause > self.give_up_at {
                let mut ledger = lock(&self.ledger);
                for (i, _) in &pending {
                    ledger.events[*i].state = State::Unconfirmed(last_problem.clone());
                }
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Applies per-event `results` to the ledger; marks the answered ones.
    fn record_results(&self, pending: &[(usize, Value)], results: &[Value], settled: &mut [bool]) {
        let mut ledger = lock(&self.ledger);
        let mut any_accepted = false;
        for result in results {
            let Some(index) = result["index"].as_u64().map(|i| i as usize) else {
                continue;
            };
            let Some((i, _)) = pending.get(index) else {
                ledger
                    .unexpected
                    .push(format!("result index {index} out of range"));
                continue;
            };
            let state = match result["status"].as_str() {
                Some("accepted") => {
                    any_accepted = true;
                    State::Accepted(result["event_id"].as_str().unwrap_or_default().to_owned())
                }
                Some("rejected") => {
                    State::Rejected(result["code"].as_str().unwrap_or_default().to_owned())
                }
                _ => continue,
            };
            let entry = &mut ledger.events[*i];
            match (&entry.state, &state) {
                (State::Accepted(a), State::Accepted(b)) if a != b => {
                    let conflict = format!("{}: ids {a} and {b}", entry.marker);
                    ledger.id_conflicts.push(conflict);
                }
                (State::Accepted(_), _) => {}
                _ => entry.state = state,
            }
            settled[index] = true;
        }
        if any_accepted {
            ledger.accepted_at.push(Instant::now());
        }
    }

    /// One POST; `timeout` overrides the client's.
    async fn post(&self, body: &[u8], timeout: Option<Duration>, retry: bool) -> Answer {
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(WRITE_KEY)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        {
            let mut ledger = lock(&self.ledger);
            ledger.requests += 1;
            if retry {
                ledger.retries += 1;
            }
        }
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                // The timeout covers the body too: an impatient client may
                // see the status line and give up before the results arrive.
                // It does not know what happened, so it resends.
                let text = match response.text().await {
                    Ok(text) => text,
                    Err(error) => return self.count_answer(read_failure(&error)),
                };
                let parsed: Option<Value> = serde_json::from_str(&text).ok();
                match parsed.as_ref().and_then(|v| v["results"].as_array()) {
                    // A 503 carries results too, but a client treats it as a
                    // failed request and sends the whole body again (its
                    // rejects are recorded on that try: the gateway could not
                    // record them without the broker).
                    Some(results) if matches!(status, 202 | 422) => {
                        Answer::Results(status, results.clone())
                    }
                    _ if matches!(status, 408 | 429 | 500 | 502 | 503 | 504) => {
                        Answer::Retry(retry_label(status, parsed.as_ref()))
                    }
                    _ => Answer::Unexpected(format!("{status}: {text}")),
                }
            }
            Err(error) => read_failure(&error),
        };
        self.count_answer(answer)
    }

    /// Counts `answer` in the ledger by its label and returns it.
    fn count_answer(&self, answer: Answer) -> Answer {
        let label = match &answer {
            Answer::Results(status, _) => status.to_string(),
            Answer::Retry(label) => label.clone(),
            Answer::Unexpected(_) => "unexpected".to_owned(),
        };
        *lock(&self.ledger).answers.entry(label).or_insert(0) += 1;
        answer
    }
}

/// A request that got no complete answer: retried with the same body.
fn read_failure(error: &reqwest::Error) -> Answer {
    let label = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "broken"
    };
    Answer::Retry(label.to_owned())
}

/// `503 stream_full`: the status and the retry code of the first failed event
/// (or of the problem document), so the report tells why requests failed.
fn retry_label(status: u16, body: Option<&Value>) -> String {
    let code = body.and_then(|body| {
        body["results"]
            .as_array()
            .and_then(|results| {
                results
                    .iter()
                    .find(|r| r["status"] == "failed")
                    .and_then(|r| r["code"].as_str())
            })
            .or_else(|| body["code"].as_str())
    });
    match code {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    }
}
