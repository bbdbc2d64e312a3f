//! Profiles watch and resume: change events, barriers, filters, unsubscribe,
//! limits, resuming across reconnects and restarts, and slow consumers.

use std::time::Duration;

use crate::common::{config, start, Client};
use serde_json::{json, Value};
use tidewire_server::Config;

fn create(collection: &str, id: &str, record: Value) -> Value {
    let mut record = record;
    record["_id"] = json!(id);
    json!({"type": "create", "database": "app", "collection": collection, "record": record})
}

fn ids(changes: &[Value]) -> Vec<String> {
    changes
        .iter()
        .map(|c| {
            c["event"]["document_key"]["_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

async fn changes(client: &mut Client, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(client.recv_type("change").await);
    }
    out
}

/// The `_id`s of the changes before the one for `end`, which is consumed.
async fn ids_until(client: &mut Client, end: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let change = client.recv_type("change").await;
        let id = change["event"]["document_key"]["_id"]
            .as_str()
            .unwrap()
            .to_string();
        if id == end {
            return got;
        }
        got.push(id);
    }
}

#[tokio::test]
async fn a_write_on_one_connection_reaches_a_watch_on_another() {
    let server = start(config()).await;
    let mut a = Client::connect(&server.ws_url()).await;
    let mut b = Client::connect(&server.ws_url()).await;
    let watching = b.watch_collection("users").await;
    assert_eq!(watching["resumed"], false);
    let sub = watching["subscription"].clone();
    a.ok(create("users", "u1", json!({"name": "Ada"})), "created")
        .await;
    a.ok(create("other", "o1", json!({})), "created").await;
    a.ok(json!({"type": "update", "database": "app", "collection": "users", "record_id": "u1", "set": {"age": 36}, "unset": ["name", "ghost"]}), "updated").await;
    a.ok(
        json!({"type": "delete", "database": "app", "collection": "users", "record_id": "u1"}),
        "deleted",
    )
    .await;

    let insert = b.recv_type("change").await;
    assert_eq!(insert["subscription"], sub);
    let event = &insert["event"];
    assert_eq!(event["operation_type"], "insert");
    assert_eq!(
        event["ns"],
        json!({"database": "app", "collection": "users"})
    );
    assert_eq!(event["document_key"], json!({"_id": "u1"}));
    assert_eq!(event["full_document"], json!({"name": "Ada", "_id": "u1"}));
    assert!(event["committed_at"].as_str().unwrap().ends_with('Z'));
    assert!(event["resume_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));

    let update = b.recv_type("change").await;
    assert_eq!(update["event"]["operation_type"], "update");
    assert!(update["event"].get("full_document").is_none(), "{update}");
    assert_eq!(
        update["event"]["update_description"],
        json!({"updated_fields": {"age": 36}, "removed_fields": ["name"]})
    );
    let delete = b.recv_type("change").await;
    assert_eq!(delete["event"]["operation_type"], "delete");
    assert!(delete["event"].get("full_document").is_none());
    b.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn full_document_filters_and_pipelines_see_the_event_as_sent() {
    let server = start(config()).await;
    let mut a = Client::connect(&server.ws_url()).await;
    let mut b = Client::connect(&server.ws_url()).await;
    b.ok(
        json!({"type": "watch", "database": "app", "full_document": true,
                "filter": {"full_document.age": {"$gte": 18}}}),
        "watching",
    )
    .await;
    b.ok(
        json!({"type": "watch", "filter": {"full_document.age": {"$gte": 18}}}),
        "watching",
    )
    .await;
    b.ok(json!({"type": "watch", "pipeline": [{"$match": {"operation_type": "delete"}}, {"$match": {"ns.collection": "users"}}]}), "watching").await;

    a.ok(create("users", "kid", json!({"age": 9})), "created")
        .await;
    a.ok(create("users", "adult", json!({"age": 40})), "created")
        .await;
    a.ok(json!({"type": "update", "database": "app", "collection": "users", "record_id": "adult", "set": {"x": 1}}), "updated").await;
    a.ok(
        json!({"type": "delete", "database": "app", "collection": "users", "record_id": "kid"}),
        "deleted",
    )
    .await;

    let got = changes(&mut b, 4).await;
    let summary: Vec<(String, String, bool)> = got
        .iter()
        .map(|c| {
            (
                c["subscription"].as_str().unwrap().to_string(),
                c["event"]["operation_type"].as_str().unwrap().to_string(),
                c["event"].get("full_document").is_some(),
            )
        })
        .collect();
    let s = |sub: &str, op: &str, full| (sub.to_string(), op.to_string(), full);
    // The insert of `adult` matches both age watches; the update only the one
    // that asked for full_document (the other does not see `full_document`).
    assert_eq!(
        summary,
        vec![
            s("s1", "insert", true),
            s("s2", "insert", true),
            s("s1", "update", true),
            s("s3", "delete", false)
        ]
    );
    b.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn watch_arguments_are_validated() {
    let server = start(config()).await;
    let mut c = Client::connect(&server.ws_url()).await;
    let e = c
        .err(
            json!({"type": "watch", "collection": "users"}),
            "invalid_message",
        )
        .await;
    assert_eq!(e["error"]["details"]["path"], "collection");
    c.invalid_at(json!({"type": "watch", "filter": {"$and": 5}}), "filter")
        .await;
    c.invalid_at(
        json!({"type": "watch", "pipeline": [{"$group": {}}]}),
        "pipeline",
    )
    .await;
    c.err(
        json!({"type": "unsubscribe", "subscription": "s99"}),
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn the_watching_reply_is_a_barrier() {
    let server = start(config()).await;
    let mut writer = Client::connect(&server.ws_url()).await;
    let mut watcher = Client::connect(&server.ws_url()).await;
    writer.ok(create("c", "before", json!({})), "created").await;
    const WRITES: usize = 150;
    let writes = tokio::spawn(async move {
        for n in 0..WRITES {
            writer
                .ok(create("c", &format!("w{n:03}"), json!({})), "created")
                .await;
        }
        writer
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    let watching = watcher.watch_collection("c").await;
    let mut writer = writes.await.unwrap();
    writer.ok(create("c", "zz-end", json!({})), "created").await;
    let received = ids_until(&mut watcher, "zz-end").await;
    // Journal positions: `before` is 1 and w{n} is n + 2, so the barrier at
    // position p means every write from w{p-1} on, and none before.
    let barrier: usize = watching["resume_token"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let expected: Vec<String> = (barrier.saturating_sub(1)..WRITES)
        .map(|n| format!("w{n:03}"))
        .collect();
    assert_eq!(received, expected, "barrier at {barrier}");
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let server = start(config()).await;
    let mut a = Client::connect(&server.ws_url()).await;
    let mut b = Client::connect(&server.ws_url()).await;
    let sub = b.ok(json!({"type": "watch"}), "watching").await["subscription"].clone();
    a.ok(create("c", "one", json!({})), "created").await;
    b.recv_type("change").await;
    let reply = b
        .ok(
            json!({"type": "unsubscribe", "subscription": sub}),
            "unsubscribed",
        )
        .await;
    assert_eq!(reply["subscription"], sub);
    a.ok(create("c", "two", json!({})), "created").await;
    b.expect_silence(Duration::from_millis(150)).await;
    b.err(
        json!({"type": "unsubscribe", "subscription": sub}),
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn max_subscriptions_is_enforced() {
    let server = start(Config {
        max_subscriptions: 2,
        ..config()
    })
    .await;
    let mut c = Client::connect(&server.ws_url()).await;
    assert_eq!(c.welcome["limits"]["max_subscriptions"], 2);
    let first = c.ok(json!({"type": "watch"}), "watching").await;
    c.subscribe("t").await;
    let e = c.err(json!({"type": "watch"}), "limit_exceeded").await;
    assert_eq!(e["error"]["details"]["limit"], "max_subscriptions");
    let e = c
        .err(json!({"type": "subscribe", "topic": "u"}), "limit_exceeded")
        .await;
    assert_eq!(e["error"]["details"]["limit"], "max_subscriptions");
    c.ok(
        json!({"type": "unsubscribe", "subscription": first["subscription"]}),
        "unsubscribed",
    )
    .await;
    c.ok(json!({"type": "watch"}), "watching").await;
}

#[tokio::test]
async fn resume_after_reconnect_replays_exactly_the_missed_events() {
    let server = start(config()).await;
    let mut a = Client::connect(&server.ws_url()).await;
    let mut b = Client::connect(&server.ws_url()).await;
    b.ok(json!({"type": "watch", "database": "app", "collection": "c", "filter": {"full_document.skip": {"$ne": true}}}), "watching").await;
    for id in ["e1", "e2"] {
        a.ok(create("c", id, json!({})), "created").await;
    }
    let seen = changes(&mut b, 2).await;
    let token = seen[1]["event"]["resume_token"].clone();
    drop(b);
    for (id, skip) in [("e3", false), ("e4", true), ("e5", false)] {
        a.ok(create("c", id, json!({"skip": skip})), "created")
            .await;
    }
    a.ok(create("elsewhere", "x", json!({})), "created").await;

    let mut b = Client::connect(&server.ws_url()).await;
    let watching = b
        .ok(
            json!({"type": "watch", "database": "app", "collection": "c", "resume_after": token,
                   "filter": {"full_document.skip": {"$ne": true}}}),
            "watching",
        )
        .await;
    assert_eq!(watching["resumed"], true);
    let replayed = changes(&mut b, 2).await;
    assert_eq!(ids(&replayed), ["e3", "e5"]);
    a.ok(create("c", "e6", json!({})), "created").await;
    let live = changes(&mut b, 1).await;
    assert_eq!(ids(&live), ["e6"]);
    b.expect_silence(Duration::from_millis(100)).await;

    // Resuming from the barrier token of the new watch replays nothing before it.
    let mut c = Client::connect(&server.ws_url()).await;
    c.ok(json!({"type": "watch", "database": "app", "collection": "c", "resume_after": watching["resume_token"]}), "watching").await;
    assert_eq!(ids(&changes(&mut c, 1).await), ["e6"]);
}

#[tokio::test]
async fn unusable_resume_tokens_are_history_lost() {
    let server = start(Config {
        journal_retention: 3,
        ..config()
    })
    .await;
    let mut c = Client::connect(&server.ws_url()).await;
    let old = c.ok(json!({"type": "watch"}), "watching").await["resume_token"].clone();
    for n in 0..5 {
        c.ok(create("c", &format!("r{n}"), json!({})), "created")
            .await;
    }
    let mut fresh = Client::connect(&server.ws_url()).await;
    fresh
        .err(
            json!({"type": "watch", "resume_after": old}),
            "history_lost",
        )
        .await;
    fresh
        .err(
            json!({"type": "watch", "resume_after": "garbage"}),
            "history_lost",
        )
        .await;
    let future = format!("{}:999", server.epoch());
    fresh
        .err(
            json!({"type": "watch", "resume_after": future}),
            "history_lost",
        )
        .await;
    // Exactly at the edge of retention still works: the last 3 events are kept.
    let edge = format!("{}:2", server.epoch());
    fresh
        .ok(json!({"type": "watch", "resume_after": edge}), "watching")
        .await;
    assert_eq!(ids(&changes(&mut fresh, 3).await), ["r2", "r3", "r4"]);
}

#[tokio::test]
async fn tokens_from_before_a_restart_are_history_lost() {
    let first = start(config()).await;
    let mut c = Client::connect(&first.ws_url()).await;
    let token = c.ok(json!({"type": "watch"}), "watching").await["resume_token"].clone();
    drop(c);
    first.shutdown().await;
    let second = start(config()).await;
    let mut c = Client::connect(&second.ws_url()).await;
    c.err(
        json!({"type": "watch", "resume_after": token}),
        "history_lost",
    )
    .await;
    c.assert_alive().await;
}

/// A subscriber that stops reading is cut off with a notice and 4002 while an
/// active subscriber and the writer carry on; the notice's position resumes
/// without gaps or duplicates.
#[tokio::test]
async fn a_slow_consumer_is_cut_off_without_stalling_others() {
    let server = start(Config {
        outbound_queue: 4,
        ..config()
    })
    .await;
    let mut writer = Client::connect(&server.ws_url()).await;
    let mut slow = Client::connect(&server.ws_url()).await;
    let mut fast = Client::connect(&server.ws_url()).await;
    slow.watch_collection("big").await;
    fast.watch_collection("big").await;
    let reader = tokio::spawn(async move { ids_until(&mut fast, "end").await });
    let payload = "x".repeat(64 * 1024);
    let mut written = Vec::new();
    for n in 0..2000 {
        let id = format!("b{n:04}");
        writer
            .ok(create("big", &id, json!({"payload": payload})), "created")
            .await;
        written.push(id);
        if server.stats().subscriptions < 2 {
            break;
        }
    }
    assert!(
        server.stats().subscriptions < 2,
        "the slow consumer was never cut off"
    );
    writer.ok(create("big", "end", json!({})), "created").await;
    let fast_got = tokio::time::timeout(crate::common::WAIT, reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fast_got, written);

    let (code, _, before) = slow.expect_close().await;
    assert_eq!(code, 4002);
    let notice_at = before
        .iter()
        .rposition(|m| m["type"] == "notice")
        .expect("a notice before the close");
    let (delivered, rest) = before.split_at(notice_at);
    let (notice, ended) = rest.split_first().unwrap();
    assert_eq!(ended.len(), 1, "one ended per subscription: {ended:?}");
    assert_eq!(ended[0]["type"], "ended");
    assert_eq!(ended[0]["reason"], "slow_consumer");
    assert_eq!(
        ended[0]["resume_token"],
        notice["positions"][0]["resume_token"]
    );
    assert_eq!(notice["reason"], "slow_consumer");
    assert!(delivered.iter().all(|m| m["type"] == "change"));
    let positions = notice["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 1);
    assert_eq!(positions[0]["subscription"], "s1");
    let delivered_ids = ids(delivered);
    assert_eq!(delivered_ids[..], written[..delivered_ids.len()]);
    if let Some(last) = delivered.last() {
        assert_eq!(positions[0]["resume_token"], last["event"]["resume_token"]);
    }

    let mut back = Client::connect(&server.ws_url()).await;
    back.ok(
        json!({"type": "watch", "database": "app", "collection": "big",
                   "resume_after": positions[0]["resume_token"]}),
        "watching",
    )
    .await;
    let missed = written.len() - delivered_ids.len() + 1;
    let replayed = ids(&changes(&mut back, missed).await);
    let mut expected: Vec<String> = written[delivered_ids.len()..].to_vec();
    expected.push("end".into());
    assert_eq!(replayed, expected);
}
