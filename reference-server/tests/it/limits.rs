//! Profiles limits and stats: rate limit and abuse, capacity, origins, and counters.

use std::time::Duration;

use crate::common::{config, expect_refused, open, start, Client};
use serde_json::json;
use tidewire_server::{Config, RateLimit};

fn rate(messages: u32, window_ms: u64) -> Config {
    Config {
        rate_limit: Some(RateLimit {
            messages,
            window_ms,
        }),
        ..config()
    }
}

#[tokio::test]
async fn messages_over_the_rate_get_rate_limited_with_retry_after() {
    let server = start(rate(5, 400)).await;
    let mut c = Client::connect(&server.ws_url()).await;
    assert_eq!(
        c.welcome["limits"]["rate"],
        json!({"messages": 5, "window_ms": 400})
    );
    for n in 0..6 {
        c.send(json!({"type": "ping", "id": format!("p{n}")})).await;
    }
    for n in 0..5 {
        assert_eq!(c.recv_type("pong").await["id"], format!("p{n}"));
    }
    let limited = c.recv_type("error").await;
    assert_eq!(limited["id"], "p5");
    assert_eq!(limited["error"]["code"], "rate_limited");
    let retry = limited["error"]["details"]["retry_after_ms"]
        .as_u64()
        .unwrap();
    assert!((1..=400).contains(&retry), "{limited}");
    tokio::time::sleep(Duration::from_millis(retry + 20)).await;
    c.assert_alive().await;
}

#[tokio::test]
async fn flooding_past_twice_the_limit_closes_with_4005_and_the_window_as_delay() {
    let server = start(rate(3, 60_000)).await;
    let mut c = Client::connect(&server.ws_url()).await;
    for n in 0..7 {
        c.send(json!({"type": "ping", "id": format!("p{n}")})).await;
    }
    let (code, reason, before) = c.expect_close().await;
    assert_eq!(code, 4005);
    assert_eq!(
        tidewire_protocol::close_reason_delay(&reason),
        Some(60_000),
        "{reason}"
    );
    let kinds: Vec<&str> = before.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["pong", "pong", "pong", "error", "error", "error"]);
}

