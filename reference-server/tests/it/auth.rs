//! Profile auth: modes, handshake tokens, in-band auth, JWTs, re-authentication,
//! scopes, and token expiry.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{config, expect_refused, open, start, Client};
use serde_json::{json, Value};
use tidewire_server::{encode_hs256, AuthMode, Config, StaticToken};

const SECRET: &[u8] = b"test-secret";

fn token(principal: &str, scopes: &[&str]) -> StaticToken {
    StaticToken {
        principal: principal.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        display_name: None,
    }
}

fn auth_config(mode: AuthMode) -> Config {
    let tokens: HashMap<String, StaticToken> = [
        ("root-token", token("root", &["*"])),
        ("alice-read", token("alice", &["read:collection:app.*"])),
        (
            "alice-rw",
            token(
                "alice",
                &["read:collection:app.*", "write:collection:app.*"],
            ),
        ),
        (
            "alice-public",
            token("alice", &["read:collection:app.public"]),
        ),
        (
            "bob",
            token(
                "bob",
                &[
                    "read:collection:app.users",
                    "join:room:team-*",
                    "subscribe:topic:news",
                ],
            ),
        ),
    ]
    .into_iter()
    .map(|(t, grant)| (t.to_string(), grant))
    .collect();
    Config {
        auth_mode: mode,
        auth_timeout: Duration::from_millis(300),
        tokens,
        jwt_secret: Some(SECRET.to_vec()),
        ..config()
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn jwt(sub: &str, scope: &str, expires_in: f64) -> String {
    encode_hs256(
        SECRET,
        &json!({"sub": sub, "scope": scope, "exp": now_secs() + expires_in}),
    )
}

fn create(collection: &str, id: &str) -> Value {
    json!({"type": "create", "database": "app", "collection": collection, "record": {"_id": id}})
}

#[tokio::test]
async fn required_mode_refuses_everything_but_auth_and_ping() {
    let server = start(auth_config(AuthMode::Required)).await;
    let mut c = Client::connect(&server.ws_url()).await;
    assert_eq!(
        c.welcome["auth"],
        json!({"mode": "required", "timeout_ms": 300, "scopes": [], "expiry_notice_ms": 30_000})
    );
    c.assert_alive().await;
    c.err(json!({"type": "watch"}), "unauthorized").await;
    c.err(json!({"type": "get_stats"}), "unauthorized").await;
    c.err(json!({"type": "auth", "token": "wrong"}), "unauthorized")
        .await;
    let authenticated = c
        .ok(
            json!({"type": "auth", "token": "alice-read"}),
            "authenticated",
        )
        .await;
    assert_eq!(authenticated["principal"], "alice");
    assert_eq!(authenticated["scopes"], json!(["read:collection:app.*"]));
    assert!(authenticated.get("expires_at").is_none());
    c.ok(json!({"type": "watch", "database": "app"}), "watching")
        .await;
    // The auth timeout no longer applies.
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.assert_alive().await;
}

#[tokio::test]
async fn required_mode_closes_unauthenticated_connections_after_the_timeout() {
    let server = start(auth_config(AuthMode::Required)).await;
    let mut c = Client::connect(&server.ws_url()).await;
    c.err(json!({"type": "auth", "token": "nope"}), "unauthorized")
        .await;
    let (code, reason, _) = c.expect_close().await;
    assert_eq!((code, reason.as_str()), (4003, "auth timeout"));
}

#[tokio::test]
async fn handshake_tokens_from_query_or_header() {
    let server = start(auth_config(AuthMode::Required)).await;
    let url = server.ws_url();
    let mut by_query = Client::connect(&format!("{url}?token=alice-read")).await;
    assert_eq!(by_query.welcome["auth"]["principal"], "alice");
    let mut by_header = Client::connect_with(&url, &[("authorization", "Bearer bob")]).await;
    assert_eq!(by_header.welcome["auth"]["principal"], "bob");
    let jwt = jwt("carol", "read:collection:*", 60.0);
    let mut by_jwt = Client::connect(&format!("{url}?token={jwt}")).await;
    assert_eq!(by_jwt.welcome["auth"]["principal"], "carol");
    by_query
        .ok(json!({"type": "watch", "database": "app"}), "watching")
        .await;
    by_header.watch_collection("users").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    by_jwt.assert_alive().await;
    by_query.assert_alive().await;

    let (ws, _) = open(&format!("{url}?token=forged"), &[]).await.unwrap();
    assert_eq!(
        expect_refused(ws).await,
        (1008, "invalid token".to_string())
    );
    let (ws, _) = open(&url, &[("authorization", "Bearer forged")])
        .await
        .unwrap();
    assert_eq!(
        expect_refused(ws).await,
        (1008, "invalid token".to_string())
    );
}

#[tokio::test]
async fn jwts_are_verified() {
    let server = start(auth_config(AuthMode::Optional)).await;
    let mut c = Client::connect(&server.ws_url()).await;
    let expired = jwt("carol", "*", -10.0);
    c.err(json!({"type": "auth", "token": expired}), "unauthorized")
        .await;
    let forged = encode_hs256(b"other-secret", &json!({"sub": "carol", "scope": "*"}));
    c.err(json!({"type": "auth", "token": forged}), "unauthorized")
        .await;
    let good = jwt(
        "carol",
        "read:collection:app.users write:collection:app.users",
        3600.0,
    );
    let reply = c
        .ok(json!({"type": "auth", "token": good}), "authenticated")
        .await;
    assert_eq!(reply["principal"], "carol");
    assert_eq!(
        reply["scopes"],
        json!(["read:collection:app.users", "write:collection:app.users"])
    );
    assert!(reply["expires_at"].as_str().unwrap().ends_with('Z'));
    c.ok(create("users", "u1"), "created").await;
    c.err(create("orders", "o1"), "forbidden").await;
}

#[tokio::test]
async fn reauthentication_refreshes_the_same_principal_only() {
    let server = start(auth_config(AuthMode::Required)).await;
    let mut c = Client::connect(&server.ws_url()).await;
    c.ok(
        json!({"type": "auth", "token": "alice-read"}),
        "authenticated",
    )
    .await;
    let sub = c
        .ok(json!({"type": "watch", "database": "app"}), "watching")
        .await["subscription"]
        .clone();
    c.err(create("users", "u1"), "forbidden").await;
    c.ok(
        json!({"type": "auth", "token": "alice-rw"}),
        "authenticated",
    )
    .await;
    c.ok(create("users", "u1"), "created").await;
    // The subscription survived the refresh.
    let change = c.recv_type("change").await;
    assert_eq!(change["subscription"], sub);
    let refused = c
        .err(json!({"type": "auth", "token": "bob"}), "forbidden")
        .await;
    assert!(refused["error"]["message"].as_str().is_some());
    // Still alice with write access.
    c.ok(create("users", "u2"), "created").await;
    let stats_principal = c
        .ok(
            json!({"type": "auth", "token": "alice-rw"}),
            "authenticated",
        )
        .await;
    assert_eq!(stats_principal["principal"], "alice");
}

#[tokio::test]
async fn scopes_forbid_and_events_do_not_cross_scopes() {
    let server = start(auth_config(AuthMode::Required)).await;
    let url = server.ws_url();
    let mut root = Client::connect(&format!("{url}?token=root-token")).await;
    let mut bob = Client::connect(&format!("{url}?token=bob")).await;
    bob.err(json!({"type": "watch"}), "forbidden").await;
    bob.err(json!({"type": "watch", "database": "app"}), "forbidden")
        .await;
    bob.err(
        json!({"type": "read", "database": "app", "collection": "orders"}),
        "forbidden",
    )
    .await;
    bob.err(create("users", "x"), "forbidden").await;
    bob.err(
        json!({"type": "publish", "topic": "news", "data": 1}),
        "forbidden",
    )
    .await;
    bob.err(json!({"type": "subscribe", "topic": "sports"}), "forbidden")
        .await;
    bob.err(json!({"type": "join", "room": "general"}), "forbidden")
        .await;
    bob.ok(json!({"type": "join", "room": "team-red"}), "joined")
        .await;
    bob.subscribe("news").await;
    bob.watch_collection("users").await;

    // Alice may watch everything in `app` until she narrows her own scopes.
    let mut alice = Client::connect(&format!("{url}?token=alice-read")).await;
    alice.err(json!({"type": "watch"}), "forbidden").await;
    alice
        .ok(json!({"type": "watch", "database": "app"}), "watching")
        .await;
    root.ok(create("secret", "s1"), "created").await;
    assert_eq!(
        alice.recv_type("change").await["event"]["document_key"]["_id"],
        "s1"
    );
    alice
        .ok(
            json!({"type": "auth", "token": "alice-public"}),
            "authenticated",
        )
        .await;
    // The new scopes would refuse a watch of all of `app`: it ends (TW-END-6),
    // and a watch of what they allow takes its place.
    let ended = alice.recv_type("ended").await;
    assert_eq!(ended["reason"], "scopes_narrowed", "{ended}");
    alice
        .ok(
            json!({"type": "watch", "database": "app", "collection": "public"}),
            "watching",
        )
        .await;
    root.ok(create("secret", "s2"), "created").await;
    root.ok(create("public", "p1"), "created").await;
    root.ok(create("users", "u1"), "created").await;
    assert_eq!(
        alice.recv_type("change").await["event"]["document_key"]["_id"],
        "p1"
    );
    assert_eq!(
        bob.recv_type("change").await["event"]["document_key"]["_id"],
        "u1"
    );
    alice.expect_silence(Duration::from_millis(100)).await;
    bob.expect_silence(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn requests_invalid_on_their_own_are_invalid_message_before_forbidden() {
    // Section 4.4 (TW-CORE-23): bob may not write app.users, but a request that
    // is invalid from the request alone is answered invalid_message first.
    let server = start(auth_config(AuthMode::Required)).await;
    let mut bob = Client::connect(&format!("{}?token=bob", server.ws_url())).await;
    let bad = bob
        .err(
            json!({"type": "create", "database": "app", "collection": "users", "record": {"_id": 5}}),
            "invalid_message",
        )
        .await;
    assert_eq!(bad["error"]["details"]["path"], "record._id");
    let update = |extra: Value| {
        let mut message =
            json!({"type": "update", "database": "app", "collection": "users", "record_id": "x"});
        message
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        message
    };
    let bad = bob
        .err(update(json!({"set": {"a..b": 1}})), "invalid_message")
        .await;
    assert_eq!(bad["error"]["details"]["path"], "set.a..b");
    bob.err(update(json!({"unset": [""]})), "invalid_message")
        .await;
    let read = json!({"type": "read", "database": "app", "collection": "orders", "fields": ["a."]});
    let bad = bob.err(read, "invalid_message").await;
    assert_eq!(bad["error"]["details"]["path"], "fields[0]");
    let read = json!({"type": "read", "database": "app", "collection": "orders", "sort": [{"field": ".a"}]});
    let bad = bob.err(read, "invalid_message").await;
    assert_eq!(bad["error"]["details"]["path"], "sort[0].field");
    // The same requests, valid, are forbidden: the scope really is missing.
    bob.err(create("users", "five"), "forbidden").await;
    bob.err(update(json!({"set": {"a.b": 1}})), "forbidden")
        .await;
    bob.err(
        json!({"type": "read", "database": "app", "collection": "orders", "fields": ["a"], "sort": [{"field": "a"}]}),
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn optional_mode_gives_anonymous_connections_the_anonymous_scopes() {
    let server = start(Config {
        anonymous_scopes: vec!["read:collection:pub.*".into()],
        ..auth_config(AuthMode::Optional)
    })
    .await;
    let mut c = Client::connect(&server.ws_url()).await;
    assert_eq!(
        c.welcome["auth"],
        json!({"mode": "optional", "scopes": ["read:collection:pub.*"], "expiry_notice_ms": 30_000})
    );
    c.ok(json!({"type": "watch", "database": "pub"}), "watching")
        .await;
    c.err(json!({"type": "watch", "database": "app"}), "forbidden")
        .await;
    c.err(
        json!({"type": "create", "database": "pub", "collection": "x", "record": {}}),
        "forbidden",
    )
    .await;
    c.ok(
        json!({"type": "auth", "token": "root-token"}),
        "authenticated",
    )
    .await;
    c.ok(
        json!({"type": "create", "database": "pub", "collection": "x", "record": {}}),
        "created",
    )
    .await;
}

#[tokio::test]
async fn expiring_tokens_get_a_notice_then_4001_unless_refreshed() {
    let server = start(Config {
        token_expiry_notice: Duration::from_millis(800),
        ..auth_config(AuthMode::Required)
    })
    .await;
    let url = server.ws_url();
    let mut lapsing = Client::connect(&url).await;
    let mut refreshing = Client::connect(&url).await;
    lapsing
        .ok(
            json!({"type": "auth", "token": jwt("dora", "*", 1.2)}),
            "authenticated",
        )
        .await;
    refreshing
        .ok(
            json!({"type": "auth", "token": jwt("dora", "*", 1.2)}),
            "authenticated",
        )
        .await;

    let notice = refreshing.recv_type("notice").await;
    assert_eq!(notice["reason"], "token_expiring");
    refreshing
        .ok(
            json!({"type": "auth", "token": jwt("dora", "*", 3600.0)}),
            "authenticated",
        )
        .await;

    let (code, _, before) = lapsing.expect_close().await;
    assert_eq!(code, 4001);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["reason"], "token_expiring");
    refreshing.assert_alive().await;
}
