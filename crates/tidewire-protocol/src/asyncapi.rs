//! Generation of the AsyncAPI 3.0 document `spec/asyncapi.json` from the message
//! types, for documentation and code-generation tools that read AsyncAPI.
//!
//! The payload schemas are the same definitions as in `spec/schema/` (see
//! [`crate::schema`]), moved to `components/schemas` with their references
//! rewritten. Every message carries hand-written examples built from the Rust
//! types, so they are valid by construction and a test checks them against
//! their payload schemas. The document describes the server: it `receive`s the
//! client messages and `send`s the server messages.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::schema::{self, Definitions};
use crate::*;

/// The AsyncAPI version of the document.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// The key of the one channel: the WebSocket connection.
pub const CHANNEL: &str = "tidewire";

/// Where the checked-in document lives.
pub fn default_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/asyncapi.json")
}

/// The document as written to disk: pretty-printed, with a final newline.
pub fn to_json() -> String {
    let mut text = serde_json::to_string_pretty(&generate()).expect("the document serializes");
    text.push('\n');
    text
}

/// Writes the document to `path`.
pub fn write(path: &Path) -> std::io::Result<()> {
    std::fs::write(path, to_json())
}

/// The server message that answers requests that fail.
const ERROR_TAG: &str = "error";

/// A named example of one message.
pub struct Example<M> {
    pub name: &'static str,
    pub summary: &'static str,
    pub message: M,
}

fn example<M>(name: &'static str, summary: &'static str, message: impl Into<M>) -> Example<M> {
    Example {
        name,
        summary,
        message: message.into(),
    }
}

/// The AsyncAPI 3.0 document.
pub fn generate() -> Value {
    let client = schema::definitions(&ClientMessage::variants());
    let server = schema::definitions(&ServerMessage::variants());
    let client_examples = client_examples();
    let server_examples = server_examples();

    let mut schemas = Map::new();
    merge_definitions(&mut schemas, &client);
    merge_definitions(&mut schemas, &server);
    schemas.sort_keys();

    // Message keys are the Rust type names: unique across both directions, where
    // tags are not (`typing` is both a request and a push).
    let mut messages = Map::new();
    add_messages(&mut messages, &client, &client_examples, ClientMessage::tag);
    let server_names = add_messages(&mut messages, &server, &server_examples, ServerMessage::tag);
    let mut operations = request_operations(&client, &server_names);
    operations.extend(push_operations(&server, &server_examples));

    let channel_messages: Map<String, Value> = messages
        .keys()
        .map(|name| {
            (
                name.clone(),
                json!({ "$ref": format!("#/components/messages/{name}") }),
            )
        })
        .collect();

    json!({
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:tidewire:protocol:v1",
        "info": {
            "title": "Tidewire",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "Tidewire v1: a realtime protocol over one WebSocket connection (subprotocol `{SUBPROTOCOL}`). \
                 Every frame is a JSON text frame whose `type` field names the message. \
                 The server sends `welcome` first; every client message is a request carrying a client-chosen `id`, \
                 answered by exactly one terminal reply with the same `id` (its success reply or `error`); \
                 the server also pushes messages that answer no request (`change`, `publication`, ...).\n\n\
                 This document describes a Tidewire server: it receives the client messages and sends the server messages. \
                 It is generated from the Rust message types, like the JSON Schemas in `spec/schema/`."
            ),
            "license": { "name": env!("CARGO_PKG_LICENSE") },
            "contact": { "name": "Tidewire", "url": env!("CARGO_PKG_REPOSITORY") },
            "tags": [{ "name": "tidewire" }],
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:{port}",
                "protocol": "ws",
                "title": "A server on this machine",
                "description": "A Tidewire server, such as the reference server `tidewire-server`, listening on this machine.",
                "variables": {
                    "port": { "description": "The port the server listens on.", "default": "8080" },
                },
            },
        },
        "channels": {
            CHANNEL: channel(channel_messages),
        },
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
        },
    })
}

