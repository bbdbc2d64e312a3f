//! Memory under clients that never read: the server's resident memory growth
//! while they are connected (peak) and after they have closed.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Error};
use crate::target::Target;

const RECORDS: usize = 100;
const RECORD_BYTES: usize = 10_000;
const PIPELINED_READS: usize = 300;
const SLOW_SUBSCRIBERS: usize = 5;
const PUBLICATION_BYTES: usize = 64 * 1024;
const PUBLICATIONS: u64 = 1200;
const PUBLISH_RATE: f64 = 200.0;
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const HOLD: Duration = Duration::from_secs(4);
const SETTLE: Duration = Duration::from_secs(3);

pub struct Outcome {
    pub peak_growth: u64,
    pub growth_after_close: u64,
}

/// Samples RSS until `until`, returning the highest value.
async fn peak_rss(target: &Target, until: Instant) -> u64 {
    let mut peak = target.rss();
    while Instant::now() < until {
        tokio::time::sleep(SAMPLE_EVERY).await;
        peak = peak.max(target.rss());
    }
    peak
}

async fn welcomed(url: &str) -> Result<client::Ws, Error> {
    let mut ws = client::connect(url).await?;
    client::expect_frame(&mut ws, "welcome").await?;
    Ok(ws)
}

/// One client pipelines reads of a 1 MB collection and never reads a reply.
pub async fn pipelined_reads(target: &Target) -> Result<Outcome, Error> {
    let mut seeder = welcomed(&target.url).await?;
    for i in 0..RECORDS {
        let create = json!({"type": "create", "id": format!("c{i}"), "database": "memory",
            "collection": "big", "record": {"s": "r".repeat(RECORD_BYTES)}});
        seeder.send(Message::text(create.to_string())).await?;
        client::expect_frame(&mut seeder, "created").await?;
    }
    drop(seeder);
    tokio::time::sleep(SETTLE).await;
    let before = target.rss();
    let reader = welcomed(&target.url).await?;
    let (mut sink, source) = reader.split();
    let sending = async {
        for i in 0..PIPELINED_READS {
            let read = json!({"type": "read", "id": format!("r{i}"), "database": "memory",
                "collection": "big", "limit": 1000});
            // The server stops reading once its queue is full; a send that
            // cannot complete is part of the scenario, not an error.
            if timeout_at(
                Instant::now() + Duration::from_secs(1),
                sink.send(Message::text(read.to_string())),
            )
            .await
            .is_err()
            {
                break;
            }
        }
    };
    let (_, peak) = tokio::join!(sending, peak_rss(target, Instant::now() + HOLD));
    drop((sink, source));
    tokio::time::sleep(SETTLE).await;
    Ok(Outcome {
        peak_growth: peak.saturating_sub(before),
        growth_after_close: target.rss().saturating_sub(before),
    })
}

/// Subscribers that never read, and a publisher of 64 KiB publications.
pub async fn slow_subscribers(target: &Target) -> Result<Outcome, Error> {
    let before = target.rss();
    let mut subscribers = Vec::new();
    for _ in 0..SLOW_SUBSCRIBERS {
        let mut ws = welcomed(&target.url).await?;
        ws.send(Message::text(
            r#"{"type":"subscribe","id":"s","topic":"memory.slow"}"#,
        ))
        .await?;
        client::expect_frame(&mut ws, "subscribed").await?;
        subscribers.push(ws);
    }
    let (mut sink, mut source) = welcomed(&target.url).await?.split();
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / PUBLISH_RATE);
    let end = start + period * PUBLICATIONS as u32 + HOLD;
    let drain = tokio::spawn(async move {
        let _ = timeout_at(end, async { while source.next().await.is_some() {} }).await;
    });
    let data = "p".repeat(PUBLICATION_BYTES);
    let publishing = async {
        for seq in 0..PUBLICATIONS {
            sleep_until(start + period * seq as u32).await;
            let publish = json!({"type": "publish", "id": format!("p{seq}"), "topic": "memory.slow", "data": data});
            client::send(&mut sink, publish.to_string()).await?;
        }
        Ok::<(), Error>(())
    };
    let (published, peak) = tokio::join!(publishing, peak_rss(target, end));
    published?;
    drain.abort();
    drop(subscribers);
    drop(sink);
    tokio::time::sleep(SETTLE).await;
    Ok(Outcome {
        peak_growth: peak.saturating_sub(before),
        growth_after_close: target.rss().saturating_sub(before),
    })
}
