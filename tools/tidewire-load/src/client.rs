//! WebSocket client helpers shared by the scenarios. Every wait is bounded.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type Sink = SplitSink<Ws, Message>;
pub type Source = SplitStream<Ws>;

pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections opened at once; more would overflow the listen backlog.
const CONNECT_PARALLELISM: usize = 256;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Small client buffers: the tool holds up to tens of thousands of connections.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20))
}

pub async fn connect(url: &str) -> Result<Ws, Error> {
    let (ws, _) = timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(client_config()), true),
    )
    .await??;
    Ok(ws)
}

/// Opens `count` connections, each waiting for the server's first frame when
/// `welcome` is set (Tidewire greets, the baseline does not).
pub async fn connect_many(url: &str, count: usize, welcome: bool) -> Result<Vec<Ws>, Error> {
    let permits = Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let url = url.to_string();
            let permits = permits.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await?;
                let mut ws = connect(&url).await?;
                if welcome {
                    expect_frame(&mut ws, "welcome").await?;
                }
                Ok::<Ws, Error>(ws)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(count);
    for task in tasks {
        out.push(task.await??);
    }
    Ok(out)
}

/// Reads frames until one whose `type` is `kind`, skipping others.
pub async fn expect_frame<S>(source: &mut S, kind: &str) -> Result<String, Error>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let needle = format!(r#""type":"{kind}""#);
    timeout(STEP_TIMEOUT, async {
        loop {
            match source.next().await {
                Some(Ok(Message::Text(text))) if text.contains(&needle) => {
                    return Ok(text.to_string())
                }
                Some(Ok(Message::Text(text))) if text.contains(r#""type":"error""#) => {
                    return Err(format!("expected {kind}, got {text}").into())
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => return Err(format!("closed while waiting for {kind}").into()),
            }
        }
    })
    .await?
}

pub async fn send(sink: &mut Sink, text: String) -> Result<(), Error> {
    timeout(STEP_TIMEOUT, sink.send(Message::text(text))).await??;
    Ok(())
}

/// A latency histogram in microseconds, up to one minute.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

pub fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

/// The number after `"seq":` in a frame, found without parsing the JSON.
pub fn seq_of(text: &str) -> Option<u64> {
    let at = text.find(r#""seq":"#)? + 6;
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_is_read_from_either_server_s_frame() {
        let tidewire =
            r#"{"type":"publication","subscription":"s1","topic":"t","data":{"seq":42,"pad":"x"}}"#;
        assert_eq!(seq_of(tidewire), Some(42));
        assert_eq!(seq_of(r#"{"type":"publish","data":{"seq":7}}"#), Some(7));
        assert_eq!(seq_of(r#"{"type":"pong"}"#), None);
    }
}