/// The one channel, the WebSocket connection, carrying `messages`.
fn channel(messages: Map<String, Value>) -> Value {
    json!({
        "address": "/v1",
        "title": "Tidewire connection",
        "description": format!(
            "One WebSocket connection, at the conventional path `/v1`. The client offers the subprotocol \
             `{SUBPROTOCOL}` and the server selects it; every message of both directions is a JSON text \
             frame with a `type`. A token may be presented at the handshake (query parameter `token` or \
             header `Authorization: Bearer <token>`) or in-band with `auth`."
        ),
        "servers": [{ "$ref": "#/servers/local" }],
        "messages": messages,
        "bindings": {
            "ws": {
                "bindingVersion": "0.1.0",
                "method": "GET",
                "query": {
                    "type": "object",
                    "properties": {
                        "token": {
                            "type": "string",
                            "description": "A static token or an HS256 JWT. Ignored when the `Authorization` header carries one.",
                        },
                    },
                },
                "headers": {
                    "type": "object",
                    "properties": {
                        "Sec-WebSocket-Protocol": {
                            "type": "string",
                            "description": format!(
                                "The subprotocols the client offers. A client offering any must offer \
                                 `{SUBPROTOCOL}`, which the server then selects; without it the handshake \
                                 is refused with HTTP status 400."
                            ),
                            "examples": [SUBPROTOCOL],
                        },
                        "Authorization": {
                            "type": "string",
                            "pattern": "^Bearer .+$",
                            "description": "`Bearer <token>`: the token, taking precedence over the query parameter.",
                        },
                    },
                },
            },
        },
    })
}

fn channel_ref() -> Value {
    json!({ "$ref": format!("#/channels/{CHANNEL}") })
}

fn channel_message(name: &str) -> Value {
    json!({ "$ref": format!("#/channels/{CHANNEL}/messages/{name}") })
}

