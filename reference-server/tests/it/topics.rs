//! Profile topics: publish and subscribe with filters.

use std::time::Duration;

use crate::common::{config, start, Client};
use serde_json::json;

#[tokio::test]
async fn publications_reach_matching_subscriptions_in_order() {
    let server = start(config()).await;
    let mut publisher = Client::connect(&server.ws_url()).await;
    let mut all = Client::connect(&server.ws_url()).await;
    let mut hot = Client::connect(&server.ws_url()).await;
    let all_sub = all.subscribe("metrics.cpu").await["subscription"].clone();
    let hot_sub = hot
        .ok(
            json!({"type": "subscribe", "topic": "metrics.cpu", "filter": {"load": {"$gt": 0.9}}}),
            "subscribed",
        )
        .await["subscription"]
        .clone();
    publisher.subscribe("metrics.cpu").await;

    let mut message_ids = Vec::new();
    for load in [0.5, 0.95, 0.2, 0.99] {
        let published = publisher
            .ok(
                json!({"type": "publish", "topic": "metrics.cpu", "data": {"load": load}}),
                "published",
            )
            .await;
        assert_eq!(published["topic"], "metrics.cpu");
        assert!(published["published_at"].as_str().unwrap().ends_with('Z'));
        message_ids.push(published["message_id"].clone());
    }
    for id in &message_ids {
        let publication = all.recv_type("publication").await;
        assert_eq!(publication["subscription"], all_sub);
        assert_eq!(&publication["message_id"], id);
        assert_eq!(publication["publisher"], "anonymous");
        assert_eq!(publication["topic"], "metrics.cpu");
    }
    for (n, load) in [(1, 0.95), (3, 0.99)] {
        let publication = hot.recv_type("publication").await;
        assert_eq!(publication["subscription"], hot_sub);
        assert_eq!(publication["message_id"], message_ids[n]);
        assert_eq!(publication["data"], json!({"load": load}));
    }
    // The publisher's own subscription sees its publications too.
    for id in &message_ids {
        assert_eq!(&publisher.recv_type("publication").await["message_id"], id);
    }
    hot.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn filters_over_non_objects_see_missing_fields() {
    let server = start(config()).await;
    let mut c = Client::connect(&server.ws_url()).await;
    c.ok(
        json!({"type": "subscribe", "topic": "t", "filter": {"x": {"$exists": false}}}),
        "subscribed",
    )
    .await;
    c.ok(
        json!({"type": "subscribe", "topic": "t", "filter": {"x": 1}}),
        "subscribed",
    )
    .await;
    c.ok(
        json!({"type": "publish", "topic": "t", "data": 42}),
        "published",
    )
    .await;
    let publication = c.recv_type("publication").await;
    assert_eq!(
        (publication["subscription"].as_str(), &publication["data"]),
        (Some("s1"), &json!(42))
    );
    c.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn invalid_topic_filters_and_unsubscribe() {
    let server = start(config()).await;
    let mut c = Client::connect(&server.ws_url()).await;
    c.invalid_at(
        json!({"type": "subscribe", "topic": "t", "filter": {"a": {"$nope": 1}}}),
        "filter",
    )
    .await;
    c.err(
        json!({"type": "subscribe", "topic": "bad topic"}),
        "invalid_message",
    )
    .await;
    let sub = c.subscribe("t").await["subscription"].clone();
    c.ok(
        json!({"type": "unsubscribe", "subscription": sub}),
        "unsubscribed",
    )
    .await;
    c.ok(
        json!({"type": "publish", "topic": "t", "data": {}}),
        "published",
    )
    .await;
    c.expect_silence(Duration::from_millis(100)).await;
}
