//! Positions (section 9.1): a read and a watch started after its position
//! together show every commit once while writers run, and two runs never
//! issue the same epoch, position or message id.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tidewire_server::Variant;

use crate::common::{config, start, Client};

const WRITERS: usize = 4;
const WRITES_PER_WRITER: usize = 60;

/// One writer's mix of creates, updates and deletes of its own records.
async fn write(url: String, writer: usize, done: Arc<AtomicUsize>) {
    let mut client = Client::connect(&url).await;
    let id = |i: usize| format!("w{writer}-{i}");
    let target = json!({"database": "app", "collection": "pos"});
    for i in 0..WRITES_PER_WRITER {
        let mut request = match i % 3 {
            0 => json!({"type": "create", "record": {"_id": id(i), "v": 0}}),
            1 => json!({"type": "update", "record_id": id(i - 1), "set": {"v": i}}),
            _ => json!({"type": "delete", "record_id": id(i - 2)}),
        };
        for (key, value) in target.as_object().unwrap() {
            request[key] = value.clone();
        }
        let reply = client.request(request).await;
        assert_ne!(reply["type"], "error", "{reply}");
        done.fetch_add(1, Ordering::SeqCst);
    }
}

/// Applies one change event to a copy of the collection, failing on what a
/// gap or a duplicate would look like.
fn apply(records: &mut BTreeMap<String, Value>, event: &Value) {
    let id = event["document_key"]["_id"].as_str().unwrap().to_string();
    match event["operation_type"].as_str().unwrap() {
        "insert" => {
            let before = records.insert(id, event["full_document"].clone());
            assert!(before.is_none(), "an insert seen twice: {event}");
        }
        "update" => {
            let record = records
                .get_mut(&id)
                .expect("an update of a record the read had");
            record["v"] = event["update_description"]["updated_fields"]["v"].clone();
        }
        "delete" => {
            assert!(
                records.remove(&id).is_some(),
                "a delete seen twice: {event}"
            );
        }
        other => panic!("unexpected operation {other}"),
    }
}

async fn read_then_watch(variant: Variant) {
    let server = start(tidewire_server::Config {
        variant,
        ..config()
    })
    .await;
    let url = server.ws_url();
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write(url.clone(), w, done.clone())))
        .collect();
    // Read while the writers are under way, then watch from the read.
    while done.load(Ordering::SeqCst) < WRITERS * WRITES_PER_WRITER / 4 {
        tokio::task::yield_now().await;
    }
    let mut reader = Client::connect(&url).await;
    let read = reader
        .ok(
            json!({"type": "read", "database": "app", "collection": "pos", "limit": 1000}),
            "records",
        )
        .await;
    let position = read["position"].clone();
    let mut records: BTreeMap<String, Value> = read["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["_id"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    let watching = reader
        .ok(
            json!({"type": "watch", "database": "app", "collection": "pos",
                   "full_document": true, "start_after": position}),
            "watching",
        )
        .await;
    assert_eq!(watching["resumed"], true, "{watching}");
    for writer in writers {
        writer.await.unwrap();
    }
    // A last commit marks the end of the stream.
    let mut closer = Client::connect(&url).await;
    let sentinel = closer
        .ok(
            json!({"type": "create", "database": "app", "collection": "pos", "record": {"_id": "zz-end"}}),
            "created",
        )
        .await;
    let mut last_seq = position["seq"].as_u64().unwrap();
    loop {
        let change = reader.recv_type("change").await;
        let event = &change["event"];
        assert_eq!(event["position"]["epoch"], position["epoch"], "{change}");
        let seq = event["position"]["seq"].as_u64().unwrap();
        assert!(seq > last_seq, "positions increase: {seq} after {last_seq}");
        last_seq = seq;
        apply(&mut records, event);
        if event["document_key"]["_id"] == "zz-end" {
            assert_eq!(event["position"]["seq"], sentinel["position"]["seq"]);
            break;
        }
    }
    let last = closer
        .ok(
            json!({"type": "read", "database": "app", "collection": "pos", "limit": 1000}),
            "records",
        )
        .await;
    let expected: BTreeMap<String, Value> = last["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["_id"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    assert_eq!(
        records, expected,
        "the read plus the stream is the final state"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_and_a_watch_from_its_position_see_every_commit_once_while_writers_run() {
    read_then_watch(Variant::Usual).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn so_do_they_with_the_alternate_epochs_and_sequence_steps() {
    read_then_watch(Variant::Alternate).await;
}

/// What one run issues first: a journal position, a publication and a room message.
async fn first_entries(url: &str) -> (Value, Value, Value) {
    let mut c = Client::connect(url).await;
    let created = c
        .ok(
            json!({"type": "create", "database": "app", "collection": "runs", "record": {"_id": "r"}}),
            "created",
        )
        .await;
    let published = c
        .ok(
            json!({"type": "publish", "topic": "runs", "data": 1}),
            "published",
        )
        .await;
    c.ok(json!({"type": "join", "room": "runs"}), "joined")
        .await;
    let posted = c
        .ok(json!({"type": "post", "room": "runs", "body": 1}), "posted")
        .await;
    (created, published, posted)
}

#[tokio::test]
async fn two_in_memory_runs_issue_different_epochs_and_ids() {
    let first = start(config()).await;
    let second = start(config()).await;
    let (created_1, published_1, posted_1) = first_entries(&first.ws_url()).await;
    let (created_2, published_2, posted_2) = first_entries(&second.ws_url()).await;
    assert_ne!(
        created_1["position"]["epoch"],
        created_2["position"]["epoch"]
    );
    assert_ne!(published_1["message_id"], published_2["message_id"]);
    assert_ne!(
        published_1["position"]["epoch"],
        published_2["position"]["epoch"]
    );
    assert_ne!(posted_1["message_id"], posted_2["message_id"]);
    assert_ne!(posted_1["position"]["epoch"], posted_2["position"]["epoch"]);
    // The first entries of each run have the same sequence numbers: only the
    // epoch tells them apart.
    assert_eq!(created_1["position"]["seq"], created_2["position"]["seq"]);
    assert_eq!(posted_1["position"]["seq"], posted_2["position"]["seq"]);
    first.shutdown().await;
    second.shutdown().await;
}
