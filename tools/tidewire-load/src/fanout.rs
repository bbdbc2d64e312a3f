//! Fan-out: one publisher, N subscribers, open-loop publishing at a fixed rate.
//! Latency is measured from each publication's scheduled send time, so a
//! server (or publisher) that falls behind is charged for the whole delay
//! (no coordinated omission).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Error};
use crate::target::{Kind, Target};

/// What subscribers follow and what the publisher writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Channel {
    Topics,
    Watch,
}

impl Channel {
    fn label(self) -> &'static str {
        match self {
            Channel::Topics => "topics",
            Channel::Watch => "watch",
        }
    }
}

/// How long after the last send deliveries may still arrive.
const DRAIN: Duration = Duration::from_secs(3);
const START_DELAY: Duration = Duration::from_millis(200);
/// Publications at the start of a run whose deliveries are counted (none may
/// be lost) but whose latency is not recorded: the first pushes to thousands
/// of fresh connections meet cold caches and first allocations on both
/// servers, which would otherwise be most of the p99 of a short run.
const WARMUP: Duration = Duration::from_millis(500);

/// When each publication is due.
#[derive(Clone, Copy)]
struct Schedule {
    start: Instant,
    period: Duration,
    /// Publications in the run, the warm-up included.
    count: u64,
    /// Publications (the first ones) whose latency is not recorded.
    warmup: u64,
}

impl Schedule {
    fn at(&self, seq: u64) -> Instant {
        self.start + self.period * seq as u32
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub channel: Channel,
    pub subscribers: usize,
    pub duration: Duration,
    pub payload_bytes: usize,
    /// The p99 a rate must stay under to count as sustained.
    pub p99_limit_ms: f64,
    /// Count the servers' user-space instructions with `perf stat`.
    pub count_instructions: bool,
    /// Pad the baseline's pushes to the length of Tidewire's (see [`tidewire_push_bytes`]).
    pub match_push_length: bool,
}

#[derive(Clone, Debug)]
pub struct Run {
    pub expected: u64,
    pub delivered: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu: Duration,
    /// User-space instructions the server executed while publishing and delivering.
    pub instructions: Option<u64>,
    p99_limit_ms: f64,
}

impl Run {
    pub fn passed(&self) -> bool {
        self.delivered == self.expected && self.p99_ms < self.p99_limit_ms
    }

    pub fn cpu_per_delivery_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.delivered.max(1) as f64
    }

    pub fn instructions_per_delivery(&self) -> Option<f64> {
        self.instructions
            .map(|count| count as f64 / self.delivered.max(1) as f64)
    }
}

fn subscribe_frame(channel: Channel, run: u64) -> String {
    match channel {
        Channel::Topics => format!(r#"{{"type":"subscribe","id":"s","topic":"load.r{run}"}}"#),
        Channel::Watch => {
            format!(r#"{{"type":"watch","id":"w","database":"load","collection":"r{run}"}}"#)
        }
    }
}

fn publish_frame(channel: Channel, run: u64, seq: u64, pad: &str) -> String {
    match channel {
        Channel::Topics => format!(
            r#"{{"type":"publish","id":"p{seq}","topic":"load.r{run}","data":{{"seq":{seq},"pad":"{pad}"}}}}"#
        ),
        Channel::Watch => format!(
            r#"{{"type":"create","id":"c{seq}","database":"load","collection":"r{run}","record":{{"seq":{seq},"pad":"{pad}"}}}}"#
        ),
    }
}

/// The padding in the payload of a run's publishes: `payload_bytes` long, or
/// longer so that the first publish of the run is `frame_bytes` long.
fn publish_pad(channel: Channel, run: u64, payload_bytes: usize, frame_bytes: usize) -> String {
    let unpadded = publish_frame(channel, run, 0, &"x".repeat(payload_bytes)).len();
    "x".repeat(payload_bytes + frame_bytes.saturating_sub(unpadded))
}

/// The length of the push Tidewire sends its subscribers for one publish of
/// this scenario. The baseline forwards each publish as it came, so its
/// publishes are padded to this length: both servers then write the same
/// bytes per delivery, and the ratio compares the two stacks rather than the
/// protocol's members (positions, ids, times) against a bare echo.
async fn tidewire_push_bytes(target: &Target, settings: &Settings) -> Result<usize, Error> {
    // Run numbers start at 1, so the probe's topic or collection is its own.
    const PROBE_RUN: u64 = 0;
    let mut conns = client::connect_many(&target.url, 2, true)
        .await?
        .into_iter();
    let (mut publisher, _publisher_source) = conns.next().expect("publisher").split();
    let (mut sink, mut source) = conns.next().expect("subscriber").split();
    client::send(&mut sink, subscribe_frame(settings.channel, PROBE_RUN)).await?;
    client::expect_frame(&mut source, subscribed_type(settings.channel, target.kind)).await?;
    let pad = "x".repeat(settings.payload_bytes);
    client::send(
        &mut publisher,
        publish_frame(settings.channel, PROBE_RUN, 0, &pad),
    )
    .await?;
    let push = client::expect_frame(&mut source, push_type(settings.channel)).await?;
    Ok(push.len())
}

fn push_type(channel: Channel) -> &'static str {
    match channel {
        Channel::Topics => "publication",
        Channel::Watch => "change",
    }
}

fn subscribed_type(channel: Channel, kind: Kind) -> &'static str {
    match (channel, kind) {
        (Channel::Watch, Kind::Tidewire) => "watching",
        _ => "subscribed",
    }
}

