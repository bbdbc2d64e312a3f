//! The bare stack: tokio-tungstenite with its default configuration, one task
//! per connection, a tokio broadcast channel for fan-out and an echo for
//! everything else; each connection writes everything ready before one flush.
//! It understands just enough of the load scenarios' frames (by prefix,
//! without parsing JSON) to stand in for Tidewire, which is what makes its
//! figures the limit of this stack. It pushes each publish as it came; the
//! fan-out scenario pads those to the length of Tidewire's pushes, so that
//! both servers write the same bytes.

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// Matches Tidewire's default outbound queue of 1024 messages.
const BROADCAST_CAPACITY: usize = 1024;

pub async fn run(listen: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening on ws://{}/v1", listener.local_addr()?);
    let (tx, _) = broadcast::channel::<Utf8Bytes>(BROADCAST_CAPACITY);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(stream, tx.clone()));
    }
}

fn is_subscription(text: &str) -> bool {
    text.starts_with(r#"{"type":"subscribe""#) || text.starts_with(r#"{"type":"watch""#)
}

fn is_publication(text: &str) -> bool {
    text.starts_with(r#"{"type":"publish""#) || text.starts_with(r#"{"type":"create""#)
}

async fn serve(stream: TcpStream, tx: broadcast::Sender<Utf8Bytes>) {
    let _ = stream.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let mut subscription: Option<broadcast::Receiver<Utf8Bytes>> = None;
    loop {
        let outgoing = tokio::select! {
            frame = source.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if is_subscription(&text) {
                        subscription = Some(tx.subscribe());
                        Message::text(r#"{"type":"subscribed"}"#)
                    } else if is_publication(&text) {
                        let _ = tx.send(text);
                        Message::text(r#"{"type":"published"}"#)
                    } else {
                        Message::Text(text)
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            pushed = async { subscription.as_mut().expect("guarded").recv().await }, if subscription.is_some() => match pushed {
                Ok(text) => Message::Text(text),
                // A lagging receiver lost messages; the load client counts them as lost.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if send_with_ready(&mut sink, outgoing, subscription.as_mut())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Writes `first` and every push already waiting, then flushes once: what a
/// well-written server on this stack does (a flush per message costs a system
/// call per message).
async fn send_with_ready(
    sink: &mut SplitSink<WebSocketStream<TcpStream>, Message>,
    first: Message,
    subscription: Option<&mut broadcast::Receiver<Utf8Bytes>>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    sink.feed(first).await?;
    if let Some(receiver) = subscription {
        loop {
            match receiver.try_recv() {
                Ok(text) => sink.feed(Message::Text(text)).await?,
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
    }
    sink.flush().await
}
