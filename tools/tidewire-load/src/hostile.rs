//! Hostile requests against one client's pings: one connection pings at a
//! fixed rate (open loop, latency from the scheduled time) while others send
//! expensive requests: a `$like` pattern of 20,000 characters against a
//! 100 kB string, a `$or` of 20,000 branches, and 100 kB creates into a
//! collection a pathological filter watches. The figure is that client's
//! ping p99 under attack against its p99 with the server otherwise idle.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Error};
use crate::target::Target;

const PING_RATE: f64 = 200.0;
const BIG_STRING_BYTES: usize = 100_000;
const PATTERN_REPEATS: usize = 10_000;
const OR_BRANCHES: usize = 20_000;
const SMALL_RECORDS: usize = 1000;

pub struct Outcome {
    pub idle_p99_ms: f64,
    pub hostile_p99_ms: f64,
    /// Reply type (or error code) of each hostile request, with counts.
    pub replies: BTreeMap<String, u64>,
}

fn hostile_like() -> serde_json::Value {
    json!({"s": {"$like": format!("{}b", "%a".repeat(PATTERN_REPEATS))}})
}

fn hostile_or() -> serde_json::Value {
    let branches: Vec<_> = (0..OR_BRANCHES)
        .map(|i| json!({"n": -(i as i64) - 1}))
        .collect();
    json!({"$or": branches})
}

async fn request(ws: &mut client::Ws, frame: String) -> Result<String, Error> {
    use futures_util::SinkExt;
    ws.send(Message::text(frame)).await?;
    let until = Instant::now() + client::STEP_TIMEOUT;
    loop {
        match timeout_at(until, ws.next()).await? {
            Some(Ok(Message::Text(text))) if !text.contains(r#""type":"heartbeat""#) => {
                return Ok(text.to_string())
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err.into()),
            None => return Err("closed".into()),
        }
    }
}

fn describe(reply: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(reply).unwrap_or_default();
    match value["type"].as_str() {
        Some("error") => format!("error {}", value["error"]["code"].as_str().unwrap_or("?")),
        Some(kind) => kind.to_string(),
        None => "unreadable".into(),
    }
}

async fn seed(url: &str) -> Result<(), Error> {
    let mut ws = client::connect(url).await?;
    client::expect_frame(&mut ws, "welcome").await?;
    let big = json!({"type": "create", "id": "big", "database": "hostile", "collection": "big",
        "record": {"_id": "big", "s": "a".repeat(BIG_STRING_BYTES)}});
    request(&mut ws, big.to_string()).await?;
    for i in 0..SMALL_RECORDS {
        let small = json!({"type": "create", "id": format!("m{i}"), "database": "hostile",
            "collection": "many", "record": {"n": i}});
        request(&mut ws, small.to_string()).await?;
    }
    Ok(())
}

/// Pings at `PING_RATE` until `end`, returning the latency histogram.
async fn ping(url: &str, end: Instant) -> Result<hdrhistogram::Histogram<u64>, Error> {
    let mut ws = client::connect(url).await?;
    client::expect_frame(&mut ws, "welcome").await?;
    let (mut sink, mut source) = ws.split();
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / PING_RATE);
    let count = ((end - start).as_secs_f64() * PING_RATE) as u64;
    let reader = tokio::spawn(async move {
        let mut latencies = client::histogram();
        let mut received = 0;
        while received < count {
            let Ok(Some(Ok(Message::Text(text)))) =
                timeout_at(end + client::STEP_TIMEOUT, source.next()).await
            else {
                break;
            };
            let Some(seq) = client::seq_of(&text) else {
                continue;
            };
            let late = Instant::now().saturating_duration_since(start + period * seq as u32);
            latencies.saturating_record(late.as_micros() as u64);
            received += 1;
        }
        latencies
    });
    for seq in 0..count {
        sleep_until(start + period * seq as u32).await;
        let frame = format!(r#"{{"type":"ping","id":"p{seq}","payload":{{"seq":{seq}}}}}"#);
        client::send(&mut sink, frame).await?;
    }
    Ok(reader.await?)
}

/// Sends one kind of hostile request over and over until `end`. The frame is
/// serialized once: the tool's time goes to sending, not to building requests,
/// and the ping client shares the tool's thread.
async fn attack(
    url: String,
    end: Instant,
    frame: serde_json::Value,
    replies: Arc<Mutex<BTreeMap<String, u64>>>,
) -> Result<(), Error> {
    let mut ws = client::connect(&url).await?;
    client::expect_frame(&mut ws, "welcome").await?;
    let frame = frame.to_string();
    while Instant::now() < end {
        let reply = request(&mut ws, frame.clone()).await?;
        *replies
            .lock()
            .expect("not poisoned")
            .entry(describe(&reply))
            .or_default() += 1;
    }
    Ok(())
}

/// A watch with the hostile pattern, and another client's creates that it must filter.
async fn watch_and_create(
    url: String,
    end: Instant,
    replies: Arc<Mutex<BTreeMap<String, u64>>>,
) -> Result<(), Error> {
    let mut watcher = client::connect(&url).await?;
    client::expect_frame(&mut watcher, "welcome").await?;
    let watch = json!({"type": "watch", "id": "w", "database": "hostile", "collection": "watched",
        "filter": hostile_like()});
    let reply = request(&mut watcher, watch.to_string()).await?;
    *replies
        .lock()
        .expect("not poisoned")
        .entry(format!("watch: {}", describe(&reply)))
        .or_default() += 1;
    let mut creator = client::connect(&url).await?;
    client::expect_frame(&mut creator, "welcome").await?;
    let record = json!({"s": "a".repeat(BIG_STRING_BYTES)}).to_string();
    let mut i = 0;
    while Instant::now() < end {
        i += 1;
        let create = format!(
            r#"{{"type":"create","id":"c{i}","database":"hostile","collection":"watched","record":{record}}}"#
        );
        let reply = request(&mut creator, create).await?;
        *replies
            .lock()
            .expect("not poisoned")
            .entry(format!("create: {}", describe(&reply)))
            .or_default() += 1;
    }
    drop(watcher);
    Ok(())
}

pub async fn run(target: &Target, duration: Duration) -> Result<Outcome, Error> {
    seed(&target.url).await?;
    let idle = ping(&target.url, Instant::now() + duration).await?;
    let replies = Arc::new(Mutex::new(BTreeMap::new()));
    let end = Instant::now() + duration;
    let read = |collection: &str, filter: serde_json::Value| {
        json!({"type": "read", "id": "h", "database": "hostile", "collection": collection,
            "filter": filter, "limit": 1})
    };
    let attackers = vec![
        tokio::spawn(attack(
            target.url.clone(),
            end,
            read("big", hostile_like()),
            replies.clone(),
        )),
        tokio::spawn(attack(
            target.url.clone(),
            end,
            read("many", hostile_or()),
            replies.clone(),
        )),
        tokio::spawn(watch_and_create(target.url.clone(), end, replies.clone())),
    ];
    let hostile = ping(&target.url, end).await?;
    for attacker in attackers {
        attacker.await??;
    }
    let replies = replies.lock().expect("not poisoned").clone();
    Ok(Outcome {
        idle_p99_ms: client::ms(&idle, 0.99),
        hostile_p99_ms: client::ms(&hostile, 0.99),
        replies,
    })
}
