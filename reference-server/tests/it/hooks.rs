//! The embedding seams: operation hooks, the outbound filter, and fault switches.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{config, start, Client, WAIT};
use serde_json::json;
use tidewire_protocol::{
    ClientMessage, ErrorBody, ErrorCode, ExtensionCode, Recovery, ServerMessage,
};
use tidewire_server::{Config, Faults, Outgoing, RateLimit};

#[tokio::test]
async fn before_hooks_can_reject_and_after_hooks_see_outcomes() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let config = config()
        .before_operation(|ctx| match ctx.request {
            ClientMessage::Create(create)
                if create
                    .collection
                    .as_ref()
                    .is_some_and(|c| c.as_str() == "locked") =>
            {
                Err(ErrorBody {
                    code: ErrorCode::Forbidden.into(),
                    message: "locked by policy".into(),
                    details: None,
                    retry: None,
                })
            }
            _ => Ok(()),
        })
        .after_operation(move |ctx, outcome| {
            log.lock().unwrap().push(format!(
                "{} {} -> {}",
                ctx.principal,
                ctx.request.tag(),
                outcome.tag()
            ));
        });
    let server = start(config).await;
    let mut c = Client::connect(&server.ws_url()).await;
    let refused = c
        .err(
            json!({"type": "create", "database": "app", "collection": "locked", "record": {}}),
            "forbidden",
        )
        .await;
    assert_eq!(refused["error"]["message"], "locked by policy");
    // The server states the registry's class when the hook gives none (TW-XERR-1).
    assert_eq!(refused["error"]["retry"], "terminal");
    c.ok(
        json!({"type": "create", "database": "app", "collection": "open", "record": {}}),
        "created",
    )
    .await;
    c.ok(
        json!({"type": "read", "database": "app", "collection": "locked"}),
        "records",
    )
    .await;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "anonymous create -> error",
            "anonymous create -> created",
            "anonymous read -> records"
        ]
    );
}

#[tokio::test]
async fn the_outbound_filter_can_drop_duplicate_and_alter_messages() {
    let filter = |_connection: &str, message: ServerMessage| -> Vec<Outgoing> {
        match &message {
            ServerMessage::Pong(pong) if pong.id.as_str() == "drop" => vec![],
            ServerMessage::Pong(pong) if pong.id.as_str() == "dup" => {
                vec![
                    Outgoing::now(message.clone()),
                    Outgoing::after(Duration::from_millis(10), message),
                ]
            }
            ServerMessage::Pong(pong) if pong.id.as_str() == "alter" => {
                let mut pong = pong.clone();
                pong.payload = Some(json!("altered"));
                vec![Outgoing::now(ServerMessage::Pong(pong))]
            }
            _ => vec![Outgoing::now(message)],
        }
    };
    let server = start(config().with_outbound_filter(filter)).await;
    let mut c = Client::connect(&server.ws_url()).await;
    for id in ["drop", "dup", "alter", "plain"] {
        c.send(json!({"type": "ping", "id": id})).await;
    }
    let ids: Vec<String> = [
        c.recv().await,
        c.recv().await,
        c.recv().await,
        c.recv().await,
    ]
    .iter()
    .map(|m| {
        format!(
            "{}:{}",
            m["id"].as_str().unwrap(),
            m.get("payload").map_or("-", |p| p.as_str().unwrap())
        )
    })
    .collect();
    assert_eq!(ids, ["dup:-", "dup:-", "alter:altered", "plain:-"]);
}

#[tokio::test]
async fn fault_switches_skip_heartbeats_and_ignore_the_rate_limit() {
    let server = start(Config {
        heartbeat_interval: Duration::from_millis(30),
        rate_limit: Some(RateLimit {
            messages: 2,
            window_ms: 60_000,
        }),
        faults: Faults {
            skip_heartbeats: true,
            ignore_rate_limit: true,
            ..Faults::default()
        },
        ..config()
    })
    .await;
    let mut c = Client::connect(&server.ws_url()).await;
    assert_eq!(c.welcome["limits"]["rate"]["messages"], 2);
    for n in 0..6 {
        c.send(json!({"type": "ping", "id": format!("{n}")})).await;
    }
    for n in 0..6 {
        assert_eq!(c.recv_type("pong").await["id"], format!("{n}"));
    }
    // No heartbeat for many intervals.
    let quiet = tokio::time::timeout(
        Duration::from_millis(200),
        futures_util::StreamExt::next(&mut c.ws),
    )
    .await;
    assert!(quiet.is_err(), "expected silence, got {quiet:?}");
}

