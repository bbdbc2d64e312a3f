//! The durable server (`--data-dir`): acknowledged writes and resume tokens
//! survive SIGKILL, and journal retention answers `history_lost` beyond it.
//! These tests run the built binary so that a crash is a real process kill.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(10);
const DB: &str = "crash";
const COLL: &str = "items";

/// The server binary, on a data directory or in memory.
struct Spawned {
    child: Child,
    url: String,
    // Held so the server's stdout stays open for as long as it runs.
    _stdout: BufReader<ChildStdout>,
}

impl Spawned {
    async fn start(dir: &Path, extra: &[&str]) -> Spawned {
        let mut args = vec!["--data-dir".as_ref(), dir.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        Spawned::start_with(&args).await
    }

    fn spawn(args: &[&std::ffi::OsStr]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_tidewire-server"))
            .args(["--listen", "127.0.0.1:0", "--rate-messages", "0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the server binary starts")
    }

    /// Starts the server on `dir` and SIGKILLs it after `delay`, whether or
    /// not it has finished opening (and recovering) the data directory.
    async fn kill_while_starting(dir: &Path, delay: Duration) {
        let mut child = Spawned::spawn(&["--data-dir".as_ref(), dir.as_os_str()]);
        tokio::time::sleep(delay).await;
        sigkill(&mut child).await;
    }

    async fn start_with(args: &[&std::ffi::OsStr]) -> Spawned {
        Spawned::listening(Spawned::spawn(args)).await
    }

    /// Waits for a spawned server to print the address it listens on.
    async fn listening(mut child: Child) -> Spawned {
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        tokio::time::timeout(WAIT, stdout.read_line(&mut line))
            .await
            .expect("the server prints its address in time")
            .expect("stdout is readable");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Spawned {
            child,
            url,
            _stdout: stdout,
        }
    }

    /// SIGKILL: no shutdown code runs, nothing is flushed.
    async fn kill(mut self) {
        sigkill(&mut self.child).await;
    }
}

async fn sigkill(child: &mut Child) {
    child.start_kill().expect("the server can be killed");
    tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the killed server exits in time")
        .expect("the server's exit status is readable");
}

/// The connection was lost (the server died); anything else is a test failure.
#[derive(Debug)]
struct Lost;

/// A client that reports a lost connection instead of panicking, since the
/// server is killed under it.
struct Peer {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Push types passed over like heartbeats, for a peer that causes pushes
    /// it does not look at.
    passed_over: &'static [&'static str],
}

impl Peer {
    async fn connect(url: &str) -> Peer {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("handshake in time")
            .expect("upgrade succeeds");
        let mut peer = Peer {
            ws,
            next_id: 0,
            passed_over: &[],
        };
        let welcome = peer.next().await.expect("welcome before any kill");
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        peer
    }

    /// The next message other than a heartbeat; `Lost` once the connection is gone.
    async fn next(&mut self) -> Result<Value, Lost> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message or the end of the connection in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("server sends JSON");
                    let kind = value["type"].as_str().unwrap_or_default();
                    if kind != "heartbeat" && !self.passed_over.contains(&kind) {
                        return Ok(value);
                    }
                }
                Some(Ok(Message::Close(frame))) => panic!("unexpected close: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(Lost),
            }
        }
    }

    /// Sends a request and returns its reply; this peer gets no pushes.
    async fn request(&mut self, mut message: Value) -> Result<Value, Lost> {
        self.next_id += 1;
        let id = format!("q{}", self.next_id);
        message["id"] = json!(id);
        match tokio::time::timeout(WAIT, self.ws.send(Message::text(message.to_string()))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Lost),
            Err(_) => panic!("send did not finish in time"),
        }
        let reply = self.next().await?;
        assert_eq!(reply["id"], json!(id), "a reply to {message}, got {reply}");
        Ok(reply)
    }

    async fn watch(&mut self, resume_after: Option<&str>) -> Result<Value, Lost> {
        let mut watch = json!({"type": "watch", "database": DB, "collection": COLL});
        if let Some(token) = resume_after {
            watch["resume_after"] = json!(token);
        }
        self.request(watch).await
    }

    /// Every message of `room`'s history, oldest first, a page at a time.
    async fn room_history(&mut self, room: &str) -> Vec<Value> {
        let mut messages: Vec<Value> = Vec::new();
        loop {
            let mut history = json!({"type": "history", "room": room, "limit": 500});
            if let Some(oldest) = messages.first() {
                history["before"] = oldest["message_id"].clone();
            }
            let reply = self.request(history).await.expect("the server is up");
            assert_eq!(reply["type"], "history_page", "{reply}");
            let mut page = reply["messages"].as_array().unwrap().clone();
            page.append(&mut messages);
            messages = page;
            if reply["has_more"] != true {
                return messages;
            }
        }
    }

    /// Every record of the collection, a page at a time.
    async fn read_all(&mut self) -> Vec<Value> {
        let mut records = Vec::new();
        loop {
            let reply = self
                .request(json!({
                    "type": "read", "database": DB, "collection": COLL,
                    "offset": records.len(), "limit": 500,
                }))
                .await
                .expect("the server is up");
            assert_eq!(reply["type"], "records", "{reply}");
            let page = reply["records"].as_array().unwrap();
            records.extend(page.iter().cloned());
            if page.is_empty() || records.len() as u64 >= reply["total"].as_u64().unwrap() {
                return records;
            }
        }
    }
}