/// One run at `rate` publications per second.
///
/// Publishes are padded to `frame_bytes` (see [`tidewire_push_bytes`]).
async fn run_once(
    target: &Target,
    settings: &Settings,
    rate: f64,
    run: u64,
    frame_bytes: usize,
) -> Result<Run, Error> {
    let welcome = target.kind == Kind::Tidewire;
    let warmup = (rate * WARMUP.as_secs_f64()).ceil() as u64;
    let count = warmup + ((rate * settings.duration.as_secs_f64()).ceil() as u64).max(3);
    let period = Duration::from_secs_f64(1.0 / rate);
    let conns = client::connect_many(&target.url, settings.subscribers + 1, welcome).await?;
    let mut conns = conns.into_iter();
    let (mut publisher_sink, mut publisher_source) = conns.next().expect("publisher").split();

    let subscribe = subscribe_frame(settings.channel, run);
    let reply = subscribed_type(settings.channel, target.kind);
    let mut ready = Vec::with_capacity(settings.subscribers);
    for ws in conns {
        let subscribe = subscribe.clone();
        ready.push(tokio::spawn(async move {
            let (mut sink, mut source) = ws.split();
            client::send(&mut sink, subscribe).await?;
            client::expect_frame(&mut source, reply).await?;
            Ok::<_, Error>((sink, source))
        }));
    }
    let mut subscribers = Vec::with_capacity(ready.len());
    for task in ready {
        subscribers.push(task.await??);
    }

    let schedule = Schedule {
        start: Instant::now() + START_DELAY,
        period,
        count,
        warmup,
    };
    let deadline = schedule.at(count) + DRAIN;
    let latencies = Arc::new(Mutex::new(client::histogram()));
    let readers: Vec<_> = subscribers
        .into_iter()
        .map(|(sink, source)| {
            tokio::spawn(receive(source, sink, schedule, deadline, latencies.clone()))
        })
        .collect();
    let drain_replies = tokio::spawn(async move {
        let _ = timeout_at(deadline, async {
            while publisher_source.next().await.is_some() {}
        })
        .await;
    });

    let counting = settings
        .count_instructions
        .then(|| target.count_instructions())
        .flatten();
    let cpu_before = target.cpu_time();
    let pad = publish_pad(settings.channel, run, settings.payload_bytes, frame_bytes);
    for seq in 0..count {
        sleep_until(schedule.at(seq)).await;
        client::send(
            &mut publisher_sink,
            publish_frame(settings.channel, run, seq, &pad),
        )
        .await?;
    }
    let mut delivered = 0;
    for reader in readers {
        delivered += reader.await?;
    }
    let cpu = target.cpu_time().saturating_sub(cpu_before);
    let instructions = counting.and_then(|counting| counting.stop());
    drain_replies.abort();
    let latencies = latencies.lock().expect("not poisoned");
    Ok(Run {
        expected: count * settings.subscribers as u64,
        delivered,
        p50_ms: client::ms(&latencies, 0.5),
        p99_ms: client::ms(&latencies, 0.99),
        cpu,
        instructions,
        p99_limit_ms: settings.p99_limit_ms,
    })
}

/// Counts a subscriber's deliveries until it has them all or the deadline
/// passes, recording the latency of each one after the warm-up. One timer
/// per subscriber and one shared histogram: with thousands of subscribers on
/// the tool's one core, a timer per message and a histogram per subscriber
/// (~140 KiB each, touched as it fills) were a large part of the tool's own
/// time per delivery, and that delay was charged to the server.
async fn receive(
    mut source: client::Source,
    _sink: client::Sink,
    schedule: Schedule,
    deadline: Instant,
    latencies: Arc<Mutex<Histogram<u64>>>,
) -> u64 {
    let mut received = 0;
    let _ = timeout_at(deadline, async {
        while received < schedule.count {
            let Some(Ok(Message::Text(text))) = source.next().await else {
                return;
            };
            let Some(seq) = client::seq_of(&text) else {
                continue;
            };
            received += 1;
            if seq < schedule.warmup {
                continue;
            }
            let latency = Instant::now().saturating_duration_since(schedule.at(seq));
            latencies
                .lock()
                .expect("not poisoned")
                .saturating_record(latency.as_micros() as u64);
        }
    })
    .await;
    received
}

