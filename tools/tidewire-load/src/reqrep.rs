//! Request/reply: C connections, each with one `ping` in flight at a time, for
//! a fixed duration. This measures the maximum round-trip rate (closed loop
//! by design); the latency figures it prints are per round trip. With
//! `--payload-bytes` each ping carries that much padding, which the reply
//! echoes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Error};
use crate::target::{Kind, Target};

pub struct Settings {
    pub duration: Duration,
    pub payload_bytes: usize,
}

pub struct Run {
    pub round_trips_per_s: f64,
    pub p99_ms: f64,
}

pub async fn run_once(
    target: &Target,
    connections: usize,
    settings: &Settings,
) -> Result<Run, Error> {
    let conns =
        client::connect_many(&target.url, connections, target.kind == Kind::Tidewire).await?;
    let start = Instant::now();
    let end = start + settings.duration;
    let pad = "x".repeat(settings.payload_bytes);
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|ws| tokio::spawn(ping_until(ws, end, pad.clone())))
        .collect();
    let mut total = 0;
    let mut latencies = client::histogram();
    for task in tasks {
        let (count, histogram) = task.await??;
        total += count;
        latencies.add(&histogram).map_err(|e| e.to_string())?;
    }
    Ok(Run {
        round_trips_per_s: total as f64 / start.elapsed().as_secs_f64(),
        p99_ms: client::ms(&latencies, 0.99),
    })
}

async fn ping_until(
    ws: client::Ws,
    end: Instant,
    pad: String,
) -> Result<(u64, hdrhistogram::Histogram<u64>), Error> {
    let (mut sink, mut source) = ws.split();
    let mut count = 0u64;
    let mut latencies = client::histogram();
    while Instant::now() < end {
        let sent = Instant::now();
        let request = if pad.is_empty() {
            format!(r#"{{"type":"ping","id":"{count}"}}"#)
        } else {
            format!(r#"{{"type":"ping","id":"{count}","payload":{{"pad":"{pad}"}}}}"#)
        };
        sink.send(Message::text(request)).await?;
        loop {
            match timeout_at(end + client::STEP_TIMEOUT, source.next()).await? {
                Some(Ok(Message::Text(text))) if !text.contains("heartbeat") => break,
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => return Err("closed during request/reply".into()),
            }
        }
        latencies.saturating_record(sent.elapsed().as_micros() as u64);
        count += 1;
    }
    Ok((count, latencies))
}