#[tokio::test]
async fn hooks_answer_with_application_codes_and_their_retry_class() {
    let config = config().before_operation(|ctx| match ctx.request {
        ClientMessage::Create(create)
            if create
                .collection
                .as_ref()
                .is_some_and(|c| c.as_str() == "busy") =>
        {
            Err(ErrorBody {
                code: ExtensionCode::new("x-backend_busy").unwrap().into(),
                message: "the backend is busy".into(),
                details: None,
                retry: Some(Recovery::Retryable),
            })
        }
        ClientMessage::Create(create)
            if create
                .collection
                .as_ref()
                .is_some_and(|c| c.as_str() == "checked") =>
        {
            Err(ErrorBody {
                code: ExtensionCode::new("x-validation_error").unwrap().into(),
                message: "the record does not validate".into(),
                details: None,
                retry: None,
            })
        }
        _ => Ok(()),
    });
    let server = start(config).await;
    let mut c = Client::connect(&server.ws_url()).await;
    let busy = c
        .err(
            json!({"type": "create", "database": "app", "collection": "busy", "record": {}}),
            "x-backend_busy",
        )
        .await;
    assert_eq!(busy["error"]["retry"], "retryable");
    let checked = c
        .err(
            json!({"type": "create", "database": "app", "collection": "checked", "record": {}}),
            "x-validation_error",
        )
        .await;
    assert_eq!(checked["error"]["retry"], "terminal");
}

/// A large request is handled off the runtime: while one is held inside a
/// hook, another connection's ping is answered on the same one-thread
/// runtime, and the held request's reply comes once it is let go, in order.
#[tokio::test(flavor = "current_thread")]
async fn a_held_large_request_does_not_stall_another_connection() {
    let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let entered_tx = Mutex::new(Some(entered_tx));
    let released = Mutex::new(released);
    let let_go_in_time = Arc::new(Mutex::new(None));
    let outcome = let_go_in_time.clone();
    let config = config().before_operation(move |ctx| {
        if let ClientMessage::Ping(ping) = ctx.request {
            if ping.id.as_str() == "large" {
                if let Some(entered) = entered_tx.lock().unwrap().take() {
                    let _ = entered.send(());
                }
                // Inline on the test's runtime this would block the ping
                // below until the timeout, and record that it did.
                let waited = released.lock().unwrap().recv_timeout(WAIT);
                *outcome.lock().unwrap() = Some(waited.is_ok());
            }
        }
        Ok(())
    });
    let server = start(config).await;
    let mut large = Client::connect(&server.ws_url()).await;
    let mut other = Client::connect(&server.ws_url()).await;
    let pad = "x".repeat(64 * 1024);
    large
        .send(json!({"type": "ping", "id": "large", "payload": {"pad": pad}}))
        .await;
    large.send(json!({"type": "ping", "id": "after"})).await;
    tokio::time::timeout(WAIT, entered)
        .await
        .expect("the large request reaches the hook")
        .unwrap();
    other.ok(json!({"type": "ping"}), "pong").await;
    release.send(()).unwrap();
    let first = large.recv().await;
    assert_eq!(
        (first["type"].as_str(), first["id"].as_str()),
        (Some("pong"), Some("large"))
    );
    assert_eq!(
        first["payload"]["pad"].as_str().map(str::len),
        Some(64 * 1024)
    );
    let second = large.recv().await;
    assert_eq!(second["id"], "after");
    assert_eq!(
        *let_go_in_time.lock().unwrap(),
        Some(true),
        "the other connection's ping was answered while the large request was held"
    );
}