#[tokio::test]
async fn connections_beyond_capacity_close_with_1013() {
    let server = start(Config {
        max_connections: 2,
        ..config()
    })
    .await;
    let url = server.ws_url();
    let a = Client::connect(&url).await;
    let mut b = Client::connect(&url).await;
    let (ws, _) = open(&url, &[]).await.unwrap();
    assert_eq!(expect_refused(ws).await, (1013, "at capacity".to_string()));
    b.assert_alive().await;
    drop(a);
    // The slot frees once the server has seen the connection end.
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    loop {
        let (mut ws, _) = open(&url, &[]).await.unwrap();
        let first =
            tokio::time::timeout(crate::common::WAIT, futures_util::StreamExt::next(&mut ws))
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        if first.is_text() {
            assert!(first.to_text().unwrap().contains("\"welcome\""));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn origins_outside_the_allow_list_close_with_4004() {
    let server = start(Config {
        allowed_origins: vec!["https://app.example".into()],
        ..config()
    })
    .await;
    let url = server.ws_url();
    let (ws, _) = open(&url, &[("origin", "https://evil.example")])
        .await
        .unwrap();
    assert_eq!(
        expect_refused(ws).await,
        (4004, "origin not allowed".to_string())
    );
    let mut allowed = Client::connect_with(&url, &[("origin", "https://app.example")]).await;
    allowed.assert_alive().await;
    let mut no_origin = Client::connect(&url).await;
    no_origin.assert_alive().await;
}

#[tokio::test]
async fn get_stats_counts_connections_subscriptions_rooms_and_messages() {
    let server = start(config()).await;
    let mut a = Client::connect(&server.ws_url()).await;
    let mut b = Client::connect(&server.ws_url()).await;
    b.ok(json!({"type": "watch"}), "watching").await;
    a.subscribe("t").await;
    a.ok(json!({"type": "join", "room": "r"}), "joined").await;
    a.send_text("garbage").await;
    a.recv_type("error").await;
    let stats = a.ok(json!({"type": "get_stats"}), "stats").await;
    let server_stats = &stats["server"];
    assert_eq!(server_stats["connections"], 2);
    assert_eq!(server_stats["subscriptions"], 2);
    assert_eq!(server_stats["rooms"], 1);
    assert!(server_stats["messages_in"].as_u64().unwrap() >= 5);
    assert!(server_stats["uptime_ms"].is_u64());
    // a sent: subscribe, join, garbage, get_stats; it received welcome,
    // subscribed, joined and the error before the stats reply.
    assert_eq!(
        stats["connection"],
        json!({"subscriptions": 1, "rooms": 1, "messages_in": 4, "messages_out": 4})
    );
    assert_eq!(server.stats().subscriptions, 2);
}

/// The byte bound alone (the message bound is far away) cuts off a subscriber
/// that stops reading large publications, with the usual notice and 4002.
#[tokio::test]
async fn the_outbound_byte_bound_makes_a_slow_consumer() {
    let server = start(Config {
        outbound_queue_bytes: 256 * 1024,
        ..config()
    })
    .await;
    let mut publisher = Client::connect(&server.ws_url()).await;
    let mut slow = Client::connect(&server.ws_url()).await;
    assert_eq!(slow.welcome["limits"]["outbound_queue_bytes"], 256 * 1024);
    slow.subscribe("bulk").await;
    let data = "x".repeat(64 * 1024);
    for _ in 0..2000 {
        publisher
            .ok(
                json!({"type": "publish", "topic": "bulk", "data": data}),
                "published",
            )
            .await;
        if server.stats().subscriptions == 0 {
            break;
        }
    }
    assert_eq!(
        server.stats().subscriptions,
        0,
        "the slow consumer was never cut off"
    );
    let (code, _, before) = slow.expect_close().await;
    assert_eq!(code, 4002);
    let notice = before.last().expect("a notice before the close");
    assert_eq!(notice["reason"], "slow_consumer");
}

#[tokio::test]
async fn welcome_announces_the_filter_bounds_it_enforces() {
    let server = start(config()).await;
    let mut c = Client::connect(&server.ws_url()).await;
    let bounds = c.welcome["limits"]["filter"].clone();
    let branches = bounds["max_branches"].as_u64().unwrap();
    let at_bound: Vec<_> = (0..branches).map(|n| json!({"n": n})).collect();
    c.ok(
        json!({"type": "read", "database": "app", "collection": "c", "filter": {"$or": at_bound}}),
        "records",
    )
    .await;
    let over: Vec<_> = (0..=branches).map(|n| json!({"n": n})).collect();
    let reply = c
        .invalid_at(
            json!({"type": "read", "database": "app", "collection": "c", "filter": {"$or": over}}),
            "filter.$or",
        )
        .await;
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("limit"));
    let pattern = "%".repeat(bounds["max_pattern_chars"].as_u64().unwrap() as usize + 1);
    c.invalid_at(
        json!({"type": "read", "database": "app", "collection": "c", "filter": {"s": {"$like": pattern}}}),
        "filter.s.$like",
    )
    .await;
}

#[tokio::test]
async fn a_handshake_over_the_connection_rate_gets_429_with_retry_after() {
    let server = start(Config {
        connect_rate: Some(tidewire_server::ConnectRate {
            attempts: 2,
            window_ms: 30_000,
        }),
        ..config()
    })
    .await;
    let first = Client::connect(&server.ws_url()).await;
    assert_eq!(
        first.welcome["limits"]["connect_rate"],
        json!({"attempts": 2, "window_ms": 30_000})
    );
    let _second = Client::connect(&server.ws_url()).await;
    let upgrade = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let (status, response) = crate::common::http_get(server.local_addr(), "/v1", &upgrade).await;
    assert_eq!(status, 429, "{response}");
    let retry_after: u64 = response
        .lines()
        .find_map(|line| line.strip_prefix("retry-after: "))
        .and_then(|value| value.trim().parse().ok())
        .expect("a Retry-After header in whole seconds");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    // Plain HTTP requests are no handshakes and are never refused for the rate.
    let (status, _) = crate::common::http_get(server.local_addr(), "/healthz", &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn posts_over_the_room_post_rate_are_refused_and_not_kept() {
    let server = start(Config {
        room_post_rate: Some(RateLimit {
            messages: 2,
            window_ms: 30_000,
        }),
        ..config()
    })
    .await;
    let mut c = Client::connect(&server.ws_url()).await;
    c.request(json!({"type": "join", "id": "j", "room": "r"}))
        .await;
    for n in 0..2 {
        c.send(json!({"type": "post", "id": format!("p{n}"), "room": "r", "body": n}))
            .await;
    }
    let mut posted = 0;
    let mut pushed = 0;
    while posted < 2 || pushed < 2 {
        match c.recv().await["type"].as_str() {
            Some("posted") => posted += 1,
            Some("room_message") => pushed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let refused = c
        .request(json!({"type": "post", "id": "p2", "room": "r", "body": 2}))
        .await;
    assert_eq!(refused["error"]["code"], "rate_limited");
    assert_eq!(refused["error"]["details"]["limit"], "room_post_rate");
    assert!(refused["error"]["details"]["retry_after_ms"].as_u64() >= Some(1));
    let page = c
        .request(json!({"type": "history", "id": "h", "room": "r"}))
        .await;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(2));
}