/// A `receive` operation per request, replied to with its success replies (from
/// the message table) or `error`.
fn request_operations(
    client: &Definitions,
    server_names: &Map<String, Value>,
) -> Map<String, Value> {
    let channel_ref = channel_ref();
    let mut operations = Map::new();
    for (tag, name) in client.messages() {
        let reply_tags = ClientMessage::REPLIES
            .iter()
            .find(|(request, _)| *request == tag)
            .expect("every request has a row in the message table")
            .1;
        let mut reply_messages: Vec<Value> = reply_tags
            .iter()
            .map(|reply| channel_message(server_names[*reply].as_str().expect("names are strings")))
            .collect();
        reply_messages.push(channel_message(
            server_names[ERROR_TAG].as_str().expect("names are strings"),
        ));
        let replies_named = reply_tags
            .iter()
            .map(|reply| format!("`{reply}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let description = client.defs[name]["description"]
            .as_str()
            .unwrap_or_default();
        operations.insert(
            format!("receive_{tag}"),
            json!({
                "action": "receive",
                "channel": channel_ref,
                "title": format!("Request `{tag}`"),
                "summary": format!("The client sends `{tag}`; the server replies with {replies_named} or `error` carrying the same `id`."),
                "description": description,
                "messages": [channel_message(name)],
                "reply": {
                    "channel": channel_ref,
                    "messages": reply_messages,
                },
            }),
        );
    }
    operations
}

/// A `send` operation per server message that is pushed.
fn push_operations(
    server: &Definitions,
    server_examples: &[Example<ServerMessage>],
) -> Map<String, Value> {
    let channel_ref = channel_ref();
    let mut operations = Map::new();
    // Pushes: server messages sent without a request. Whether a type is one is read
    // from its examples through `ServerMessage::reply_to`, so that this list follows
    // the Rust code; `error` is both a reply and (without `id`) a push.
    for (tag, name) in server.messages() {
        let pushed = server_examples
            .iter()
            .any(|e| e.message.tag() == tag && e.message.reply_to().is_none());
        if !pushed {
            continue;
        }
        let description = server.defs[name]["description"]
            .as_str()
            .unwrap_or_default();
        operations.insert(
            format!("send_{tag}"),
            json!({
                "action": "send",
                "channel": channel_ref,
                "title": format!("Push `{tag}`"),
                "summary": format!("The server sends `{tag}` without a request."),
                "description": description,
                "messages": [channel_message(name)],
            }),
        );
    }
    operations
}

/// Adds a direction's definitions to `components/schemas`, with references rewritten.
/// A name both directions define must have one definition.
fn merge_definitions(schemas: &mut Map<String, Value>, definitions: &Definitions) {
    for (name, def) in &definitions.defs {
        let mut def = def.clone();
        rewrite_refs(&mut def);
        match schemas.get(name) {
            Some(existing) if *existing != def => {
                panic!("`{name}` has different definitions in the two directions")
            }
            Some(_) => {}
            None => {
                schemas.insert(name.clone(), def);
            }
        }
    }
}

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get_mut("$ref") {
                if let Some(name) = reference.strip_prefix("#/$defs/") {
                    *reference = format!("#/components/schemas/{name}");
                }
            }
            object.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// Adds the messages of one direction, each with its examples, and returns
/// their names by tag.
fn add_messages<M: serde::Serialize>(
    messages: &mut Map<String, Value>,
    direction: &Definitions,
    examples: &[Example<M>],
    tag_of: fn(&M) -> &'static str,
) -> Map<String, Value> {
    let mut names = Map::new();
    for (tag, name) in direction.messages() {
        let examples = examples
            .iter()
            .filter(|e| tag_of(&e.message) == tag)
            .map(|e| example_object(e.name, e.summary, &e.message))
            .collect();
        messages.insert(
            name.into(),
            message(tag, name, &direction.defs[name], examples),
        );
        names.insert(tag.into(), json!(name));
    }
    names
}

fn message(tag: &str, name: &str, def: &Value, examples: Vec<Value>) -> Value {
    assert!(
        !examples.is_empty(),
        "message `{tag}` ({name}) has no example"
    );
    let mut message = Map::new();
    message.insert("name".into(), json!(tag));
    message.insert("title".into(), json!(name));
    if let Some(description) = def.get("description") {
        message.insert("description".into(), description.clone());
    }
    message.insert("contentType".into(), json!("application/json"));
    message.insert(
        "payload".into(),
        json!({ "$ref": format!("#/components/schemas/{name}") }),
    );
    message.insert("examples".into(), Value::Array(examples));
    Value::Object(message)
}

fn example_object(name: &str, summary: &str, message: &impl serde::Serialize) -> Value {
    json!({
        "name": name,
        "summary": summary,
        "payload": serde_json::to_value(message).expect("messages serialize"),
    })
}

// ---------------------------------------------------------------------------
// Examples
// ---------------------------------------------------------------------------

fn id(value: &str) -> RequestId {
    RequestId::new(value).expect("example ids are valid")
}

fn collection(value: &str) -> CollectionName {
    CollectionName::new(value).expect("example collection names are valid")
}

fn name(value: &str) -> Name {
    Name::new(value).expect("example names are valid")
}

fn object(value: Value) -> Object {
    match value {
        Value::Object(object) => object,
        other => panic!("example {other} is not an object"),
    }
}

fn at(time: &str) -> Timestamp {
    Timestamp(time.into())
}

fn token(value: &str) -> ResumeToken {
    ResumeToken(value.into())
}

/// A position of the example streams: the journal and the rooms share epoch `e1`,
/// topics and documents have their own.
fn pos(epoch: &str, seq: u64) -> Option<Position> {
    Some(Position {
        epoch: epoch.into(),
        seq,
    })
}

fn member(connection_id: &str, principal: &str, role: Role) -> Member {
    Member {
        connection_id: connection_id.into(),
        principal: principal.into(),
        role,
        display_name: None,
        metadata: None,
    }
}

fn chat(message_id: &str, author: Member, body: Value, sent_at: &str, seq: u64) -> ChatMessage {
    ChatMessage {
        message_id: message_id.into(),
        origin: Some(Origin {
            connection_id: author.connection_id.clone(),
            idempotency_key: None,
        }),
        author,
        body,
        sent_at: at(sent_at),
        position: pos("e1", seq),
    }
}

fn ops() -> Vec<EditOp> {
    vec![
        EditOp::Insert {
            position: 0,
            text: "Hello, ".into(),
        },
        EditOp::Delete {
            position: 12,
            length: 3,
        },
    ]
}

/// Representative examples of every client message.
pub fn client_examples() -> Vec<Example<ClientMessage>> {
    vec![
        example(
            "ping",
            "A ping with a payload to echo.",
            Ping {
                id: id("1"),
                payload: Some(json!({ "sent": 1706092200 })),
            },
        ),
        example(
            "auth",
            "Authenticating with a token.",
            Auth {
                id: id("auth-1"),
                token: "s3cret-token".into(),
            },
        ),
        example(
            "create",
            "Inserting a record with a chosen id.",
            Create {
                id: id("c1"),
                database: Some(collection("app")),
                collection: Some(collection("users")),
                record: object(json!({ "_id": "user1", "name": "Ada", "age": 36 })),
                idempotency_key: Some(IdempotencyKey("7c1e-create-ada".into())),
            },
        ),
        example(
            "read_by_query",
            "Reading the oldest active users, projected.",
            Read {
                id: id("r1"),
                database: Some(collection("app")),
                collection: Some(collection("users")),
                record_id: None,
                filter: Some(Filter(object(
                    json!({ "status": "active", "age": { "$gte": 18 } }),
                ))),
                sort: vec![SortKey {
                    field: "age".into(),
                    order: SortOrder::Desc,
                }],
                limit: Some(10),
                offset: None,
                fields: Some(vec!["name".into(), "age".into()]),
            },
        ),
        example(
            "read_by_id",
            "Reading one record by id.",
            Read {
                id: id("r2"),
                database: Some(collection("app")),
                collection: Some(collection("users")),
                record_id: Some("user1".into()),
                filter: None,
                sort: Vec::new(),
                limit: None,
                offset: None,
                fields: None,
            },
        ),
        example(
            "update",
            "Setting one field and removing another.",
            Update {
                id: id("u1"),
                database: Some(collection("app")),
                collection: Some(collection("users")),
                record_id: "user1".into(),
                set: object(json!({ "age": 37 })),
                unset: vec!["email".into()],
                idempotency_key: None,
            },
        ),
        example(
            "delete",
            "Removing a record.",
            Delete {
                id: id("d1"),
                database: Some(collection("app")),
                collection: Some(collection("users")),
                record_id: "user1".into(),
                idempotency_key: None,
            },
        ),
        example(
            "watch_collection",
            "Watching inserts and updates of one collection.",
            Watch {
                id: id("w1"),
                database: Some(collection("app")),
                collection: Some(collection("users")),
                filter: Some(Filter(object(
                    json!({ "operation_type": { "$in": ["insert", "update"] } }),
                ))),
                pipeline: None,
                full_document: true,
                resume_after: None,
                view: false,
                start_after: None,
            },
        ),
        example(
            "watch_start_after",
            "Watching a collection from the position of a read, so that the read and the \
             stream together miss nothing and repeat nothing.",
            Watch {
                id: id("w3"),
                database: Some(collection("app")),
                collection: Some(collection("users")),
                filter: None,
                pipeline: None,
                full_document: true,
                resume_after: None,
                view: false,
                start_after: pos("e1", 42),
            },
        ),
        example(
            "watch_resume",
            "Resuming a watch of every database after a known position.",
            Watch {
                id: id("w2"),
                database: None,
                collection: None,
                filter: None,
                pipeline: Some(vec![object(
                    json!({ "$match": { "ns.collection": "orders" } }),
                )]),
                full_document: false,
                resume_after: Some(token("e1-42")),
                view: false,
                start_after: None,
            },
        ),
        example(
            "watch_view",
            "Keeping a live view of the active users: records entering, staying in and leaving it.",
            Watch {
                id: id("w3"),
                database: Some(collection("app")),
                collection: Some(collection("users")),
                filter: Some(Filter(object(json!({ "full_document.status": "active" })))),
                pipeline: None,
                full_document: false,
                resume_after: None,
                view: true,
                start_after: None,
            },
        ),
        example(
            "subscribe",
            "Subscribing to a topic with a filter on the data.",
            Subscribe {
                id: id("s1"),
                topic: name("metrics.cpu"),
                filter: Some(Filter(object(json!({ "host": "web-1" })))),
                start_after: None,
            },
        ),
        example(
            "subscribe_resume",
            "Resubscribing after a reconnection, from the last publication received.",
            Subscribe {
                id: id("s3"),
                topic: name("metrics.cpu"),
                filter: Some(Filter(object(json!({ "host": "web-1" })))),
                start_after: pos("t7", 16),
            },
        ),
        example(
            "unsubscribe",
            "Ending a subscription.",
            Unsubscribe {
                id: id("s2"),
                subscription: "sub-1".into(),
            },
        ),
        example(
            "publish",
            "Publishing data to a topic.",
            Publish {
                id: id("p1"),
                topic: name("metrics.cpu"),
                data: json!({ "host": "web-1", "load": 0.42 }),
                idempotency_key: Some(IdempotencyKey("3f9a-cpu-0931".into())),
            },
        ),
        example(
            "join",
            "Joining a room as a participant.",
            Join {
                id: id("j1"),
                room: name("lobby"),
                role: Role::Participant,
                display_name: Some(DisplayName::new("Ada L.").expect("a valid display name")),
                metadata: None,
                start_after: None,
            },
        ),
        example(
            "join_resume",
            "Rejoining a room after a reconnection, from the last message received.",
            Join {
                id: id("j2"),
                room: name("lobby"),
                role: Role::Participant,
                display_name: None,
                metadata: None,
                start_after: pos("e1", 120),
            },
        ),
        example(
            "leave",
            "Leaving a room.",
            Leave {
                id: id("l1"),
                room: name("lobby"),
            },
        ),
        example(
            "post",
            "Posting a message to a room.",
            Post {
                id: id("m1"),
                room: name("lobby"),
                body: json!({ "text": "Hello, everyone" }),
                idempotency_key: Some(IdempotencyKey("5d1c-lobby-hello".into())),
            },
        ),
        example(
            "typing",
            "Showing the typing indicator.",
            Typing {
                id: id("t1"),
                room: name("lobby"),
                active: true,
            },
        ),
        example(
            "history",
            "Paging back through a room's history.",
            History {
                id: id("h1"),
                room: name("lobby"),
                limit: Some(20),
                before: Some("m-000120".into()),
                before_position: None,
                after_position: None,
                since: None,
                until: None,
            },
        ),
        example(
            "history_forward",
            "Paging forward through a room's history from a known position.",
            History {
                id: id("h2"),
                room: name("lobby"),
                limit: Some(20),
                before: None,
                before_position: None,
                after_position: pos("e1", 100),
                since: None,
                until: None,
            },
        ),
        example(
            "history_since",
            "The first messages of a room sent since a given time.",
            History {
                id: id("h3"),
                room: name("lobby"),
                limit: Some(20),
                before: None,
                before_position: None,
                after_position: None,
                since: Some(at("2026-01-24T09:00:00.000Z")),
                until: None,
            },
        ),
        example(
            "edit",
            "Editing a shared document at version 7.",
            Edit {
                id: id("e1"),
                room: name("lobby"),
                document: name("notes"),
                version: 7,
                ops: ops(),
                idempotency_key: Some(IdempotencyKey("8b2e-notes-7".into())),
            },
        ),
        example(
            "get_document",
            "Reading a shared document.",
            GetDocument {
                id: id("g1"),
                room: name("lobby"),
                document: name("notes"),
            },
        ),
        example(
            "get_stats",
            "Asking for counters.",
            GetStats { id: id("st1") },
        ),
        example(
            "search",
            "The two passages nearest to a query embedding, among English ones.",
            Search {
                id: id("q1"),
                database: Some(collection("lib")),
                collection: Some(collection("passages")),
                field: "embedding".into(),
                vector: vec![0.12, -0.4, 0.33],
                k: 2,
                metric: Metric::Cosine,
                filter: Some(Filter(object(json!({"lang": "en"})))),
                fields: Some(vec!["title".into()]),
            },
        ),
    ]
}

/// Representative examples of every server message.
pub fn server_examples() -> Vec<Example<ServerMessage>> {
    let ada = || member("c-1", "ada", Role::Participant);
    let grace = || member("c-2", "grace", Role::Participant);
    vec![
        example(
            "welcome",
            "The first message on a connection to a server that requires auth.",
            Welcome {
                connection_id: "c-1".into(),
                protocol: PROTOCOL_VERSION.into(),
                server: ServerInfo {
                    name: "tidewire-server".into(),
                    version: "0.1.0".into(),
                },
                profiles: Profile::ALL.to_vec(),
                heartbeat_ms: 30_000,
                limits: Limits {
                    max_message_bytes: 1 << 20,
                    max_nesting_depth: 32,
                    max_subscriptions: 100,
                    rate: Some(RateLimit {
                        messages: 60,
                        window_ms: 60_000,
                    }),
                    outbound_queue: 1024,
                    outbound_queue_bytes: Some(8 << 20),
                    filter: Some(FilterLimits {
                        max_conditions: 1000,
                        max_branches: 100,
                        max_in_values: 1000,
                        max_pattern_chars: 256,
                    }),
                    connect_rate: Some(ConnectRate {
                        attempts: 30,
                        window_ms: 60_000,
                    }),
                    room_post_rate: Some(RateLimit {
                        messages: 1000,
                        window_ms: 60_000,
                    }),
                },
                auth: AuthInfo {
                    mode: AuthMode::Required,
                    principal: None,
                    timeout_ms: Some(10_000),
                    scopes: Some(Vec::new()),
                    expires_at: None,
                    ttl_ms: None,
                    expiry_notice_ms: Some(30_000),
                },
                server_time: Some(at("2026-01-24T10:30:01.000Z")),
                bound: None,
                idempotency_window_ms: Some(600_000),
                liveness: Some(Liveness {
                    ping_interval_ms: 20_000,
                    ping_timeout_ms: 10_000,
                }),
                features: vec!["parts".into()],
                session: None,
                retention: Some(Retention {
                    journal: Some(10_000),
                    topic: Some(1000),
                    room: Some(1000),
                }),
            },
        ),
        example(
            "welcome_negotiated",
            "The welcome of a connection whose handshake carried a token and stated \
             `max_message_bytes=1048576&features=parts`.",
            Welcome {
                connection_id: "c-2".into(),
                protocol: PROTOCOL_VERSION.into(),
                server: ServerInfo {
                    name: "tidewire-server".into(),
                    version: "0.1.0".into(),
                },
                profiles: vec![Profile::Core, Profile::Auth, Profile::Records],
                heartbeat_ms: 30_000,
                limits: Limits {
                    max_message_bytes: 1 << 20,
                    max_nesting_depth: 32,
                    max_subscriptions: 100,
                    rate: None,
                    outbound_queue: 1024,
                    outbound_queue_bytes: Some(8 << 20),
                    filter: None,
                    connect_rate: None,
                    room_post_rate: None,
                },
                auth: AuthInfo {
                    mode: AuthMode::Optional,
                    principal: Some("ada".into()),
                    timeout_ms: None,
                    scopes: Some(vec!["read:collection:app.*".into()]),
                    expires_at: Some(at("2026-01-24T11:30:00.000Z")),
                    ttl_ms: Some(3_600_000),
                    expiry_notice_ms: Some(30_000),
                },
                liveness: Some(Liveness {
                    ping_interval_ms: 20_000,
                    ping_timeout_ms: 10_000,
                }),
                features: vec!["parts".into()],
                session: Some(SessionInfo {
                    max_message_bytes: Some(1 << 20),
                    features: vec!["parts".into()],
                }),
                server_time: None,
                bound: None,
                idempotency_window_ms: Some(600_000),
                retention: None,
            },
        ),
        example(
            "part",
            "The first of the parts of a message longer than the client's max_message_bytes.",
            Part {
                index: 0,
                last: false,
                data: r#"{"type":"records","id":"r1","records":[{"_id":"user1","#.into(),
            },
        ),
        example(
            "pong",
            "The reply to a ping, echoing its payload.",
            Pong {
                id: id("1"),
                payload: Some(json!({ "sent": 1706092200 })),
            },
        ),
        example(
            "heartbeat",
            "A heartbeat on an idle connection.",
            Heartbeat {
                at: at("2026-01-24T10:30:00.000Z"),
                server_time: Some(at("2026-01-24T10:30:00.000Z")),
                progress: Vec::new(),
            },
        ),
        example(
            "heartbeat_progress",
            "A heartbeat carrying where each subscription stands, though nothing matched.",
            Heartbeat {
                at: at("2026-01-24T10:30:30.000Z"),
                server_time: Some(at("2026-01-24T10:30:30.000Z")),
                progress: vec![
                    Progress {
                        subscription: "sub-1".into(),
                        position: Position {
                            epoch: "e1".into(),
                            seq: 57,
                        },
                    },
                    Progress {
                        subscription: "sub-2".into(),
                        position: Position {
                            epoch: "t7".into(),
                            seq: 17,
                        },
                    },
                ],
            },
        ),
        example(
            "error_reply",
            "A request refused because of its rate.",
            ErrorMessage {
                id: Some(id("c1")),
                error: ErrorBody {
                    code: ErrorCode::RateLimited.into(),
                    message: "more than 60 messages in 60000 ms".into(),
                    details: Some(object(json!({ "retry_after_ms": 750 }))),
                    retry: Some(Recovery::Retryable),
                },
                server_time: None,
            },
        ),
        example(
            "error_unattributed",
            "A frame that carried no usable id.",
            ErrorMessage {
                id: None,
                error: ErrorBody {
                    code: ErrorCode::InvalidMessage.into(),
                    message: "the frame is not a JSON object".into(),
                    details: None,
                    retry: Some(Recovery::Terminal),
                },
                server_time: Some(at("2026-01-24T10:30:01.000Z")),
            },
        ),
        example(
            "notice",
            "The server is shutting down.",
            Notice {
                reason: NoticeReason::ShuttingDown,
                message: "the server is restarting".into(),
                positions: Vec::new(),
                server_time: Some(at("2026-01-24T10:30:01.000Z")),
            },
        ),
        example(
            "authenticated",
            "A successful authentication.",
            Authenticated {
                id: id("auth-1"),
                principal: "ada".into(),
                scopes: vec!["app.users:read".into(), "app.users:write".into()],
                expires_at: Some(at("2026-01-24T11:30:00.000Z")),
                ttl_ms: Some(3_600_000),
            },
        ),
        example(
            "created",
            "The stored record.",
            Created {
                id: id("c1"),
                record: object(json!({ "_id": "user1", "name": "Ada", "age": 36 })),
                position: pos("e1", 43),
            },
        ),
        example(
            "records",
            "One page of a query.",
            Records {
                id: id("r1"),
                records: vec![object(json!({ "_id": "user1", "name": "Ada", "age": 36 }))],
                total: 1,
                count: 1,
                position: pos("e1", 43),
            },
        ),
        example(
            "updated",
            "The record after an update.",
            Updated {
                id: id("u1"),
                record: object(json!({ "_id": "user1", "name": "Ada", "age": 37 })),
                position: pos("e1", 44),
            },
        ),
        example(
            "deleted",
            "A removed record.",
            Deleted {
                id: id("d1"),
                record_id: "user1".into(),
                position: pos("e1", 45),
            },
        ),
        example(
            "watching",
            "A new watch subscription.",
            Watching {
                id: id("w1"),
                subscription: "sub-1".into(),
                resume_token: token("e1-42"),
                resumed: false,
                position: pos("e1", 42),
            },
        ),
        example(
            "change_insert",
            "An inserted record.",
            Change {
                subscription: "sub-1".into(),
                event: ChangeEvent {
                    operation_type: OperationType::Insert,
                    ns: Namespace {
                        database: collection("app"),
                        collection: collection("users"),
                    },
                    document_key: DocumentKey { id: "user1".into() },
                    full_document: Some(object(
                        json!({ "_id": "user1", "name": "Ada", "age": 36 }),
                    )),
                    update_description: None,
                    committed_at: at("2026-01-24T10:30:00.123Z"),
                    resume_token: token("e1-43"),
                    full_document_before_change: None,
                    view: None,
                    origin: Some(Origin {
                        connection_id: "c-1".into(),
                        idempotency_key: Some(IdempotencyKey("7c1e-create-ada".into())),
                    }),
                    position: pos("e1", 43),
                },
                server_time: Some(at("2026-01-24T10:30:01.000Z")),
            },
        ),
        example(
            "change_update",
            "An updated record, without the full document.",
            Change {
                subscription: "sub-1".into(),
                event: ChangeEvent {
                    operation_type: OperationType::Update,
                    ns: Namespace {
                        database: collection("app"),
                        collection: collection("users"),
                    },
                    document_key: DocumentKey { id: "user1".into() },
                    full_document: None,
                    update_description: Some(UpdateDescription {
                        updated_fields: object(json!({ "age": 37 })),
                        removed_fields: vec!["email".into()],
                    }),
                    committed_at: at("2026-01-24T10:31:00.000Z"),
                    resume_token: token("e1-44"),
                    full_document_before_change: None,
                    view: None,
                    origin: None,
                    position: pos("e1", 44),
                },
                server_time: None,
            },
        ),
        example(
            "change_view_leave",
            "A record leaving a live view: an update made it stop matching the view's filter.",
            Change {
                subscription: "sub-3".into(),
                event: ChangeEvent {
                    operation_type: OperationType::Update,
                    ns: Namespace {
                        database: collection("app"),
                        collection: collection("users"),
                    },
                    document_key: DocumentKey { id: "user1".into() },
                    full_document: Some(object(
                        json!({ "_id": "user1", "name": "Ada", "status": "inactive" }),
                    )),
                    update_description: Some(UpdateDescription {
                        updated_fields: object(json!({ "status": "inactive" })),
                        removed_fields: vec![],
                    }),
                    committed_at: at("2026-01-24T10:32:00.000Z"),
                    resume_token: token("e1-45"),
                    full_document_before_change: Some(object(
                        json!({ "_id": "user1", "name": "Ada", "status": "active" }),
                    )),
                    view: Some(ViewTransition::Leave),
                    origin: None,
                    position: pos("e1", 45),
                },
                server_time: Some(at("2026-01-24T10:30:01.000Z")),
            },
        ),
        example(
            "subscribed",
            "A new topic subscription.",
            Subscribed {
                id: id("s1"),
                subscription: "sub-2".into(),
                position: pos("t7", 16),
                recovered: None,
            },
        ),
        example(
            "subscribed_recovered",
            "A topic subscription that resumed: the publications after `start_after` follow.",
            Subscribed {
                id: id("s3"),
                subscription: "sub-3".into(),
                position: pos("t7", 18),
                recovered: Some(true),
            },
        ),
        example(
            "unsubscribed",
            "An ended subscription.",
            Unsubscribed {
                id: id("s2"),
                subscription: "sub-1".into(),
            },
        ),
        example(
            "published",
            "Published data.",
            Published {
                id: id("p1"),
                topic: name("metrics.cpu"),
                message_id: "pub-17".into(),
                published_at: at("2026-01-24T10:30:02.000Z"),
                position: pos("t7", 17),
            },
        ),
        example(
            "publication",
            "Data published to a subscribed topic.",
            Publication {
                subscription: "sub-2".into(),
                topic: name("metrics.cpu"),
                message_id: "pub-17".into(),
                publisher: "ada".into(),
                published_at: at("2026-01-24T10:30:02.000Z"),
                data: json!({ "host": "web-1", "load": 0.42 }),
                server_time: Some(at("2026-01-24T10:30:01.000Z")),
                origin: Some(Origin {
                    connection_id: "c-7".into(),
                    idempotency_key: Some(IdempotencyKey("3f9a-cpu-0931".into())),
                }),
                position: pos("t7", 17),
            },
        ),
        example(
            "joined",
            "The membership after joining.",
            Joined {
                id: id("j1"),
                room: name("lobby"),
                role: Role::Participant,
                members: vec![ada(), member("c-3", "lin", Role::Observer)],
                position: pos("e1", 120),
                recovered: None,
            },
        ),
        example(
            "left",
            "Left a room.",
            Left {
                id: id("l1"),
                room: name("lobby"),
            },
        ),
        example(
            "presence",
            "A member's connection dropped.",
            Presence {
                room: name("lobby"),
                action: PresenceAction::Left,
                member: grace(),
                reason: Some(LeaveReason::Disconnected),
                server_time: Some(at("2026-01-24T10:30:01.000Z")),
            },
        ),
        example(
            "posted",
            "A posted message.",
            Posted {
                id: id("m1"),
                room: name("lobby"),
                message_id: "m-000121".into(),
                sent_at: at("2026-01-24T10:30:03.000Z"),
                position: pos("e1", 121),
            },
        ),
        example(
            "room_message",
            "A message posted to a room.",
            RoomMessage {
                room: name("lobby"),
                message: ChatMessage {
                    origin: Some(Origin {
                        connection_id: "c-1".into(),
                        idempotency_key: Some(IdempotencyKey("5d1c-lobby-hello".into())),
                    }),
                    ..chat(
                        "m-000121",
                        ada(),
                        json!({ "text": "Hello, everyone" }),
                        "2026-01-24T10:30:03.000Z",
                        121,
                    )
                },
                server_time: Some(at("2026-01-24T10:30:01.000Z")),
            },
        ),
        example(
            "typing",
            "Another member is typing.",
            TypingNotice {
                room: name("lobby"),
                member: grace(),
                active: true,
                server_time: Some(at("2026-01-24T10:30:01.000Z")),
            },
        ),
        example("ack", "The reply to `typing`.", Ack { id: id("t1") }),
        example(
            "history_page",
            "Older messages of a room.",
            HistoryPage {
                id: id("h1"),
                room: name("lobby"),
                messages: vec![
                    chat(
                        "m-000118",
                        grace(),
                        json!({ "text": "Morning" }),
                        "2026-01-24T09:00:00.000Z",
                        118,
                    ),
                    chat(
                        "m-000119",
                        ada(),
                        json!({ "text": "Hi Grace" }),
                        "2026-01-24T09:00:05.000Z",
                        119,
                    ),
                ],
                has_more: true,
            },
        ),
        example(
            "edit_applied",
            "An accepted edit.",
            EditApplied {
                id: id("e1"),
                room: name("lobby"),
                document: name("notes"),
                version: 8,
                position: pos("d3", 8),
            },
        ),
        example(
            "document_edit",
            "Another member's accepted edit.",
            DocumentEdit {
                room: name("lobby"),
                document: name("notes"),
                version: 8,
                author: ada(),
                ops: ops(),
                server_time: Some(at("2026-01-24T10:30:01.000Z")),
                position: pos("d3", 8),
                origin: Some(Origin {
                    connection_id: "c-1".into(),
                    idempotency_key: Some(IdempotencyKey("8b2e-notes-7".into())),
                }),
            },
        ),
        example(
            "document",
            "A shared document.",
            Document {
                id: id("g1"),
                room: name("lobby"),
                document: name("notes"),
                version: 8,
                content: "Hello, world".into(),
                position: pos("d3", 8),
            },
        ),
        example(
            "stats",
            "Server and connection counters.",
            Stats {
                id: id("st1"),
                server: ServerStats {
                    connections: 12,
                    subscriptions: 30,
                    rooms: 3,
                    messages_in: 4200,
                    messages_out: 9100,
                    uptime_ms: 3_600_000,
                    connections_total: Some(150),
                    limits: None,
                    max_connections: Some(1000),
                },
                connection: ConnectionStats {
                    subscriptions: 2,
                    rooms: 1,
                    messages_in: 40,
                    messages_out: 85,
                },
            },
        ),
        example(
            "search_results",
            "The nearest records, best first, with their cosine similarity.",
            SearchResults {
                id: id("q1"),
                results: vec![
                    ScoredRecord {
                        record: object(json!({"_id": "p-17", "title": "Tides"})),
                        score: 0.93,
                    },
                    ScoredRecord {
                        record: object(json!({"_id": "p-4", "title": "Currents"})),
                        score: 0.81,
                    },
                ],
            },
        ),
        example(
            "ended_watch",
            "A watch ended by re-authentication with narrower scopes, with where to resume it.",
            Ended {
                subscription: Some("sub-1".into()),
                room: None,
                reason: EndReason::ScopesNarrowed,
                resume_token: Some(token("e1-57")),
                position: Some(Position {
                    epoch: "e1".into(),
                    seq: 57,
                }),
            },
        ),
        example(
            "ended_room",
            "A room membership ended because the server is shutting down.",
            Ended {
                subscription: None,
                room: Some(name("lobby")),
                reason: EndReason::ShuttingDown,
                resume_token: None,
                position: None,
            },
        ),
    ]
}