/// One write of the crash test's writer, as the subscriber must see it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Create { id: String, v: u64 },
    Update { id: String, v: u64 },
    Delete { id: String },
}

impl Op {
    fn request(&self) -> Value {
        match self {
            Op::Create { id, v } => json!({
                "type": "create", "database": DB, "collection": COLL,
                "record": {"_id": id, "v": v},
            }),
            Op::Update { id, v } => json!({
                "type": "update", "database": DB, "collection": COLL,
                "record_id": id, "set": {"v": v},
            }),
            Op::Delete { id } => json!({
                "type": "delete", "database": DB, "collection": COLL, "record_id": id,
            }),
        }
    }

    fn reply_type(&self) -> &'static str {
        match self {
            Op::Create { .. } => "created",
            Op::Update { .. } => "updated",
            Op::Delete { .. } => "deleted",
        }
    }

    /// Reads the change event a watch received for this kind of write.
    fn from_event(event: &Value) -> Op {
        let id = event["document_key"]["_id"].as_str().unwrap().to_string();
        match event["operation_type"].as_str().unwrap() {
            "insert" => Op::Create {
                id,
                v: event["full_document"]["v"].as_u64().unwrap(),
            },
            "update" => Op::Update {
                id,
                v: event["update_description"]["updated_fields"]["v"]
                    .as_u64()
                    .unwrap(),
            },
            "delete" => Op::Delete { id },
            other => panic!("unexpected operation {other}: {event}"),
        }
    }

    /// Whether this write, sent but not acknowledged before a kill, took
    /// effect: with a single writer and unique values the records tell.
    fn applied(&self, records: &[Value]) -> bool {
        let find = |id: &str| records.iter().find(|r| r["_id"] == id);
        match self {
            Op::Create { id, .. } => find(id).is_some(),
            Op::Update { id, v } => find(id).is_some_and(|r| r["v"] == *v),
            Op::Delete { id } => find(id).is_none(),
        }
    }
}

/// The writer's side: what it has committed and what it is about to write.
struct Writer {
    rng: fastrand::Rng,
    next_value: u64,
    next_record: u64,
    /// Records that exist (by the committed writes), with their value.
    live: Vec<(String, u64)>,
    /// Every write known to be committed, in commit order.
    committed: Vec<Op>,
    /// A write sent when the server was killed, whose fate the next start tells.
    in_flight: Option<Op>,
}

impl Writer {
    fn next_op(&mut self) -> Op {
        self.next_value += 1;
        let v = self.next_value;
        let roll = self.rng.u32(0..10);
        if self.live.is_empty() || roll < 5 {
            self.next_record += 1;
            Op::Create {
                id: format!("r{}", self.next_record),
                v,
            }
        } else {
            let (id, _) = &self.live[self.rng.usize(0..self.live.len())];
            if roll < 9 {
                Op::Update { id: id.clone(), v }
            } else {
                Op::Delete { id: id.clone() }
            }
        }
    }

    fn commit(&mut self, op: Op) {
        match &op {
            Op::Create { id, v } => self.live.push((id.clone(), *v)),
            Op::Update { id, v } => {
                let record = self.live.iter_mut().find(|(live, _)| live == id).unwrap();
                record.1 = *v;
            }
            Op::Delete { id } => self.live.retain(|(live, _)| live != id),
        }
        self.committed.push(op);
    }

    /// Writes until the connection is lost or `max` writes are acknowledged.
    async fn run(&mut self, peer: &mut Peer, max: usize) {
        for _ in 0..max {
            let op = self.next_op();
            self.in_flight = Some(op.clone());
            let Ok(reply) = peer.request(op.request()).await else {
                return;
            };
            assert_eq!(reply["type"], op.reply_type(), "{op:?}: {reply}");
            self.in_flight = None;
            self.commit(op);
        }
    }
}

