//! `Variant::Alternate` takes the other side of every freedom the
//! specification gives a server. Each test here runs one exchange against
//! both variants and asserts what differs, so a freedom dropped from the
//! alternate server fails a test; that its choices still conform is what the
//! suites show when they run against it (the conformance package's tests).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tidewire_server::{
    AuthMode, Config, ServerHandle, StaticToken, Variant, EXTENSION_MEMBER, EXTRA_MEMBER,
};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{start, Client, WAIT};

fn config(variant: Variant) -> Config {
    Config {
        rate_limit: None,
        heartbeat_interval: Duration::from_secs(30),
        close_grace: Duration::from_secs(2),
        ..Config::for_variant(variant)
    }
}

async fn server(variant: Variant) -> ServerHandle {
    start(config(variant)).await
}

fn has_extra(value: &Value) -> bool {
    value.get(EXTRA_MEMBER).is_some() && value.get(EXTENSION_MEMBER).is_some()
}

/// The next text frame as written, heartbeats included.
async fn raw_frame(client: &mut Client) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, client.ws.next())
            .await
            .expect("a frame within the timeout")
            .expect("the connection is open")
            .expect("the frame is readable");
        if let Message::Text(text) = frame {
            return text.to_string();
        }
    }
}

fn create(collection: &str, record: Value) -> Value {
    json!({"type": "create", "database": "app", "collection": collection, "record": record})
}

#[tokio::test]
async fn every_server_object_grows_an_unknown_member_but_client_data_does_not() {
    let server = server(Variant::Alternate).await;
    let mut c = Client::connect(&server.ws_url()).await;
    let welcome = c.welcome.clone();
    for object in [
        &welcome,
        &welcome["server"],
        &welcome["limits"],
        &welcome["auth"],
    ] {
        assert!(has_extra(object), "{object}");
    }
    c.watch_collection("grow").await;
    let record = json!({"_id": "a", "nested": {"n": 1}});
    let created = c.ok(create("grow", record.clone()), "created").await;
    assert!(has_extra(&created));
    assert_eq!(created["record"], record, "the record comes back as given");
    let change = c.recv_type("change").await;
    let event = &change["event"];
    for object in [&change, event, &event["ns"], &event["document_key"]] {
        assert!(has_extra(object), "{object}");
    }
    assert_eq!(event["full_document"], record);
    let pong = c
        .ok(json!({"type": "ping", "payload": {"p": 1}}), "pong")
        .await;
    assert_eq!(pong["payload"], json!({"p": 1}));
    let error = c
        .err(
            json!({"type": "unsubscribe", "subscription": "none"}),
            "not_found",
        )
        .await;
    assert!(has_extra(&error) && has_extra(&error["error"]), "{error}");

    let usual = self::server(Variant::Usual).await;
    let plain = Client::connect(&usual.ws_url()).await;
    assert!(!has_extra(&plain.welcome), "{}", plain.welcome);
}

#[tokio::test]
async fn a_filter_sees_the_event_with_its_extra_members() {
    // Filters see the event as it is sent (TW-WATCH-6), members added by the
    // variant included: shaping happens before any watch looks at the event.
    // A server that adds no such member refuses the path (TW-PATH-1).
    for (variant, delivered) in [(Variant::Usual, false), (Variant::Alternate, true)] {
        let server = server(variant).await;
        let mut c = Client::connect(&server.ws_url()).await;
        let mut filter = serde_json::Map::new();
        filter.insert(EXTRA_MEMBER.into(), json!({"$exists": true}));
        let watch =
            json!({"type": "watch", "database": "app", "collection": "f", "filter": filter});
        if !delivered {
            let refused = c.err(watch, "invalid_message").await;
            assert_eq!(
                refused["error"]["details"]["path"],
                format!("filter.{EXTRA_MEMBER}")
            );
            continue;
        }
        c.ok(watch, "watching").await;
        c.ok(create("f", json!({"_id": "a"})), "created").await;
        // Pushes held back by the alternate server go out before the next reply.
        c.ok(json!({"type": "ping"}), "pong").await;
        let pending = c.take_pending();
        assert_eq!(
            pending.len(),
            usize::from(delivered),
            "{variant}: {pending:?}"
        );
    }
}

