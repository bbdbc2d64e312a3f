//! Cost of fanning one change event out to many watches.
//!
//! Each iteration is one `create` on a writer connection, timed until every
//! subscriber has read its `change` frame. `fanout/subscribers/1` is the
//! baseline: since an event is serialized once and only spliced into each
//! subscriber's frame, N deliveries should take far less than N times the
//! baseline. Absolute times depend on the machine and its load; read the
//! ratios printed at the end, which come from this run alone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tidewire_server::{Config, Server, ServerHandle};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SUBSCRIBERS: [usize; 3] = [1, 8, 64];

/// Bounds every wait, so a broken server fails the run instead of hanging it.
const WAIT: Duration = Duration::from_secs(5);

const DATABASE: &str = "bench";
const COLLECTION: &str = "events";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server with `n` watches on one collection and a writer connection.
struct Fanout {
    server: ServerHandle,
    writer: Ws,
    subscribers: Vec<Ws>,
    next_record: u64,
    /// The time of every timed iteration, warm-up included.
    times: Vec<Duration>,
}

fn config() -> Config {
    Config {
        // Thousands of creates a second would trip the default rate limit.
        rate_limit: None,
        // A heartbeat inside a timed iteration would be noise.
        heartbeat_interval: Duration::from_secs(3600),
        close_grace: Duration::from_millis(200),
        ..Config::default()
    }
}

async fn connect(url: &str) -> Ws {
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake within the timeout")
        .expect("upgrade succeeds");
    let welcome = next_text(&mut ws).await;
    assert!(
        welcome.starts_with(r#"{"type":"welcome""#),
        "first message: {welcome}"
    );
    ws
}

async fn send(ws: &mut Ws, message: &Value) {
    tokio::time::timeout(WAIT, ws.send(Message::text(message.to_string())))
        .await
        .expect("send within the timeout")
        .expect("send succeeds");
}

/// The next text frame other than a heartbeat, unparsed: parsing 64 frames on
/// the client side would weigh on the measurement more than the server does.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message within the timeout")
            .expect("the connection is open")
            .expect("the frame is readable");
        match frame {
            Message::Text(text) if !text.starts_with(r#"{"type":"heartbeat""#) => {
                return text.to_string()
            }
            Message::Close(frame) => panic!("unexpected close: {frame:?}"),
            _ => {}
        }
    }
}

async fn reply(ws: &mut Ws, reply_type: &str) -> Value {
    let reply: Value = serde_json::from_str(&next_text(ws).await).expect("server sends JSON");
    assert_eq!(reply["type"], reply_type, "reply: {reply}");
    reply
}

/// A record of a realistic size, so that serializing the event is a real part
/// of the cost that fan-out shares.
fn record(n: u64) -> Value {
    json!({
        "_id": format!("r{n}"),
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "age": 36,
        "country": "UK",
        "tags": ["vip", "beta", "newsletter"],
        "address": {"city": "London", "zip": "NW1"},
        "orders": [{"sku": "A1", "qty": 2}, {"sku": "B7", "qty": 1}],
        "sequence": n,
    })
}

impl Fanout {
    async fn start(n: usize) -> Fanout {
        let server = Server::start(config()).await.expect("server starts");
        let url = server.ws_url();
        let mut subscribers = Vec::with_capacity(n);
        for _ in 0..n {
            let mut ws = connect(&url).await;
            let watch =
                json!({"type": "watch", "id": "w", "database": DATABASE, "collection": COLLECTION});
            send(&mut ws, &watch).await;
            reply(&mut ws, "watching").await;
            subscribers.push(ws);
        }
        let writer = connect(&url).await;
        Fanout {
            server,
            writer,
            subscribers,
            next_record: 0,
            times: Vec::new(),
        }
    }

    async fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            total += self.create_once().await;
        }
        total
    }

    /// One create, timed until the last subscriber has its change; the
    /// writer's `created` reply is read outside the timed span.
    async fn create_once(&mut self) -> Duration {
        self.next_record += 1;
        let n = self.next_record;
        let create = json!({
            "type": "create",
            "id": format!("c{n}"),
            "database": DATABASE,
            "collection": COLLECTION,
            "record": record(n),
        })
        .to_string();
        let key = format!(r#""document_key":{{"_id":"r{n}"}}"#);
        let started = Instant::now();
        tokio::time::timeout(WAIT, self.writer.send(Message::text(create)))
            .await
            .expect("send within the timeout")
            .expect("send succeeds");
        for ws in &mut self.subscribers {
            let change = next_text(ws).await;
            assert!(
                change.starts_with(r#"{"type":"change""#) && change.contains(&key),
                "expected the change of r{n}: {change}"
            );
        }
        let elapsed = started.elapsed();
        let created = reply(&mut self.writer, "created").await;
        assert_eq!(created["id"], format!("c{n}"), "reply: {created}");
        self.times.push(elapsed);
        elapsed
    }

    async fn stop(self) -> Vec<Duration> {
        drop(self.writer);
        drop(self.subscribers);
        self.server.shutdown().await;
        self.times
    }
}

fn median(times: &mut [Duration]) -> Option<Duration> {
    times.sort_unstable();
    times.get(times.len() / 2).copied()
}

fn bench(c: &mut Criterion, runtime: &Runtime) -> BTreeMap<usize, Vec<Duration>> {
    let mut times = BTreeMap::new();
    let mut group = c.benchmark_group("fanout");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    for n in SUBSCRIBERS {
        let mut fanout = runtime.block_on(Fanout::start(n));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("subscribers", n), |b| {
            b.iter_custom(|iters| runtime.block_on(fanout.run(iters)))
        });
        times.insert(n, runtime.block_on(fanout.stop()));
    }
    group.finish();
    times
}

/// Medians rather than means: another process on the machine produces long
/// outliers, and the median of thousands of iterations ignores them.
fn report(mut times: BTreeMap<usize, Vec<Duration>>) {
    let medians: BTreeMap<usize, Duration> = times
        .iter_mut()
        .filter_map(|(&n, times)| median(times).map(|m| (n, m)))
        .collect();
    let Some(&one) = medians.get(&1) else {
        println!("fan-out ratios need the 1-subscriber baseline in the same run");
        return;
    };
    println!("\nfan-out relative to one subscriber (medians of this run):");
    for (&n, &median) in &medians {
        if n == 1 {
            continue;
        }
        let ratio = median.as_secs_f64() / one.as_secs_f64();
        println!(
            "  {n} subscribers: {n} deliveries in {ratio:.1}x the time of one \
             ({per:.3} of one per delivery, {samples} iterations)",
            per = ratio / n as f64,
            samples = times[&n].len(),
        );
    }
}

fn main() {
    // One thread runs the server and every client, so the time of an
    // iteration is all the work it causes rather than how well it spreads
    // over the cores that the machine's other load leaves free.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut criterion = Criterion::default().configure_from_args();
    let times = bench(&mut criterion, &runtime);
    criterion.final_summary();
    report(times);
}