/// The subscriber's side: every change received across restarts, and the
/// token it resumes from.
struct Subscriber {
    seen: Vec<Op>,
    last_token: String,
}

impl Subscriber {
    async fn run(&mut self, peer: &mut Peer) {
        while let Ok(message) = peer.next().await {
            assert_eq!(message["type"], "change", "{message}");
            self.seen.push(Op::from_event(&message["event"]));
            self.last_token = message["event"]["resume_token"]
                .as_str()
                .unwrap()
                .to_string();
        }
    }

    /// Reads changes until `count` have been seen in all, then checks that no more arrive.
    async fn catch_up(&mut self, peer: &mut Peer, count: usize) {
        while self.seen.len() < count {
            let message = peer.next().await.expect("the server is up");
            assert_eq!(message["type"], "change", "{message}");
            self.seen.push(Op::from_event(&message["event"]));
        }
        let extra = tokio::time::timeout(Duration::from_millis(300), peer.next()).await;
        assert!(
            extra.is_err(),
            "a change beyond the committed writes: {extra:?}"
        );
    }
}

fn seed() -> u64 {
    match std::env::var("TIDEWIRE_CRASH_SEED") {
        Ok(seed) => seed.parse().expect("TIDEWIRE_CRASH_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

#[tokio::test]
async fn acknowledged_writes_and_resume_tokens_survive_sigkill() {
    const KILLS: usize = 6;
    const MAX_WRITES_PER_RUN: usize = 1000;
    let seed = seed();
    println!("crash seed {seed} (replay with TIDEWIRE_CRASH_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();

    let mut writer = Writer {
        rng: fastrand::Rng::with_seed(rng.u64(..)),
        next_value: 0,
        next_record: 0,
        live: Vec::new(),
        committed: Vec::new(),
        in_flight: None,
    };
    let server = Spawned::start(dir.path(), &[]).await;
    let mut peer = Peer::connect(&server.url).await;
    let watching = peer.watch(None).await.unwrap();
    assert_eq!(watching["type"], "watching", "{watching}");
    let mut subscriber = Subscriber {
        seen: Vec::new(),
        last_token: watching["resume_token"].as_str().unwrap().to_string(),
    };
    let mut server = Some((server, peer));
    let mut kills = 0;
    let mut startup_kills = 0;
    for _ in 0..KILLS {
        let (running, mut sub_peer) = server.take().unwrap();
        let mut write_peer = Peer::connect(&running.url).await;
        let kill_after = Duration::from_millis(rng.u64(20..400));
        let killer = async {
            tokio::time::sleep(kill_after).await;
            running.kill().await;
        };
        tokio::join!(
            killer,
            writer.run(&mut write_peer, MAX_WRITES_PER_RUN),
            subscriber.run(&mut sub_peer),
        );
        kills += 1;
        println!(
            "kill {kills} after {kill_after:?}: {} writes acknowledged so far, {} changes seen",
            writer.committed.len(),
            subscriber.seen.len()
        );

        if rng.bool() {
            let delay = Duration::from_millis(rng.u64(0..40));
            Spawned::kill_while_starting(dir.path(), delay).await;
            startup_kills += 1;
            println!("killed a restart {delay:?} after spawning it");
        }
        let restarted = Spawned::start(dir.path(), &[]).await;
        // Resume first, so the check covers replay and live changes both.
        let mut sub_peer = Peer::connect(&restarted.url).await;
        let watching = sub_peer.watch(Some(&subscriber.last_token)).await.unwrap();
        assert_eq!(watching["type"], "watching", "{watching}");
        assert_eq!(watching["resumed"], true, "{watching}");
        let mut check = Peer::connect(&restarted.url).await;
        if let Some(op) = writer.in_flight.take() {
            if op.applied(&check.read_all().await) {
                writer.commit(op);
            }
        }
        server = Some((restarted, sub_peer));
    }

    let (running, mut sub_peer) = server.take().unwrap();
    subscriber
        .catch_up(&mut sub_peer, writer.committed.len())
        .await;
    assert_eq!(
        subscriber.seen, writer.committed,
        "the subscriber sees every committed write exactly once, in commit order"
    );
    let mut check = Peer::connect(&running.url).await;
    let mut stored: Vec<(String, u64)> = check
        .read_all()
        .await
        .iter()
        .map(|r| {
            (
                r["_id"].as_str().unwrap().to_string(),
                r["v"].as_u64().unwrap(),
            )
        })
        .collect();
    stored.sort();
    let mut expected = writer.live.clone();
    expected.sort();
    assert_eq!(stored, expected, "every acknowledged write is stored");
    assert!(
        writer.committed.len() > kills,
        "writes happened between the kills: {}",
        writer.committed.len()
    );
    println!(
        "survived {kills} kills while writing and {startup_kills} while starting: \
         {} writes committed, {} records live",
        writer.committed.len(),
        expected.len()
    );
    running.kill().await;
}

/// Creates `count` records and returns the resume token of each insert, as a watch saw them.
async fn insert_and_collect_tokens(url: &str, first: usize, count: usize) -> Vec<String> {
    let mut sub = Peer::connect(url).await;
    let watching = sub.watch(None).await.unwrap();
    assert_eq!(watching["type"], "watching", "{watching}");
    let mut writer = Peer::connect(url).await;
    for n in first..first + count {
        let reply = writer
            .request(
                Op::Create {
                    id: format!("n{n}"),
                    v: n as u64,
                }
                .request(),
            )
            .await
            .unwrap();
        assert_eq!(reply["type"], "created", "{reply}");
    }
    let mut tokens = Vec::new();
    for n in first..first + count {
        let change = sub.next().await.unwrap();
        assert_eq!(
            change["event"]["document_key"]["_id"],
            format!("n{n}"),
            "{change}"
        );
        tokens.push(
            change["event"]["resume_token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    tokens
}

/// Resumes from `token` and returns the ids of the replayed inserts, or the error code.
async fn resume(url: &str, token: &str, expect: usize) -> Result<Vec<String>, String> {
    let mut sub = Peer::connect(url).await;
    let reply = sub.watch(Some(token)).await.unwrap();
    if reply["type"] == "error" {
        return Err(reply["error"]["code"].as_str().unwrap().to_string());
    }
    assert_eq!(reply["resumed"], true, "{reply}");
    let mut ids = Vec::new();
    for _ in 0..expect {
        let change = sub.next().await.unwrap();
        ids.push(
            change["event"]["document_key"]["_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(extra.is_err(), "more replayed than expected: {extra:?}");
    Ok(ids)
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("n{n}")).collect()
}

#[tokio::test]
async fn journal_retention_by_count_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let retention = ["--journal-retention", "5"];
    let server = Spawned::start(dir.path(), &retention).await;
    // Positions 1..=12; the journal keeps 8..=12.
    let tokens = insert_and_collect_tokens(&server.url, 1, 12).await;
    let aged_out = &tokens[1]; // position 2: position 3 is gone
    let oldest_resumable = &tokens[6]; // position 7: replays 8..=12
    assert_eq!(
        resume(&server.url, aged_out, 0).await,
        Err("history_lost".into())
    );
    assert_eq!(
        resume(&server.url, oldest_resumable, 5).await,
        Ok(ids(8..13))
    );
    server.kill().await;

    let server = Spawned::start(dir.path(), &retention).await;
    assert_eq!(
        resume(&server.url, aged_out, 0).await,
        Err("history_lost".into())
    );
    assert_eq!(
        resume(&server.url, oldest_resumable, 5).await,
        Ok(ids(8..13))
    );
    assert_eq!(resume(&server.url, &tokens[11], 0).await, Ok(vec![]));
    // Positions continue after the restart: 13 drops 8, so resuming needs position 8 or later.
    let more = insert_and_collect_tokens(&server.url, 13, 1).await;
    assert_eq!(
        resume(&server.url, oldest_resumable, 0).await,
        Err("history_lost".into())
    );
    assert_eq!(resume(&server.url, &tokens[7], 5).await, Ok(ids(9..14)));
    assert_eq!(resume(&server.url, &more[0], 0).await, Ok(vec![]));
    server.kill().await;
}

#[tokio::test]
async fn journal_retention_by_age_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let max_age = ["--journal-max-age-ms", "3000"];
    let server = Spawned::start(dir.path(), &max_age).await;
    let old = insert_and_collect_tokens(&server.url, 1, 3).await;
    assert_eq!(resume(&server.url, &old[0], 2).await, Ok(ids(2..4)));
    // Past the age bound; the restart drops the aged events from the directory.
    tokio::time::sleep(Duration::from_millis(3300)).await;
    server.kill().await;

    let server = Spawned::start(dir.path(), &max_age).await;
    let fresh = insert_and_collect_tokens(&server.url, 4, 1).await;
    assert_eq!(
        resume(&server.url, &old[0], 0).await,
        Err("history_lost".into()),
        "the changes after the token aged out"
    );
    // Nothing after the last old change has aged out: it still resumes.
    assert_eq!(resume(&server.url, &old[2], 1).await, Ok(ids(4..5)));
    assert_eq!(resume(&server.url, &fresh[0], 0).await, Ok(vec![]));
    server.kill().await;
}

#[tokio::test]
async fn an_in_memory_restart_starts_a_new_epoch() {
    let server = Spawned::start_with(&[]).await;
    let tokens = insert_and_collect_tokens(&server.url, 1, 2).await;
    assert_eq!(resume(&server.url, &tokens[0], 1).await, Ok(ids(2..3)));
    server.kill().await;

    let server = Spawned::start_with(&[]).await;
    assert_eq!(
        resume(&server.url, &tokens[0], 0).await,
        Err("history_lost".into())
    );
    let mut check = Peer::connect(&server.url).await;
    assert!(check.read_all().await.is_empty());
    server.kill().await;
}

#[tokio::test]
async fn room_history_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let bound = ["--room-history", "2"];
    let server = Spawned::start(dir.path(), &bound).await;
    let mut peer = Peer::connect(&server.url).await;
    let joined = peer
        .request(json!({"type": "join", "room": "lobby"}))
        .await
        .unwrap();
    assert_eq!(joined["type"], "joined", "{joined}");
    let mut posted = Vec::new();
    for n in 1..=3 {
        let reply = peer
            .request(json!({"type": "post", "room": "lobby", "body": {"n": n}}))
            .await
            .unwrap();
        assert_eq!(reply["type"], "posted", "{reply}");
        let push = peer.next().await.unwrap();
        assert_eq!(push["type"], "room_message", "{push}");
        posted.push(reply);
    }
    server.kill().await;

    let server = Spawned::start(dir.path(), &bound).await;
    let mut peer = Peer::connect(&server.url).await;
    peer.request(json!({"type": "join", "room": "lobby"}))
        .await
        .unwrap();
    let page = peer
        .request(json!({"type": "history", "room": "lobby", "limit": 10}))
        .await
        .unwrap();
    assert_eq!(page["type"], "history_page", "{page}");
    assert_eq!(page["has_more"], false, "{page}");
    let kept: Vec<(Value, Value, Value)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["message_id"].clone(),
                m["sent_at"].clone(),
                m["body"].clone(),
            )
        })
        .collect();
    let expected: Vec<(Value, Value, Value)> = posted[1..]
        .iter()
        .zip([2, 3])
        .map(|(p, n)| {
            (
                p["message_id"].clone(),
                p["sent_at"].clone(),
                json!({"n": n}),
            )
        })
        .collect();
    assert_eq!(kept, expected, "the two most recent messages, as posted");
    let next = peer
        .request(json!({"type": "post", "room": "lobby", "body": {"n": 4}}))
        .await
        .unwrap();
    assert!(
        next["message_id"].as_str().unwrap() > posted[2]["message_id"].as_str().unwrap(),
        "message ids keep increasing across the restart: {next}"
    );
    server.kill().await;
}

#[tokio::test]
async fn the_data_dir_and_age_bound_are_flags_and_environment_variables() {
    let help = Command::new(env!("CARGO_BIN_EXE_tidewire-server"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--data-dir",
        "TIDEWIRE_DATA_DIR",
        "--journal-max-age-ms",
        "TIDEWIRE_JOURNAL_MAX_AGE_MS",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }

    let dir = tempfile::tempdir().unwrap();
    let from_env = || async {
        let child = Command::new(env!("CARGO_BIN_EXE_tidewire-server"))
            .args(["--listen", "127.0.0.1:0"])
            .env("TIDEWIRE_DATA_DIR", dir.path())
            .env("TIDEWIRE_JOURNAL_MAX_AGE_MS", "600000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Spawned::listening(child).await
    };
    let server = from_env().await;
    let tokens = insert_and_collect_tokens(&server.url, 1, 2).await;
    server.kill().await;
    let server = from_env().await;
    assert_eq!(resume(&server.url, &tokens[0], 1).await, Ok(ids(2..3)));
    let mut check = Peer::connect(&server.url).await;
    assert_eq!(check.read_all().await.len(), 2);
    server.kill().await;
}

#[tokio::test]
async fn a_view_resumes_across_sigkill_with_its_labels_and_pre_images() {
    let dir = tempfile::tempdir().unwrap();
    let view = |resume_after: Option<&str>| {
        let mut watch = json!({
            "type": "watch", "database": DB, "collection": COLL,
            "filter": {"full_document.status": "active"}, "view": true,
        });
        if let Some(token) = resume_after {
            watch["resume_after"] = json!(token);
        }
        watch
    };
    let server = Spawned::start(dir.path(), &[]).await;
    let mut writer = Peer::connect(&server.url).await;
    writer
        .request(json!({"type": "create", "database": DB, "collection": COLL, "record": {"_id": "a", "status": "active"}}))
        .await
        .unwrap();
    let mut watcher = Peer::connect(&server.url).await;
    let watching = watcher.request(view(None)).await.unwrap();
    assert_eq!(watching["type"], "watching", "{watching}");
    let token = watching["resume_token"].as_str().unwrap().to_string();
    for request in [
        json!({"type": "update", "database": DB, "collection": COLL, "record_id": "a", "set": {"status": "idle"}}),
        json!({"type": "create", "database": DB, "collection": COLL, "record": {"_id": "b", "status": "active"}}),
        json!({"type": "delete", "database": DB, "collection": COLL, "record_id": "b"}),
        json!({"type": "delete", "database": DB, "collection": COLL, "record_id": "a"}),
    ] {
        let reply = writer.request(request).await.unwrap();
        assert_ne!(reply["type"], "error", "{reply}");
    }
    let live: Vec<Value> = {
        let mut events = Vec::new();
        for _ in 0..3 {
            events.push(watcher.next().await.unwrap()["event"].clone());
        }
        events
    };
    server.kill().await;

    let server = Spawned::start(dir.path(), &[]).await;
    let mut watcher = Peer::connect(&server.url).await;
    let watching = watcher.request(view(Some(&token))).await.unwrap();
    assert_eq!(watching["resumed"], true, "{watching}");
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(watcher.next().await.unwrap()["event"].clone());
    }
    assert_eq!(replayed, live, "the replay carries what the live view did");
    let summary: Vec<(Value, Value, Value, Value)> = replayed
        .iter()
        .map(|e| {
            (
                e["document_key"]["_id"].clone(),
                e["operation_type"].clone(),
                e["view"].clone(),
                e["full_document_before_change"]["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!("a"), json!("update"), json!("leave"), json!("active")),
            (json!("b"), json!("insert"), json!("enter"), Value::Null),
            (json!("b"), json!("delete"), json!("leave"), json!("active")),
        ],
        "the delete of a, outside the view, is not replayed"
    );
    let ping = watcher.request(json!({"type": "ping"})).await.unwrap();
    assert_eq!(ping["type"], "pong", "nothing else was replayed: {ping}");
    server.kill().await;
}

/// A write of one of several clients that retries what was not acknowledged.
#[derive(Debug, Clone)]
enum KeyedOp {
    /// A record without `_id`: applied twice, it would be stored twice.
    Create { seq: u64 },
    /// One of the client's records: applied twice, it would answer `not_found`.
    Delete { seq: u64, id: String },
    /// A message to the client's room: applied twice, it would be kept twice.
    Post { seq: u64 },
}

/// A client whose every write carries an idempotency key and which, after a
/// restart, sends its unacknowledged write again with the same key.
struct KeyedWriter {
    name: String,
    rng: fastrand::Rng,
    next_seq: u64,
    /// The client's records by the acknowledged writes: (seq, _id).
    live: Vec<(u64, String)>,
    acknowledged: usize,
    in_flight: Option<KeyedOp>,
    /// The client's acknowledged posts: (seq, message_id).
    posted: Vec<(u64, String)>,
}

impl KeyedWriter {
    fn request(&self, op: &KeyedOp) -> Value {
        match op {
            KeyedOp::Create { seq } => json!({
                "type": "create", "database": DB, "collection": COLL,
                "record": {"writer": self.name, "seq": seq},
                "idempotency_key": format!("{}-create-{seq}", self.name),
            }),
            KeyedOp::Delete { seq, id } => json!({
                "type": "delete", "database": DB, "collection": COLL, "record_id": id,
                "idempotency_key": format!("{}-delete-{seq}", self.name),
            }),
            KeyedOp::Post { seq } => json!({
                "type": "post", "room": self.room(),
                "body": {"writer": self.name, "seq": seq},
                "idempotency_key": format!("{}-post-{seq}", self.name),
            }),
        }
    }

    /// The room only this client posts to and is a member of, so that the
    /// only pushes its connection gets are its own room messages.
    fn room(&self) -> String {
        format!("crash-{}", self.name)
    }

    /// Joins the client's room on a new connection; `Lost` when the server died first.
    async fn join(&self, peer: &mut Peer) -> Result<(), Lost> {
        peer.passed_over = &["room_message"];
        let joined = peer
            .request(json!({"type": "join", "room": self.room()}))
            .await?;
        assert_eq!(joined["type"], "joined", "{joined}");
        Ok(())
    }

    fn next_op(&mut self) -> KeyedOp {
        let roll = self.rng.u32(0..10);
        if roll < 3 {
            self.next_seq += 1;
            KeyedOp::Post { seq: self.next_seq }
        } else if self.live.is_empty() || roll < 8 {
            self.next_seq += 1;
            KeyedOp::Create { seq: self.next_seq }
        } else {
            let (seq, id) = self.live[self.rng.usize(0..self.live.len())].clone();
            KeyedOp::Delete { seq, id }
        }
    }

    /// Records the outcome of `op` from its (first or repeated) reply.
    fn acknowledge(&mut self, op: &KeyedOp, reply: &Value) {
        match op {
            KeyedOp::Create { seq } => {
                assert_eq!(reply["type"], "created", "{op:?}: {reply}");
                assert_eq!(reply["record"]["seq"], *seq, "{reply}");
                let id = reply["record"]["_id"].as_str().unwrap().to_string();
                self.live.push((*seq, id));
            }
            KeyedOp::Delete { seq, id } => {
                assert_eq!(reply["type"], "deleted", "{op:?}: {reply}");
                assert_eq!(reply["record_id"], json!(id), "{reply}");
                self.live.retain(|(live, _)| live != seq);
            }
            KeyedOp::Post { seq } => {
                assert_eq!(reply["type"], "posted", "{op:?}: {reply}");
                let id = reply["message_id"].as_str().unwrap().to_string();
                self.posted.push((*seq, id));
            }
        }
        self.acknowledged += 1;
    }

    async fn send(&mut self, peer: &mut Peer, op: KeyedOp) -> Result<(), Lost> {
        self.in_flight = Some(op.clone());
        let reply = peer.request(self.request(&op)).await?;
        self.in_flight = None;
        self.acknowledge(&op, &reply);
        Ok(())
    }

    /// Joins its room, sends the unacknowledged write again, then writes
    /// until the connection is lost.
    async fn run(&mut self, peer: &mut Peer) {
        if self.join(peer).await.is_err() {
            return;
        }
        if let Some(op) = self.in_flight.clone() {
            if self.send(peer, op).await.is_err() {
                return;
            }
        }
        loop {
            let op = self.next_op();
            if self.send(peer, op).await.is_err() {
                return;
            }
        }
    }
}

#[tokio::test]
async fn keyed_writes_retried_after_sigkill_apply_exactly_once() {
    const ROUNDS: usize = 30;
    const WRITERS: usize = 3;
    let seed = seed();
    println!("crash seed {seed} (replay with TIDEWIRE_CRASH_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut writers: Vec<KeyedWriter> = (0..WRITERS)
        .map(|n| KeyedWriter {
            name: format!("w{n}"),
            rng: fastrand::Rng::with_seed(rng.u64(..)),
            next_seq: 0,
            live: Vec::new(),
            acknowledged: 0,
            in_flight: None,
            posted: Vec::new(),
        })
        .collect();
    let mut retried = 0;
    // Every post stays in history, so that a lost or doubled one shows.
    let keep_every_post = ["--room-history", "1000000"];
    for round in 0..ROUNDS {
        let server = Spawned::start(dir.path(), &keep_every_post).await;
        let mut peers = Vec::new();
        for _ in 0..WRITERS {
            peers.push(Peer::connect(&server.url).await);
        }
        retried += writers.iter().filter(|w| w.in_flight.is_some()).count();
        let kill_after = Duration::from_millis(rng.u64(20..300));
        let killer = async {
            tokio::time::sleep(kill_after).await;
            server.kill().await;
        };
        let writing = futures_util::future::join_all(
            writers
                .iter_mut()
                .zip(peers.iter_mut())
                .map(|(writer, peer)| writer.run(peer)),
        );
        tokio::join!(killer, writing);
        if round % 10 == 9 {
            println!(
                "round {}: {} writes acknowledged",
                round + 1,
                writers.iter().map(|w| w.acknowledged).sum::<usize>()
            );
        }
    }

    // The last unacknowledged writes are retried once more, then the records
    // and room histories tell.
    let server = Spawned::start(dir.path(), &keep_every_post).await;
    for writer in &mut writers {
        let mut peer = Peer::connect(&server.url).await;
        writer.join(&mut peer).await.unwrap();
        if let Some(op) = writer.in_flight.clone() {
            writer.send(&mut peer, op).await.unwrap();
            retried += 1;
        }
    }
    let mut check = Peer::connect(&server.url).await;
    let records = check.read_all().await;
    for writer in &writers {
        let mut stored: Vec<(u64, String)> = records
            .iter()
            .filter(|r| r["writer"] == json!(writer.name))
            .map(|r| {
                (
                    r["seq"].as_u64().unwrap(),
                    r["_id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        stored.sort();
        let mut expected = writer.live.clone();
        expected.sort();
        assert_eq!(
            stored, expected,
            "{}: every acknowledged write is stored once, and no retried one twice",
            writer.name
        );
        // History is read by members only.
        writer.join(&mut check).await.unwrap();
        let mut kept: Vec<(u64, String)> = check
            .room_history(&writer.room())
            .await
            .iter()
            .map(|m| {
                assert_eq!(m["body"]["writer"], json!(writer.name), "{m}");
                (
                    m["body"]["seq"].as_u64().unwrap(),
                    m["message_id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        kept.sort();
        let mut posted = writer.posted.clone();
        posted.sort();
        // The differences only: a writer makes hundreds of posts.
        let extra: Vec<_> = kept.iter().filter(|m| !posted.contains(m)).collect();
        let missing: Vec<_> = posted.iter().filter(|m| !kept.contains(m)).collect();
        assert!(
            kept.len() == posted.len() && extra.is_empty() && missing.is_empty(),
            "{}: every acknowledged post is kept once, with the id its reply gave, and no \
             retried one twice; {} kept, {} acknowledged; kept but not acknowledged: \
             {extra:?}; acknowledged but not kept: {missing:?}",
            writer.name,
            kept.len(),
            posted.len(),
        );
    }
    let acknowledged: usize = writers.iter().map(|w| w.acknowledged).sum();
    assert!(acknowledged > ROUNDS, "writes happened between the kills");
    let posts: usize = writers.iter().map(|w| w.posted.len()).sum();
    println!(
        "{ROUNDS} kills, {acknowledged} keyed writes acknowledged ({posts} posts), {retried} retried"
    );
    server.kill().await;
}
/// Positions of the journal and of rooms live as long as the data directory;
/// topics and documents are not stored, so a restart gives them a new epoch
/// (TW-POS-6) and a position from before it is `history_lost`.
#[tokio::test]
async fn journal_and_room_positions_survive_a_restart_and_topic_positions_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = Spawned::start(dir.path(), &[]).await;
    let mut peer = Peer::connect(&server.url).await;
    let created = peer
        .request(
            json!({"type": "create", "database": DB, "collection": COLL, "record": {"_id": "a"}}),
        )
        .await
        .unwrap();
    let before = created["position"].clone();
    let joined = peer
        .request(json!({"type": "join", "room": "lobby"}))
        .await
        .unwrap();
    let room_before = joined["position"].clone();
    let posted = peer
        .request(json!({"type": "post", "room": "lobby", "body": 1}))
        .await
        .unwrap();
    assert_eq!(peer.next().await.unwrap()["type"], "room_message");
    let published = peer
        .request(json!({"type": "publish", "topic": "t", "data": 1}))
        .await
        .unwrap();
    server.kill().await;

    let server = Spawned::start(dir.path(), &[]).await;
    let mut writer = Peer::connect(&server.url).await;
    let created_after = writer
        .request(
            json!({"type": "create", "database": DB, "collection": COLL, "record": {"_id": "b"}}),
        )
        .await
        .unwrap();
    assert_eq!(created_after["position"]["epoch"], before["epoch"]);
    assert!(created_after["position"]["seq"].as_u64() > before["seq"].as_u64());
    writer
        .request(json!({"type": "join", "room": "lobby"}))
        .await
        .unwrap();
    let posted_after = writer
        .request(json!({"type": "post", "room": "lobby", "body": 2}))
        .await
        .unwrap();
    assert_eq!(
        posted_after["position"]["epoch"],
        posted["position"]["epoch"]
    );
    assert!(posted_after["message_id"].as_str() > posted["message_id"].as_str());

    let mut reader = Peer::connect(&server.url).await;
    let watching = reader
        .request(
            json!({"type": "watch", "database": DB, "collection": COLL, "start_after": before}),
        )
        .await
        .unwrap();
    assert_eq!(watching["resumed"], true, "{watching}");
    let change = reader.next().await.unwrap();
    assert_eq!(change["event"]["document_key"]["_id"], "b", "{change}");
    let rejoined = reader
        .request(json!({"type": "join", "room": "lobby", "start_after": room_before}))
        .await
        .unwrap();
    assert_eq!(rejoined["recovered"], true, "{rejoined}");
    for body in [1, 2] {
        let replayed = reader.next().await.unwrap();
        assert_eq!(replayed["message"]["body"], body, "{replayed}");
    }
    let lost = reader
        .request(json!({"type": "subscribe", "topic": "t", "start_after": published["position"]}))
        .await
        .unwrap();
    assert_eq!(lost["error"]["code"], "history_lost", "{lost}");
    server.kill().await;
}