/// The highest rate each server sustained, found by doubling from `start_rate`
/// up to `cap` and then bisecting (geometrically) `refine` times. Runs on the
/// two servers alternate so that both see the same machine conditions.
pub struct Search {
    pub start_rate: f64,
    pub cap: f64,
    pub refine: u32,
}

pub struct Outcome {
    /// Highest sustained rate per server (Tidewire, baseline); 0 when even the start rate failed.
    pub max_rate: [f64; 2],
    /// CPU microseconds per delivery at the highest ladder rate both sustained.
    pub cpu_per_delivery_us: Option<[f64; 2]>,
    /// User-space instructions per delivery at that rate, when counted.
    pub instructions_per_delivery: Option<[f64; 2]>,
}

pub async fn search(
    targets: &[Target; 2],
    settings: &Settings,
    search: &Search,
    next_run: &mut u64,
) -> Result<Outcome, Error> {
    let mut passed: [Option<f64>; 2] = [None, None];
    let mut failed: [Option<f64>; 2] = [None, None];
    let mut common_cpu: Option<[f64; 2]> = None;
    let mut common_instructions: Option<[f64; 2]> = None;
    let tidewire = targets
        .iter()
        .find(|target| target.kind == Kind::Tidewire)
        .expect("both servers run");
    let tidewire_push = if settings.match_push_length {
        let bytes = tidewire_push_bytes(tidewire, settings).await?;
        println!("  baseline publishes padded to {bytes} bytes, the length of Tidewire's push");
        bytes
    } else {
        0
    };
    let frame_bytes = |target: &Target| match target.kind {
        Kind::Tidewire => 0,
        Kind::Baseline => tidewire_push,
    };
    let mut rate = search.start_rate;
    while rate <= search.cap && failed.iter().any(Option::is_none) {
        let mut both = [None, None];
        let mut both_instructions = [None, None];
        for (i, target) in targets.iter().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            let run = measure(target, settings, rate, next_run, frame_bytes(target)).await?;
            if run.passed() {
                passed[i] = Some(rate);
                both[i] = Some(run.cpu_per_delivery_us());
                both_instructions[i] = run.instructions_per_delivery();
            } else {
                failed[i] = Some(rate);
            }
        }
        if let [Some(a), Some(b)] = both {
            common_cpu = Some([a, b]);
            common_instructions = match both_instructions {
                [Some(a), Some(b)] => Some([a, b]),
                _ => None,
            };
        }
        rate *= 2.0;
    }
    for _ in 0..search.refine {
        for (i, target) in targets.iter().enumerate() {
            let (Some(low), Some(high)) = (passed[i], failed[i]) else {
                continue;
            };
            let mid = (low * high).sqrt();
            let run = measure(target, settings, mid, next_run, frame_bytes(target)).await?;
            if run.passed() {
                passed[i] = Some(mid);
            } else {
                failed[i] = Some(mid);
            }
        }
    }
    Ok(Outcome {
        max_rate: passed.map(|p| p.unwrap_or(0.0)),
        cpu_per_delivery_us: common_cpu,
        instructions_per_delivery: common_instructions,
    })
}

async fn measure(
    target: &Target,
    settings: &Settings,
    rate: f64,
    next_run: &mut u64,
    frame_bytes: usize,
) -> Result<Run, Error> {
    *next_run += 1;
    let run = run_once(target, settings, rate, *next_run, frame_bytes).await?;
    println!(
        "  {:8} {:6} N={:<5} rate={:>8.1}/s delivered={}/{} p50={:.2}ms p99={:.2}ms cpu/delivery={:.2}us{} {}",
        target.kind.label(),
        settings.channel.label(),
        settings.subscribers,
        rate,
        run.delivered,
        run.expected,
        run.p50_ms,
        run.p99_ms,
        run.cpu_per_delivery_us(),
        run.instructions_per_delivery()
            .map(|count| format!(" instructions/delivery={count:.0}"))
            .unwrap_or_default(),
        if run.passed() { "ok" } else { "FAIL" },
    );
    // Let closed connections finish on the server before the next run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_publish_has_the_pushed_length_and_its_sequence() {
        for channel in [Channel::Topics, Channel::Watch] {
            let padded = publish_frame(channel, 3, 0, &publish_pad(channel, 3, 2, 418));
            assert_eq!(padded.len(), 418, "{padded}");
            assert_eq!(client::seq_of(&padded), Some(0));
            serde_json::from_str::<serde_json::Value>(&padded).expect("still JSON");
            assert_eq!(publish_pad(channel, 3, 2, 10), "xx");
        }
    }
}
