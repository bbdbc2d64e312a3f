//! Profile records: create, read (by id and by query), update, delete.

use crate::common::{config, start, Client};
use serde_json::{json, Value};

async fn client() -> (tidewire_server::ServerHandle, Client) {
    let server = start(config()).await;
    let client = Client::connect(&server.ws_url()).await;
    (server, client)
}

fn create(id: &str, record: Value) -> Value {
    let mut record = record;
    record["_id"] = json!(id);
    json!({"type": "create", "database": "app", "collection": "users", "record": record})
}

#[tokio::test]
async fn create_read_update_delete() {
    let (_server, mut c) = client().await;
    let created = c
        .ok(create("u1", json!({"name": "Ada", "age": 36})), "created")
        .await;
    assert_eq!(
        created["record"],
        json!({"name": "Ada", "age": 36, "_id": "u1"})
    );

    let read = c
        .ok(
            json!({"type": "read", "database": "app", "collection": "users", "record_id": "u1"}),
            "records",
        )
        .await;
    assert_eq!(
        read["records"],
        json!([{"name": "Ada", "age": 36, "_id": "u1"}])
    );
    assert_eq!(
        (read["total"].as_u64(), read["count"].as_u64()),
        (Some(1), Some(1))
    );

    let updated = c
        .ok(
            json!({"type": "update", "database": "app", "collection": "users", "record_id": "u1",
                   "set": {"address.city": "London", "age": 37}, "unset": ["name", "missing"]}),
            "updated",
        )
        .await;
    assert_eq!(
        updated["record"],
        json!({"age": 37, "_id": "u1", "address": {"city": "London"}})
    );

    let deleted = c
        .ok(
            json!({"type": "delete", "database": "app", "collection": "users", "record_id": "u1"}),
            "deleted",
        )
        .await;
    assert_eq!(deleted["record_id"], "u1");
    c.err(
        json!({"type": "read", "database": "app", "collection": "users", "record_id": "u1"}),
        "not_found",
    )
    .await;
    c.err(
        json!({"type": "delete", "database": "app", "collection": "users", "record_id": "u1"}),
        "not_found",
    )
    .await;
    c.err(
        json!({"type": "update", "database": "app", "collection": "users", "record_id": "u1", "set": {"a": 1}}),
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn create_assigns_ids_and_refuses_taken_or_bad_ones() {
    let (_server, mut c) = client().await;
    let a = c
        .ok(
            json!({"type": "create", "database": "app", "collection": "c", "record": {"n": 1}}),
            "created",
        )
        .await;
    let b = c
        .ok(
            json!({"type": "create", "database": "app", "collection": "c", "record": {"n": 2}}),
            "created",
        )
        .await;
    let (a, b) = (
        a["record"]["_id"].as_str().unwrap(),
        b["record"]["_id"].as_str().unwrap(),
    );
    assert!(!a.is_empty() && a != b);
    c.err(
        json!({"type": "create", "database": "app", "collection": "c", "record": {"_id": a}}),
        "conflict",
    )
    .await;
    let bad = c
        .err(
            json!({"type": "create", "database": "app", "collection": "c", "record": {"_id": 7}}),
            "invalid_message",
        )
        .await;
    assert_eq!(bad["error"]["details"]["path"], "record._id");
}

#[tokio::test]
async fn query_filters_sorts_pages_and_projects() {
    let (_server, mut c) = client().await;
    for (id, age, city) in [
        ("a", 30, "Paris"),
        ("b", 25, "Oslo"),
        ("c", 30, "Lima"),
        ("d", 41, "Oslo"),
        ("e", 17, "Rome"),
    ] {
        c.ok(
            create(
                id,
                json!({"age": age, "address": {"city": city}, "tag": id}),
            ),
            "created",
        )
        .await;
    }
    let all = c
        .ok(
            json!({"type": "read", "database": "app", "collection": "users"}),
            "records",
        )
        .await;
    let ids: Vec<&str> = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);

    let page = c
        .ok(
            json!({"type": "read", "database": "app", "collection": "users",
                   "filter": {"age": {"$gte": 18}},
                   "sort": [{"field": "age", "order": "desc"}],
                   "offset": 1, "limit": 2, "fields": ["address.city", "nope"]}),
            "records",
        )
        .await;
    assert_eq!(page["total"], 4);
    assert_eq!(page["count"], 2);
    // Ties on age keep _id order.
    assert_eq!(
        page["records"],
        json!([{"_id": "a", "address": {"city": "Paris"}}, {"_id": "c", "address": {"city": "Lima"}}])
    );

    c.invalid_at(
        json!({"type": "read", "database": "app", "collection": "users", "filter": {"age": {"$bogus": 1}}}),
        "filter",
    )
    .await;

    let empty = c
        .ok(
            json!({"type": "read", "database": "app", "collection": "nothing"}),
            "records",
        )
        .await;
    assert_eq!(empty["records"], json!([]));
    assert_eq!(empty["total"], 0);
}

#[tokio::test]
async fn update_refuses_id_changes_and_empty_updates() {
    let (_server, mut c) = client().await;
    c.ok(create("u1", json!({"n": 1})), "created").await;
    let base =
        json!({"type": "update", "database": "app", "collection": "users", "record_id": "u1"});
    let with = |extra: Value| {
        let mut message = base.clone();
        message
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        message
    };
    let e = c
        .err(with(json!({"set": {"_id": "u2"}})), "invalid_message")
        .await;
    assert_eq!(e["error"]["details"]["path"], "set._id");
    c.err(with(json!({"unset": ["_id"]})), "invalid_message")
        .await;
    c.err(with(json!({})), "invalid_message").await;
    c.err(with(json!({"set": {"n.x": 1}})), "invalid_message")
        .await;
    let read = c
        .ok(
            json!({"type": "read", "database": "app", "collection": "users", "record_id": "u1"}),
            "records",
        )
        .await;
    assert_eq!(read["records"][0], json!({"n": 1, "_id": "u1"}));
}

#[tokio::test]
async fn seeded_records_are_readable() {
    let server = start(config().with_seed(
        "app",
        "seeded",
        vec![json!({"_id": "s1", "v": 1}).as_object().unwrap().clone()],
    ))
    .await;
    server
        .seed(
            "app",
            "seeded",
            vec![json!({"_id": "s2", "v": 2}).as_object().unwrap().clone()],
        )
        .unwrap();
    let mut c = Client::connect(&server.ws_url()).await;
    let read = c
        .ok(
            json!({"type": "read", "database": "app", "collection": "seeded"}),
            "records",
        )
        .await;
    assert_eq!(
        read["records"],
        json!([{"_id": "s1", "v": 1}, {"_id": "s2", "v": 2}])
    );
    assert!(server.seed("bad.name", "x", Vec::new()).is_err());
}