#[tokio::test]
async fn ids_and_tokens_take_other_formats() {
    let usual = server(Variant::Usual).await;
    let alternate = server(Variant::Alternate).await;
    let mut formats = Vec::new();
    for server in [&usual, &alternate] {
        let mut c = Client::connect(&server.ws_url()).await;
        let connection_id = c.welcome["connection_id"].as_str().unwrap().to_string();
        let watching = c.watch_collection("ids").await;
        let subscription = watching["subscription"].as_str().unwrap().to_string();
        let token = watching["resume_token"].as_str().unwrap().to_string();
        let created = c.ok(create("ids", json!({"n": 1})), "created").await;
        let record_id = created["record"]["_id"].as_str().unwrap().to_string();
        let published = c
            .ok(
                json!({"type": "publish", "topic": "t", "data": 1}),
                "published",
            )
            .await;
        let publication = published["message_id"].as_str().unwrap().to_string();
        c.ok(json!({"type": "join", "room": "ids"}), "joined").await;
        let mut posts = Vec::new();
        for n in 0..3 {
            let posted = c
                .ok(json!({"type": "post", "room": "ids", "body": n}), "posted")
                .await;
            posts.push(posted["message_id"].as_str().unwrap().to_string());
        }
        assert!(posts.windows(2).all(|w| w[0] < w[1]), "{posts:?} increase");
        // The token of the watch resumes on both: the format is the
        // server's to read back.
        let mut again = Client::connect(&server.ws_url()).await;
        let resumed = again
            .ok(
                json!({"type": "watch", "database": "app", "collection": "ids", "resume_after": token}),
                "watching",
            )
            .await;
        assert_eq!(resumed["resumed"], true);
        formats.push((
            connection_id,
            subscription,
            token,
            record_id,
            publication,
            posts,
        ));
    }
    let (usual, alternate) = (&formats[0], &formats[1]);
    let decimal = |s: &str, prefix: &str| {
        s.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    };
    assert!(
        decimal(&usual.0, "c") && !decimal(&alternate.0, "c"),
        "{formats:?}"
    );
    assert!(
        decimal(&usual.1, "s") && !decimal(&alternate.1, "s"),
        "{formats:?}"
    );
    assert!(
        usual.2.contains(':') && !alternate.2.contains(':'),
        "{formats:?}"
    );
    let hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(hex32(&usual.3) && !hex32(&alternate.3), "{formats:?}");
    // Publication and room message ids start with their stream's epoch and a dot.
    let sequence = |s: &str| s.rsplit_once('.').map_or(s, |(_, n)| n).to_string();
    assert!(
        decimal(&sequence(&usual.4), "") && !decimal(&sequence(&alternate.4), ""),
        "{formats:?}"
    );
    assert!(
        decimal(&sequence(&usual.5[0]), "") && !decimal(&sequence(&alternate.5[0]), ""),
        "{formats:?}"
    );
}

#[tokio::test]
async fn alternate_tokens_resume_and_a_token_of_the_usual_form_is_lost() {
    let server = server(Variant::Alternate).await;
    let mut c = Client::connect(&server.ws_url()).await;
    let token = c.watch_collection("r").await["resume_token"].clone();
    c.ok(create("r", json!({"_id": "a"})), "created").await;
    let mut again = Client::connect(&server.ws_url()).await;
    let reply = again
        .ok(
            json!({"type": "watch", "database": "app", "collection": "r", "resume_after": token}),
            "watching",
        )
        .await;
    assert_eq!(reply["resumed"], true);
    let replayed = again.recv_type("change").await;
    assert_eq!(replayed["event"]["document_key"]["_id"], "a");
    let usual_form = format!("{}:0", server.epoch());
    again
        .err(
            json!({"type": "watch", "database": "app", "collection": "r", "resume_after": usual_form}),
            "history_lost",
        )
        .await;
}

#[tokio::test]
async fn subscription_ids_differ_between_connections() {
    let server = server(Variant::Alternate).await;
    let mut a = Client::connect(&server.ws_url()).await;
    let mut b = Client::connect(&server.ws_url()).await;
    let first = a.subscribe("t").await["subscription"].clone();
    let second = b.subscribe("t").await["subscription"].clone();
    assert_ne!(first, second, "the usual server names both s1");
}

#[tokio::test]
async fn error_notice_and_server_texts_are_worded_otherwise() {
    let mut texts = Vec::new();
    for variant in [Variant::Usual, Variant::Alternate] {
        let server = server(variant).await;
        let mut c = Client::connect(&server.ws_url()).await;
        let mut errors = Vec::new();
        for request in [
            json!({"type": "unsubscribe", "subscription": "none"}),
            json!({"type": "read", "database": "app", "collection": "x", "limit": "ten"}),
            json!({"type": "leave", "room": "nowhere"}),
        ] {
            let reply = c.request(request).await;
            errors.push(reply["error"]["message"].as_str().unwrap().to_string());
        }
        let server_info = &c.welcome["server"];
        let name = format!("{} {}", server_info["name"], server_info["version"]);
        server.shutdown().await;
        let (_, _, before) = c.expect_close().await;
        let notice = before.last().expect("a notice before the close")["message"]
            .as_str()
            .unwrap()
            .to_string();
        texts.push((errors, name, notice));
    }
    let (usual, alternate) = (&texts[0], &texts[1]);
    for (u, a) in usual.0.iter().zip(&alternate.0) {
        assert!(
            !u.contains(a.as_str()) && !a.contains(u.as_str()),
            "{u:?} / {a:?}"
        );
    }
    assert_ne!(usual.1, alternate.1);
    assert_ne!(usual.2, alternate.2);
}

#[tokio::test]
async fn unordered_arrays_come_reversed_and_frames_differ_in_layout() {
    let mut seen = Vec::new();
    for variant in [Variant::Usual, Variant::Alternate] {
        let server = server(variant).await;
        let mut a = Client::connect(&server.ws_url()).await;
        let profiles = a.welcome["profiles"].clone();
        a.ok(json!({"type": "join", "room": "order"}), "joined")
            .await;
        let mut c = Client::connect(&server.ws_url()).await;
        let joined = c
            .ok(json!({"type": "join", "room": "order"}), "joined")
            .await;
        let members: Vec<Value> = joined["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["connection_id"].clone())
            .collect();
        c.send(json!({"type": "ping", "id": "layout"})).await;
        let text = raw_frame(&mut c).await;
        seen.push((profiles, members, a.welcome["connection_id"].clone(), text));
    }
    let (usual, alternate) = (&seen[0], &seen[1]);
    let mut reversed = usual.0.as_array().unwrap().clone();
    reversed.reverse();
    assert_eq!(&Value::Array(reversed), &alternate.0);
    assert_eq!(
        usual.1[0], usual.2,
        "the usual server lists members as they joined"
    );
    assert_eq!(
        alternate.1[1], alternate.2,
        "the alternate one the newest first"
    );
    assert!(usual.3.starts_with(r#"{"type":"pong""#), "{}", usual.3);
    assert!(
        alternate.3.starts_with("{\n") && alternate.3.trim_end().ends_with("\"pong\"\n}"),
        "whitespace between tokens, `type` last: {}",
        alternate.3
    );
}

#[tokio::test]
async fn timestamps_carry_microseconds() {
    let server = server(Variant::Alternate).await;
    let mut c = Client::connect(&server.ws_url()).await;
    c.watch_collection("ts").await;
    c.ok(create("ts", json!({"_id": "a"})), "created").await;
    let change = c.recv_type("change").await;
    let published = c
        .ok(
            json!({"type": "publish", "topic": "ts", "data": 1}),
            "published",
        )
        .await;
    for at in [&change["event"]["committed_at"], &published["published_at"]] {
        let at = at.as_str().unwrap();
        let fraction = at.rsplit_once('.').unwrap().1;
        assert_eq!(fraction.len(), "123456Z".len(), "{at}");
    }
}

#[tokio::test]
async fn pushes_of_different_subscriptions_come_in_another_order() {
    let mut orders = Vec::new();
    for variant in [Variant::Usual, Variant::Alternate] {
        let server = server(variant).await;
        let mut c = Client::connect(&server.ws_url()).await;
        let first = c.watch_collection("o").await["subscription"].clone();
        let second = c.watch_collection("o").await["subscription"].clone();
        let mut write = create("o", json!({"_id": "a"}));
        write["id"] = json!("w1");
        c.send(write).await;
        let mut order = Vec::new();
        for _ in 0..3 {
            let message = c.recv().await;
            order.push(match message["type"].as_str().unwrap() {
                "change" if message["subscription"] == first => "first",
                "change" if message["subscription"] == second => "second",
                other => {
                    assert_eq!(other, "created", "{message}");
                    "created"
                }
            });
        }
        orders.push(order);
    }
    assert_eq!(orders[0], ["first", "second", "created"]);
    assert_eq!(orders[1], ["created", "second", "first"]);
}

#[tokio::test]
async fn a_held_push_goes_out_before_its_unsubscribed() {
    let server = server(Variant::Alternate).await;
    let mut c = Client::connect(&server.ws_url()).await;
    let subscription = c.watch_collection("u").await["subscription"].clone();
    let mut write = create("u", json!({"_id": "a"}));
    write["id"] = json!("w1");
    c.send(write).await;
    c.send(json!({"type": "unsubscribe", "id": "u1", "subscription": subscription}))
        .await;
    let mut types = Vec::new();
    for _ in 0..3 {
        types.push(c.recv().await["type"].as_str().unwrap().to_string());
    }
    assert_eq!(types, ["created", "change", "unsubscribed"], "TW-CORE-32");
}

#[tokio::test]
async fn heartbeats_come_early_in_the_window() {
    let interval = Duration::from_millis(1000);
    let mut first_beat = Vec::new();
    for variant in [Variant::Usual, Variant::Alternate] {
        let server = start(Config {
            heartbeat_interval: interval,
            ..config(variant)
        })
        .await;
        let mut c = Client::connect(&server.ws_url()).await;
        let opened = Instant::now();
        let text = raw_frame(&mut c).await;
        assert!(text.contains("heartbeat"), "{text}");
        first_beat.push(opened.elapsed());
    }
    assert!(first_beat[0] >= interval * 9 / 10, "{first_beat:?}");
    assert!(first_beat[1] < interval * 9 / 10, "{first_beat:?}");
}

#[tokio::test]
async fn the_alternate_defaults_are_wider() {
    let usual = Config::for_variant(Variant::Usual);
    let alternate = Config::for_variant(Variant::Alternate);
    assert_eq!(alternate.variant, Variant::Alternate);
    assert!(alternate.room_history > usual.room_history);
    assert!(alternate.journal_retention > usual.journal_retention);
    assert!(alternate.heartbeat_interval > usual.heartbeat_interval);
    assert!(alternate.auth_timeout > usual.auth_timeout);
    assert!(alternate.token_expiry_notice > usual.token_expiry_notice);
    assert!(alternate.max_connections > usual.max_connections);
    let server = start(Config::for_variant(Variant::Alternate)).await;
    let c = Client::connect(&server.ws_url()).await;
    let limits = &c.welcome["limits"];
    assert!(limits["max_message_bytes"].as_u64() > Some(usual.max_message_bytes as u64));
    assert!(limits["max_nesting_depth"].as_u64() > Some(u64::from(usual.max_nesting_depth)));
    assert!(limits["max_subscriptions"].as_u64() > Some(u64::from(usual.max_subscriptions)));
    assert!(limits["outbound_queue"].as_u64() > Some(usual.outbound_queue as u64));
    let usual_rate = usual.rate_limit.unwrap().messages;
    assert!(limits["rate"]["messages"].as_u64() > Some(u64::from(usual_rate)));
}

#[tokio::test]
async fn granted_scopes_come_reversed() {
    let scopes = ["read:collection:*", "subscribe:topic:*", "join:room:*"];
    let mut granted = Vec::new();
    for variant in [Variant::Usual, Variant::Alternate] {
        let token = StaticToken {
            principal: "p".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            display_name: None,
        };
        let server = start(Config {
            auth_mode: AuthMode::Optional,
            tokens: HashMap::from([("t".to_string(), token)]),
            ..config(variant)
        })
        .await;
        let mut c = Client::connect(&server.ws_url()).await;
        let reply = c
            .ok(json!({"type": "auth", "token": "t"}), "authenticated")
            .await;
        granted.push(reply["scopes"].clone());
    }
    assert_eq!(granted[0], json!(scopes));
    let mut reversed = scopes;
    reversed.reverse();
    assert_eq!(granted[1], json!(reversed));
}

#[tokio::test]
async fn removed_fields_come_reversed_for_filters_too() {
    let mut removed = Vec::new();
    for variant in [Variant::Usual, Variant::Alternate] {
        let server = server(variant).await;
        let mut c = Client::connect(&server.ws_url()).await;
        // The filter sees the event as sent: its first removed field is the
        // last one unset on the alternate server.
        let last_first = json!({"update_description.removed_fields.0": "b"});
        c.ok(
            json!({"type": "watch", "database": "app", "collection": "rm", "filter": last_first}),
            "watching",
        )
        .await;
        c.watch_collection("rm").await;
        c.ok(
            create("rm", json!({"_id": "a", "a": 1, "b": 2, "c": 3})),
            "created",
        )
        .await;
        let update = json!({"type": "update", "database": "app", "collection": "rm",
            "record_id": "a", "unset": ["a", "b"]});
        c.ok(update, "updated").await;
        c.ok(json!({"type": "ping"}), "pong").await;
        let updates: Vec<Value> = c
            .take_pending()
            .into_iter()
            .filter(|m| m["event"]["operation_type"] == "update")
            .map(|m| m["event"]["update_description"]["removed_fields"].clone())
            .collect();
        removed.push(updates);
    }
    assert_eq!(removed[0], [json!(["a", "b"])]);
    assert_eq!(removed[1], [json!(["b", "a"]), json!(["b", "a"])]);
}

#[tokio::test]
async fn close_reasons_no_requirement_names_are_worded_otherwise() {
    let mut reasons = Vec::new();
    for variant in [Variant::Usual, Variant::Alternate] {
        let server = server(variant).await;
        let mut c = Client::connect(&server.ws_url()).await;
        c.send_message(Message::binary(vec![1u8, 2, 3])).await;
        let (code, reason, _) = c.expect_close().await;
        assert_eq!(code, 1003);
        reasons.push(reason);
    }
    assert_ne!(reasons[0], reasons[1]);
}
