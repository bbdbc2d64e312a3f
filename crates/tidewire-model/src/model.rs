//! The protocol state a scenario builds up, and what it predicts each
//! connection receives.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use tidewire_filter::{compare, Filter, Pipeline};
use tidewire_protocol::{
    ClientMessage, CollectionName, Create, Delete, Edit, EditOp, ErrorCode, GetDocument, History,
    IdempotencyKey, Join, Leave, Message, Name, Ping, Post, Profile, Publish, Read, RequestId,
    Role, SortKey, SortOrder, Subscribe, Typing, Unsubscribe, Update, Watch,
};

use crate::{Action, AuthStep, Change, EventFilter, Op, RecordFilter, Scenario, Tag};

mod auth;
mod bad_input;
mod collab;
mod core;
mod hidden;
mod limits;
mod positions;
mod records;
mod recover;
mod resume;
mod retention;
mod rooms;
mod session;
mod shapes;
mod stats;
mod topics;
mod vector;
mod watch;

/// Stands for the case's `${nonce}` while messages are built from the typed
/// definitions, whose name rules do not admit `${`; replaced at the end.
const NONCE: &str = "NONCEx";
const DATABASE: &str = "NONCExd";
const DOCUMENT: &str = "doc";

fn collection(coll: u8) -> String {
    format!("c{coll}")
}

fn key(key: u8) -> String {
    format!("k{key}")
}

fn topic(topic: u8) -> String {
    format!("{NONCE}-t{topic}")
}

fn room(room: u8) -> String {
    format!("{NONCE}-r{room}")
}

/// The connection of a generated case that states a small
/// `max_message_bytes`, so that longer messages reach it in parts.
const PARTS_CONN: usize = 1;
/// The bound it states: the least a client may (section 5.7).
const PARTS_BOUND: u64 = tidewire_protocol::session::MIN_MAX_MESSAGE_BYTES;

fn conn_name(conn: usize) -> String {
    format!("c{conn}")
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Participant => "participant",
        Role::Observer => "observer",
    }
}

enum SubKind {
    Watch {
        coll: Option<u8>,
        filter: Filter,
        pipeline: Option<Pipeline>,
        full_document: bool,
        /// A live view (section 8.3): events labelled by transition.
        view: bool,
    },
    Topic {
        topic: u8,
        filter: Filter,
    },
}

struct Subscription {
    conn: usize,
    /// The variable its id is captured in.
    var: String,
    kind: SubKind,
}

/// A posted message as the model knows it: its id and time are the ones the
/// `posted` reply carried, captured into variables.
struct RoomMessage {
    id_var: String,
    pattern: Value,
}

#[derive(Default)]
struct Model {
    connections: usize,
    records: BTreeMap<u8, BTreeMap<String, Map<String, Value>>>,
    /// Live subscriptions in the order they were made.
    subscriptions: Vec<Subscription>,
    /// Members of each room in the order they joined.
    rooms: BTreeMap<u8, Vec<(usize, Role)>>,
    documents: BTreeMap<u8, (u64, String)>,
    /// Each room's messages, oldest first, as a history page must list them.
    history: BTreeMap<u8, Vec<RoomMessage>>,
    /// How often each connection has been opened, for its connection-id variable.
    generation: Vec<u32>,
    next_var: usize,
    steps: Vec<Value>,
    /// Frames each connection must receive for the current action.
    expected: Vec<Vec<Value>>,
    /// The display name of each (room, connection)'s latest `join`, when it gave one.
    shown: BTreeMap<(u8, usize), String>,
    /// Idempotency keys of successful writes (all connections share the
    /// anonymous principal): the request without `id`, and the reply pattern
    /// with `id` left out.
    keys: BTreeMap<u8, (Value, Value)>,
    /// Idempotency keys of successful posts, a kind of their own: the
    /// request without `id`, and the reply pattern with `id` left out.
    post_keys: BTreeMap<u8, (Value, Value)>,
    /// Idempotency keys of successful edits: as `post_keys`, and the version
    /// the edit was made against, which a repeat names again.
    edit_keys: BTreeMap<u8, (Value, Value, u64)>,
    /// Text frames each connection has sent since it was opened.
    sent: Vec<u64>,
    /// Messages predicted for each connection since it was opened, its welcome included.
    received: Vec<u64>,
    /// Whether a side connection opens on the run variable `limits_url`.
    needs_limits_url: bool,
    /// Whether a side connection opens on the run variable `stats_url`.
    needs_stats_url: bool,
}

fn typed(message: impl Into<ClientMessage>) -> Value {
    serde_json::to_value(message.into()).expect("client messages serialize")
}

/// A request as an idempotency key remembers it: all but its `id`, which a
/// repeat changes (TW-IDEM-1).
fn without_id(message: impl Into<ClientMessage>) -> Value {
    let mut value = typed(message);
    value
        .as_object_mut()
        .expect("messages are objects")
        .remove("id");
    value
}

/// `message` with its integer member `member` written with a fraction (`10.0`)
/// when the value is even: JSON Schema's integer includes that spelling, and a
/// server reads it as the integer (TW-DECODE-2), so the prediction is the same.
fn spelled_as_float(mut message: Value, member: &str) -> Value {
    if let Some(value) = message.get(member).and_then(Value::as_u64) {
        if value % 2 == 0 {
            message[member] = json!(value as f64);
        }
    }
    message
}

fn name(value: String) -> Name {
    Name::new(value).expect("model names follow the name rules")
}

fn coll_name(value: String) -> CollectionName {
    CollectionName::new(value).expect("model names follow the name rules")
}

fn request_id(value: String) -> RequestId {
    RequestId::new(value).expect("model request ids are printable ASCII")
}

/// A generated filter as the typed messages carry it.
fn wire_filter(filter: &Option<Value>) -> Option<tidewire_protocol::Filter> {
    filter.as_ref().map(|f| {
        tidewire_protocol::Filter(f.as_object().expect("model filters are objects").clone())
    })
}

/// A `read` of the records of `collection` that `filter` selects, in the
/// order of their `_id`: the order the model keeps records in.
fn read_by_id(id: &str, collection: String, filter: &Option<Value>) -> Value {
    typed(Read {
        id: request_id(id.to_string()),
        database: Some(coll_name(DATABASE.into())),
        collection: Some(coll_name(collection)),
        record_id: None,
        filter: wire_filter(filter),
        sort: vec![SortKey {
            field: "_id".into(),
            order: SortOrder::Asc,
        }],
        limit: None,
        offset: None,
        fields: None,
    })
}

/// A `watch` of `database` (of `collection` in it, when given) with
/// `filter`, and nothing else stated.
fn watch_request(
    id: String,
    database: String,
    collection: Option<String>,
    filter: &Option<Value>,
) -> Value {
    typed(Watch {
        id: request_id(id),
        database: Some(coll_name(database)),
        collection: collection.map(coll_name),
        filter: wire_filter(filter),
        pipeline: None,
        full_document: false,
        resume_after: None,
        view: false,
        start_after: None,
    })
}

/// A `join` of `room` as a participant, with nothing else stated.
fn participant_join(id: String, room: String) -> Value {
    typed(Join {
        id: request_id(id),
        room: name(room),
        role: Role::Participant,
        display_name: None,
        metadata: None,
        start_after: None,
    })
}

/// A `post` of `{"n": n}` to `room` without a key: the body every generated
/// post carries, so that its `room_message` is known by `n`.
fn numbered_post(id: String, room: String, n: i64) -> Value {
    typed(Post {
        id: request_id(id),
        room: name(room),
        body: json!({ "n": n }),
        idempotency_key: None,
    })
}

/// A generated filter as the model evaluates it (absent matches everything).
fn evaluator(filter: &Option<Value>) -> Filter {
    match filter {
        Some(f) => Filter::parse(f).expect("model filters are valid"),
        None => Filter::match_all(),
    }
}

/// The `error` reply to request `id`, matching any message and details.
fn error(id: &str, code: ErrorCode) -> Value {
    json!({"type": "error", "id": id, "error": {"code": code.as_str(), "retry": retry_class(code)}})
}

/// The `error` reply to request `id` whose `details` match `details`.
fn error_with(id: &str, code: ErrorCode, details: Value) -> Value {
    json!({"type": "error", "id": id, "error": {
        "code": code.as_str(), "details": details, "retry": retry_class(code),
    }})
}

/// A registry code's recovery class, which every error states (TW-XERR-1).
fn retry_class(code: ErrorCode) -> Value {
    serde_json::to_value(code.recovery()).expect("recovery classes serialize")
}

const ANY_STRING: fn() -> Value = || json!({"$type": "string"});

/// The timestamp form of the spec's field types: RFC 3339, UTC, `Z`.
pub(crate) const TIMESTAMP_REGEX: &str = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$";

/// A timestamp field, well-formed (how close it is to the runner's clock is
/// checked on the received frames, see `invariants`).
fn timestamp() -> Value {
    json!({"$type": "string", "$regex": TIMESTAMP_REGEX})
}

/// A timestamp field captured into `var`, for a later frame that must repeat it.
fn captured_timestamp(var: &str) -> Value {
    json!({"$type": "string", "$regex": TIMESTAMP_REGEX, "$capture": var})
}

/// What every `welcome` must carry whatever the server chose: the time it
/// was sent (TW-TIME-1: a welcome is a push), the liveness check (TW-LIVE-1),
/// and, unless authentication is off, the lead of the expiry notice
/// (TW-SESSION-12).
fn welcome_rules() -> Value {
    let positive = || json!({"$type": "integer", "$gte": 1});
    json!({
        "type": "welcome",
        "server_time": timestamp(),
        "liveness": {"ping_interval_ms": positive(), "ping_timeout_ms": positive()},
        "auth": {"$one_of": [
            {"mode": "off"},
            {"mode": {"$one_of": ["optional", "required"]}, "expiry_notice_ms": {"$type": "integer"}},
        ]},
    })
}

/// How much later than the announced `heartbeat_ms` a heartbeat may come.
/// TW-CORE-28 states no tolerance; this only covers scheduling on the server
/// and the runner, and is well under an interval so that a server beating at
/// twice its announced interval fails.
pub const HEARTBEAT_SLACK_MS: u64 = 400;

/// The ordered stream a predicted frame belongs to, if any: the replies of a
/// connection come in request order (TW-CORE-9), and the events of one
/// subscription in commit order (TW-WATCH-9, TW-TOPIC-6). Replies are the
/// frames carrying a request `id`; events carry their subscription.
fn stream(pattern: &Value) -> Option<String> {
    if pattern.get("id").is_some() {
        return Some("replies".into());
    }
    match pattern["type"].as_str() {
        Some("change" | "publication") => pattern["subscription"].as_str().map(String::from),
        _ => None,
    }
}

impl Model {
    fn cid_var(&self, conn: usize) -> String {
        format!("{}_id{}", conn_name(conn), self.generation[conn])
    }

    /// A member object of `conn` in room `r`; the model's connections hold no token that
    /// names a display name, so only a `join` gives one (TW-PRESENCE-1, TW-PRESENCE-2).
    fn member(&self, r: u8, conn: usize, role: Role) -> Value {
        let display_name = match self.shown.get(&(r, conn)) {
            Some(shown) => json!(shown),
            None => json!({"$absent": true}),
        };
        json!({
            "connection_id": format!("${{{}}}", self.cid_var(conn)),
            "principal": ANY_STRING(),
            "role": role_name(role),
            "display_name": display_name,
        })
    }

    /// The `origin` a push of `conn`'s write names (TW-IDEM-3).
    fn origin(&self, conn: usize, key: Option<&str>) -> Value {
        json!({
            "connection_id": format!("${{{}}}", self.cid_var(conn)),
            "idempotency_key": key.map_or(json!({"$absent": true}), |key| json!(key)),
        })
    }

    fn fresh_var(&mut self, conn: usize, what: &str) -> String {
        self.next_var += 1;
        format!("{}_{what}{}", conn_name(conn), self.next_var)
    }

    fn open(&mut self, conn: usize, reconnect: bool) {
        let name = conn_name(conn);
        self.steps.push(if reconnect {
            json!({"step": "reconnect", "conn": name})
        } else if conn == PARTS_CONN {
            // This connection takes messages of at most 1024 bytes, the least
            // a client may state, and joins the parts of longer ones
            // (TW-SESSION-3, TW-SESSION-4): every prediction for it then
            // also checks that the parts join into the predicted message.
            json!({
                "step": "open",
                "conn": name,
                "subprotocols": ["tidewire.v1"],
                "query": {"max_message_bytes": PARTS_BOUND.to_string(), "features": "parts"},
                "max_message_bytes": PARTS_BOUND,
                "join": {"match": {"type": "part"}, "data": "/data", "last": "/last"},
                "ignore": [{"type": "heartbeat"}],
            })
        } else {
            json!({
                "step": "open",
                "conn": name,
                "subprotocols": ["tidewire.v1"],
                "ignore": [{"type": "heartbeat"}],
            })
        });
        self.sent[conn] = 0;
        self.received[conn] = 1;
        let cid = self.cid_var(conn);
        let mut welcome = welcome_rules();
        welcome["connection_id"] = json!({"$capture": cid});
        self.steps.push(json!({
            "step": "expect",
            "conn": name,
            "match": welcome,
        }));
    }

    /// Predicts the answer to a write that repeats a remembered idempotency
    /// key (TW-IDEM-1, TW-IDEM-2): the remembered `reply` with the repeat's
    /// `id` when the request is the `same`, else `conflict` naming the key.
    fn expect_keyed_repeat(
        &mut self,
        conn: usize,
        id: &str,
        same: bool,
        mut reply: Value,
        key: &str,
    ) {
        let answer = if same {
            reply["id"] = json!(id);
            reply
        } else {
            error_with(id, ErrorCode::Conflict, json!({ "idempotency_key": key }))
        };
        self.expect(conn, answer);
    }

    fn send_on(&mut self, conn: &str, message: Value) {
        self.steps
            .push(json!({"step": "send", "conn": conn, "json": message}));
    }

    fn send(&mut self, conn: usize, message: Value, invalid: bool) {
        self.sent[conn] += 1;
        let mut step = json!({"step": "send", "conn": conn_name(conn), "json": message});
        if invalid {
            step["invalid"] = json!(true);
        }
        self.steps.push(step);
    }

    fn expect(&mut self, conn: usize, pattern: Value) {
        self.received[conn] += 1;
        self.expected[conn].push(pattern);
    }

    /// Sends one text frame written by `body` (a send step's `text`,
    /// `nested`, ... member) on a connection of the model.
    fn send_text(&mut self, conn: usize, body: Value) {
        self.sent[conn] += 1;
        let mut step = json!({"step": "send", "conn": conn_name(conn)});
        step.as_object_mut()
            .expect("a step is an object")
            .extend(body.as_object().expect("a send body is an object").clone());
        self.steps.push(step);
    }

    /// Expects each connection's predicted frames, the acting connection's
    /// first: its reply captures what the other connections' pushes must
    /// repeat (a publication's `message_id`, a room message's `sent_at`).
    /// Frames of one ordered stream (see [`stream`]) are expected one after
    /// the other; any mix of streams in any order, since their interleaving
    /// is not specified.
    fn flush(&mut self, acting: usize) {
        let others = (0..self.connections).filter(|c| *c != acting);
        for conn in std::iter::once(acting).chain(others) {
            let patterns = std::mem::take(&mut self.expected[conn]);
            let first = patterns.first().and_then(stream);
            let one_stream = first.is_some()
                && patterns
                    .iter()
                    .all(|p| stream(p).as_ref() == first.as_ref());
            if patterns.len() > 1 && one_stream {
                for pattern in patterns {
                    self.steps.push(json!({
                        "step": "expect",
                        "conn": conn_name(conn),
                        "match": pattern,
                    }));
                }
            } else if !patterns.is_empty() {
                self.steps.push(json!({
                    "step": "expect_all",
                    "conn": conn_name(conn),
                    "match": patterns,
                }));
            }
        }
    }

    /// A fresh connection `name`, open until the returned steps close it.
    fn side_connection(&mut self, name: &str, ignore: Value, welcome: Value) {
        self.steps.push(json!({
            "step": "open",
            "conn": name,
            "subprotocols": ["tidewire.v1"],
            "ignore": ignore,
        }));
        self.steps
            .push(json!({"step": "expect", "conn": name, "match": welcome}));
    }

    /// The records of `coll` as the patterns of a reply that lists them
    /// all, in the order of their `_id` (the order `records` keeps them in).
    fn literal_records(&mut self, coll: u8) -> Vec<Value> {
        self.records
            .entry(coll)
            .or_default()
            .values()
            .map(|r| json!({"$literal": r}))
            .collect()
    }

    fn members(&self, room: u8) -> &[(usize, Role)] {
        self.rooms.get(&room).map(Vec::as_slice).unwrap_or(&[])
    }

    fn role_of(&self, conn: usize, room: u8) -> Option<Role> {
        self.members(room)
            .iter()
            .find(|(c, _)| *c == conn)
            .map(|(_, role)| *role)
    }

    fn apply(&mut self, id: String, action: &Action) {
        let conn = action.conn;
        match &action.op {
            Op::Burst(ops) => {
                for (i, op) in ops.iter().enumerate() {
                    let op = Action {
                        conn,
                        op: op.clone(),
                    };
                    self.apply(format!("{id}-{i}"), &op);
                }
            }
            Op::AwaitHeartbeat { heartbeat_ms } => self.apply_await_heartbeat(&id, *heartbeat_ms),
            Op::Flood { messages } => self.apply_flood(&id, *messages),
            Op::Ping { payload } => self.apply_ping(conn, &id, *payload),
            Op::Unsubscribe { nth } => self.apply_unsubscribe(conn, &id, *nth),
            Op::Reconnect => self.apply_reconnect(conn, &id),
            Op::UnknownType => self.apply_unknown_type(conn, &id),
            Op::OutOfScope { coll } => self.apply_out_of_scope(&id, *coll),
            Op::Search {
                coll,
                vector,
                k,
                metric,
                tag,
            } => self.apply_search(conn, &id, *coll, *vector, *k, *metric, *tag),
            Op::Create {
                coll,
                key: k,
                n,
                tag,
            } => self.apply_create(conn, &id, *coll, *k, *n, *tag),
            Op::Update {
                coll,
                key: k,
                change,
            } => self.apply_update(conn, &id, *coll, *k, *change),
            Op::Delete { coll, key: k } => self.apply_delete(conn, &id, *coll, *k),
            Op::Get { coll, key: k } => self.apply_get(conn, &id, *coll, *k),
            Op::Query {
                coll,
                filter,
                desc,
                limit,
            } => self.apply_query(conn, &id, *coll, *filter, *desc, *limit),
            Op::WrongFieldType => self.apply_wrong_field_type(conn, &id),
            Op::UnknownOperator { coll } => self.apply_unknown_operator(conn, &id, *coll),
            Op::Watch {
                coll,
                filter,
                pipeline,
                full_document,
            } => self.apply_watch(
                conn,
                &id,
                *coll,
                *filter,
                *pipeline,
                (*full_document, false),
            ),
            Op::KeyedCreate { coll, key, n, idem } => {
                self.apply_keyed_create(conn, &id, *coll, *key, *n, *idem)
            }
            Op::View { coll, filter } => {
                self.apply_watch(conn, &id, *coll, *filter, false, (false, true))
            }
            Op::Subscribe { topic: t, min } => self.apply_subscribe(conn, &id, *t, *min),
            Op::Publish { topic: t, n } => self.apply_publish(conn, &id, *t, *n),
            Op::Join {
                room: r,
                observer,
                display_name,
            } => self.apply_join(conn, &id, *r, *observer, *display_name),
            Op::Leave { room: r } => self.apply_leave(conn, &id, *r),
            Op::Post { room: r, n } => self.apply_post(conn, &id, *r, *n),
            Op::Typing { room: r, active } => self.apply_typing(conn, &id, *r, *active),
            Op::Edit {
                room: r,
                stale,
                text,
            } => self.apply_edit(conn, &id, *r, *stale, *text),
            Op::GetDocument { room: r } => self.apply_get_document(conn, &id, *r),
            Op::KeyedPost { room: r, n, idem } => self.apply_keyed_post(conn, &id, *r, *n, *idem),
            Op::KeyedEdit {
                room: r,
                text,
                idem,
            } => self.apply_keyed_edit(conn, &id, *r, *text, *idem),
            Op::History {
                room: r,
                before,
                limit,
            } => self.apply_history(conn, &id, *r, *before, *limit),
            Op::HistoryForward {
                room: r,
                after,
                limit,
            } => self.apply_history_forward(conn, &id, *r, *after, *limit),
            Op::ResumeTopic { topic: t, min, ns } => {
                self.apply_resume_topic(conn, &id, *t, *min, ns)
            }
            Op::Undecodable { kind } => self.apply_undecodable(conn, &id, *kind),
            Op::EndingFrame { kind } => self.apply_ending_frame(&id, *kind),
            Op::Stats => self.apply_stats(conn, &id),
            Op::Nesting { depth, object } => self.apply_nesting(conn, &id, *depth, *object),
            Op::SubscriptionCap { endpoint, max } => {
                self.apply_subscription_cap(&id, *endpoint, *max)
            }
            Op::RateAbuse {
                endpoint,
                messages,
                window_ms,
            } => self.apply_rate_abuse(&id, *endpoint, *messages, *window_ms),
            Op::ServerGauges {
                subscriptions,
                rooms,
            } => self.apply_server_gauges(&id, *subscriptions, *rooms),
            Op::ResumeWatch {
                coll,
                filter,
                before,
                after,
                live,
                from,
            } => self.apply_resume_watch(conn, &id, *coll, *filter, [before, after, live], *from),
            Op::Reauth { handshake, steps } => self.apply_reauth(&id, *handshake, steps),
            Op::InvalidHandshake => self.apply_invalid_handshake(&id),
            Op::Expiry => self.apply_expiry(&id),
            Op::AuthTimeout => self.apply_auth_timeout(&id),
            Op::RejoinRoom {
                before,
                after,
                live,
            } => self.apply_rejoin_room(&id, [before, after, live]),
            Op::HiddenRecords { filter, steps } => self.apply_hidden_records(&id, *filter, steps),
            Op::SpelledRead { coll, spelling } => {
                self.apply_spelled_read(conn, &id, *coll, *spelling)
            }
            Op::UnmatchableWatch {
                coll,
                path,
                pipeline,
            } => self.apply_unmatchable_watch(conn, &id, *coll, *path, *pipeline),
            Op::SearchOutOfRange { coll, bound } => {
                self.apply_search_out_of_range(conn, &id, *coll, *bound)
            }
            Op::ReadThenWatch {
                coll,
                key: k,
                n,
                whole_database,
            } => self.apply_read_then_watch(conn, &id, *coll, (*k, *n), *whole_database),
            Op::NarrowedWatch { coll } => self.apply_narrowed_watch(&id, *coll),
            Op::QuietProgress { coll, heartbeat_ms } => {
                self.apply_quiet_progress(&id, *coll, *heartbeat_ms)
            }
            Op::EmptyEdit { room: r, stale } => self.apply_empty_edit(conn, &id, *r, *stale),
            Op::DocumentEdits { edits, positions } => {
                self.apply_document_edits(&id, edits, *positions)
            }
            Op::SearchBatch {
                vectors,
                other_dimension,
                searches,
            } => self.apply_search_batch(conn, &id, vectors, *other_dimension, searches),
            Op::ViewChurn {
                coll,
                threshold,
                writes,
            } => self.apply_view_churn(conn, &id, *coll, *threshold, writes),
            Op::OversizedJoin { room: r, excess } => {
                self.apply_oversized_join(conn, &id, *r, *excess)
            }
            Op::TopicRetention { retention } => self.apply_topic_retention(&id, *retention),
            Op::RoomPostRate { messages } => self.apply_room_post_rate(&id, *messages),
            Op::RoomLost { beyond_head } => self.apply_room_lost(&id, *beyond_head),
            Op::SecondRun => self.apply_second_run(&id),
            Op::Handshake { check } => self.apply_handshake(&id, *check),
            Op::Liveness => self.apply_liveness(&id),
            Op::BoundEndpoint => self.apply_bound_endpoint(&id),
            Op::UnnamedCreate { coll, omit } => self.apply_unnamed_create(conn, &id, *coll, *omit),
            Op::TokenDisplayName => self.apply_token_display_name(&id),
            Op::RequiredMode => self.apply_required_mode(&id),
            Op::ApplicationError => self.apply_application_error(&id),
            Op::ConnectRate {
                attempts,
                window_ms,
            } => self.apply_connect_rate(&id, *attempts, *window_ms),
            Op::Shutdown { held } => self.apply_shutdown(&id, *held),
        }
    }
}

/// Replaces the nonce stand-in in every string and key with `${nonce}`.
fn with_nonce(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace(NONCE, "${nonce}")),
        Value::Array(items) => Value::Array(items.into_iter().map(with_nonce).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace(NONCE, "${nonce}"), with_nonce(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The scenario as a suite file of one case, `case_id`, validated against
/// the schema set at `schemas` (written into the file as given).
pub fn to_suite(scenario: &Scenario, case_id: &str, title: &str, schemas: &str) -> Value {
    let connections = scenario.connections.max(1);
    let mut model = Model {
        connections,
        generation: vec![0; connections],
        expected: vec![Vec::new(); connections],
        sent: vec![0; connections],
        received: vec![0; connections],
        ..Model::default()
    };
    for conn in 0..connections {
        model.open(conn, false);
    }
    let mut requirements: Vec<&str> = vec!["TW-CORE-8", "TW-CORE-9", "TW-CORE-10"];
    for (index, action) in scenario.actions.iter().enumerate() {
        let action = Action {
            conn: action.conn % connections,
            op: action.op.clone(),
        };
        model.apply(format!("q{index}"), &action);
        model.flush(action.conn);
        for op in action.op.flatten() {
            for id in op.requirements() {
                if !requirements.contains(id) {
                    requirements.push(id);
                }
            }
        }
    }
    // A ping answered on every connection fences the case: any push the
    // model did not predict (a duplicate, a leak) was queued before the pong.
    for conn in 0..connections {
        let id = format!("fence{conn}");
        model.send(conn, json!({"type": "ping", "id": id}), false);
        // TW-CORE-27: a ping without payload gets a pong without one.
        let pong = json!({"type": "pong", "id": id, "payload": {"$absent": true}});
        model.expect(conn, pong);
        model.flush(conn);
    }
    let profile = profile_of(scenario);
    let mut needs: Vec<&str> = Vec::new();
    for op in scenario.actions.iter().flat_map(|a| a.op.flatten()) {
        let vars: &[&str] = match op {
            Op::OutOfScope { .. } => &["token_narrow"],
            Op::Reauth { .. } => &["token_reader", "token_admin", "jwt_expired"],
            Op::InvalidHandshake => &["jwt_expired"],
            Op::Expiry => &["jwt_expiring"],
            Op::AuthTimeout => &["auth_required_url"],
            Op::HiddenRecords { .. } => &[
                "authz_url",
                "authz_owner",
                "authz_owner_token",
                "token_reader",
            ],
            Op::NarrowedWatch { .. } => &["token_narrow"],
            Op::QuietProgress { .. } => &["quiet_url"],
            Op::TopicRetention { .. } => &["retention_url"],
            Op::RoomPostRate { .. } => &["room_rate_url"],
            Op::SecondRun => &["second_run_url"],
            Op::Liveness => &["liveness_url"],
            Op::BoundEndpoint => &["libraries_url"],
            Op::TokenDisplayName => &["token_named", "token_named_display_name"],
            Op::RequiredMode => &["auth_required_url", "token_admin"],
            Op::ApplicationError => &["xerr_url"],
            Op::ConnectRate { .. } => &["connect_burst_url"],
            Op::Shutdown { .. } => &["shutdown_url"],
            _ => &[],
        };
        for var in vars {
            if !needs.contains(var) {
                needs.push(var);
            }
        }
    }
    if model.needs_limits_url {
        needs.push("limits_url");
    }
    if model.needs_stats_url {
        needs.push("stats_url");
    }
    with_nonce(json!({
        "description": "A sequence generated by `tidewire-conform prop` and shrunk to a minimal failing one.",
        "schemas": schemas,
        "cases": [{
            "id": case_id,
            "title": title,
            "requirements": requirements,
            "profile": profile.as_str(),
            "tags": ["prop"],
            "needs": needs,
            "steps": model.steps,
        }],
    }))
}

/// Profiles from the most specific to the least, for a case's `profile`:
/// a case is labelled with the first one its operations use.
const SPECIFICITY: [Profile; 5] = [
    Profile::Collab,
    Profile::Rooms,
    Profile::Watch,
    Profile::Topics,
    Profile::Records,
];

/// The most specific profile the scenario uses, for the case's `profile`.
fn profile_of(scenario: &Scenario) -> Profile {
    let used: Vec<Profile> = scenario
        .actions
        .iter()
        .flat_map(|a| a.op.flatten())
        .map(op_profile)
        .collect();
    SPECIFICITY
        .into_iter()
        .find(|p| used.contains(p))
        .unwrap_or(Profile::Core)
}

/// The profile of the message an operation sends, as the protocol's message
/// table states it. Operations without a message of their own, and those on
/// a side connection of their own, count as core.
fn op_profile(op: &Op) -> Profile {
    match op {
        Op::Create { .. } | Op::WrongFieldType | Op::KeyedCreate { .. } => Create::PROFILE,
        Op::Update { .. } => Update::PROFILE,
        Op::Delete { .. } => Delete::PROFILE,
        Op::Get { .. } | Op::Query { .. } | Op::UnknownOperator { .. } => Read::PROFILE,
        Op::Watch { .. } | Op::View { .. } => Watch::PROFILE,
        Op::Unsubscribe { .. } => Unsubscribe::PROFILE,
        Op::Subscribe { .. } => Subscribe::PROFILE,
        Op::Publish { .. } => Publish::PROFILE,
        Op::Join { .. } => Join::PROFILE,
        Op::Leave { .. } => Leave::PROFILE,
        Op::Post { .. } | Op::KeyedPost { .. } => Post::PROFILE,
        Op::Typing { .. } => Typing::PROFILE,
        Op::Edit { .. } | Op::KeyedEdit { .. } => Edit::PROFILE,
        Op::GetDocument { .. } => GetDocument::PROFILE,
        Op::History { .. } => History::PROFILE,
        Op::Search { .. } => tidewire_protocol::Search::PROFILE,
        // Paging by position is a rule of `resume`, on a request of `rooms`.
        Op::HistoryForward { .. }
        | Op::ResumeTopic { .. }
        | Op::ResumeWatch { .. }
        | Op::RejoinRoom { .. } => Profile::Resume,
        Op::Ping { .. } | Op::Flood { .. } => Ping::PROFILE,
        Op::Stats | Op::ServerGauges { .. } => tidewire_protocol::GetStats::PROFILE,
        Op::SubscriptionCap { .. } | Op::RateAbuse { .. } => Profile::Limits,
        Op::Undecodable { .. } | Op::EndingFrame { .. } | Op::Nesting { .. } => Profile::Core,
        Op::Burst(_)
        | Op::Reconnect
        | Op::UnknownType
        | Op::AwaitHeartbeat { .. }
        | Op::OutOfScope { .. } => Profile::Core,
        // Connections of their own, whose messages are of several profiles:
        // what they check is the auth profile's.
        Op::Reauth { .. } | Op::InvalidHandshake | Op::Expiry | Op::AuthTimeout => Profile::Auth,
        // Watches and reads, which section 8.5 narrows.
        Op::HiddenRecords { .. } => Watch::PROFILE,
        Op::SpelledRead { .. } => Read::PROFILE,
        Op::UnmatchableWatch { .. } => Watch::PROFILE,
        Op::SearchOutOfRange { .. } => tidewire_protocol::Search::PROFILE,
        // Positions are the resume profile's, on a read and a watch.
        Op::ReadThenWatch { .. } | Op::QuietProgress { .. } => Profile::Resume,
        Op::NarrowedWatch { .. } => Profile::Auth,
        Op::EmptyEdit { .. } | Op::DocumentEdits { .. } => Edit::PROFILE,
        Op::SearchBatch { .. } => tidewire_protocol::Search::PROFILE,
        Op::ViewChurn { .. } => Watch::PROFILE,
        Op::OversizedJoin { .. } => Join::PROFILE,
        Op::TopicRetention { .. } | Op::RoomLost { .. } | Op::SecondRun => Profile::Resume,
        Op::RoomPostRate { .. } => Profile::Limits,
        Op::Handshake { .. } | Op::Liveness | Op::ApplicationError => Profile::Core,
        // Requests that name no database or collection are records requests.
        Op::BoundEndpoint | Op::UnnamedCreate { .. } => Create::PROFILE,
        Op::TokenDisplayName => Join::PROFILE,
        Op::RequiredMode => Profile::Auth,
        Op::ConnectRate { .. } => Profile::Limits,
        Op::Shutdown { .. } => Profile::Core,
    }
}

/// A position pattern capturing its members apart, into `{var}_epoch` and
/// `{var}_seq`: a server may add members of its own to a position, which
/// need not be the same in every message that carries it.
pub(super) fn captured_position(var: &str) -> Value {
    json!({
        "epoch": {"$type": "string", "$capture": format!("{var}_epoch")},
        "seq": {"$type": "integer", "$capture": format!("{var}_seq")},
    })
}

/// The position captured by [`captured_position`] under `var`, again, as a
/// pattern or as a request sends it.
pub(super) fn same_position(var: &str) -> Value {
    json!({"epoch": format!("${{{var}_epoch}}"), "seq": format!("${{{var}_seq}}")})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventFilter, RecordFilter, Tag};

    pub(super) fn suite(connections: usize, ops: &[(usize, Op)]) -> Value {
        let scenario = Scenario {
            connections,
            actions: ops
                .iter()
                .map(|(conn, op)| Action {
                    conn: *conn,
                    op: op.clone(),
                })
                .collect(),
        };
        to_suite(&scenario, "t", "t", "schema-set.json")
    }

    /// A generated suite holds one case.
    fn steps(suite: &Value) -> &[Value] {
        suite["cases"][0]["steps"].as_array().unwrap()
    }

    /// The steps of the case generated for `ops` on `connections` connections.
    pub(super) fn case_steps(connections: usize, ops: &[(usize, Op)]) -> Vec<Value> {
        steps(&suite(connections, ops)).to_vec()
    }

    /// The patterns each connection must receive after the step that sends `id`.
    fn expected_after(suite: &Value, id: &str) -> Vec<(String, Vec<Value>)> {
        let steps = steps(suite);
        let sent = steps
            .iter()
            .position(|s| s["json"]["id"] == id)
            .expect("the request is sent");
        steps[sent + 1..]
            .iter()
            .take_while(|s| s["step"] == "expect_all")
            .map(|s| {
                (
                    s["conn"].as_str().unwrap().to_string(),
                    s["match"].as_array().unwrap().clone(),
                )
            })
            .collect()
    }

    #[test]
    fn a_search_ranks_singletons_exactly_and_leaves_ties_open() {
        let create = |key| Op::Create {
            coll: 0,
            key,
            n: 0,
            tag: None,
        };
        let set = |key, v| Op::Update {
            coll: 0,
            key,
            change: Change::SetVec(v),
        };
        // Dot products with [1, 0]: k0 = 3, k1 = 1, k2 = 1 (a tie), k3 has no vector.
        let suite = suite(
            1,
            &[
                (0, create(0)),
                (0, create(1)),
                (0, create(2)),
                (0, create(3)),
                (0, set(0, [3, 1])),
                (0, set(1, [1, 2])),
                (0, set(2, [1, -3])),
                (
                    0,
                    Op::Search {
                        coll: 0,
                        vector: [1, 0],
                        k: 2,
                        metric: tidewire_protocol::Metric::Dot,
                        tag: None,
                    },
                ),
            ],
        );
        let after = expected_after(&suite, "q7");
        let results = &after[0].1[0]["results"];
        assert_eq!(results.as_array().unwrap().len(), 2, "{results:#}");
        assert_eq!(results[0]["record"]["$literal"]["_id"], "k0", "{results:#}");
        let score = &results[0]["score"];
        assert!(score["$gte"].as_f64().unwrap() < 3.0 && score["$lte"].as_f64().unwrap() > 3.0);
        assert_eq!(
            results[1]["record"]["_id"]["$regex"], "^(k1|k2)$",
            "{results:#}"
        );
    }

    #[test]
    fn a_create_without_names_is_refused_naming_the_member_left_out_with_its_class() {
        let unnamed = |omit| Op::UnnamedCreate { coll: 0, omit };
        let suite = suite(
            1,
            &[
                (0, unnamed(crate::Omitted::Database)),
                (0, unnamed(crate::Omitted::Collection)),
                (0, unnamed(crate::Omitted::Both)),
            ],
        );
        for (id, path) in [("q0", "database"), ("q1", "collection"), ("q2", "database")] {
            let after = expected_after(&suite, id);
            let error = &after[0].1[0]["error"];
            assert_eq!(error["code"], "invalid_message", "{after:#?}");
            assert_eq!(error["details"]["path"], path, "{after:#?}");
            assert_eq!(error["retry"], "terminal", "{after:#?}");
        }
    }

    #[test]
    fn a_session_handshake_expects_only_the_supported_features_echoed() {
        let suite = suite(
            1,
            &[(
                0,
                Op::Handshake {
                    check: crate::HandshakeCheck::Session,
                },
            )],
        );
        let steps = steps(&suite);
        let open = steps
            .iter()
            .find(|s| s["step"] == "open" && s["conn"] == "q0-session")
            .unwrap();
        assert!(open["query"]["features"]
            .as_str()
            .unwrap()
            .contains("x-tidewire_prop"));
        assert!(open.get("join").is_none(), "{open:#}");
        let welcome = steps
            .iter()
            .find(|s| s["conn"] == "q0-session" && s["match"]["type"] == "welcome")
            .unwrap();
        assert_eq!(welcome["match"]["session"]["features"], json!(["parts"]));
    }

    #[test]
    fn a_repeated_keyed_create_gets_its_reply_and_another_write_a_conflict() {
        let create = |n: i64| Op::KeyedCreate {
            coll: 0,
            key: 1,
            n,
            idem: 0,
        };
        let suite = suite(
            3,
            &[
                (
                    0,
                    Op::View {
                        coll: Some(0),
                        filter: EventFilter::All,
                    },
                ),
                (1, create(1)),
                (2, create(1)),
                (2, create(2)),
            ],
        );
        // The first create reaches the watch; the repeat and the reused key do not.
        assert_eq!(expected_after(&suite, "q1").len(), 2);
        let repeat = expected_after(&suite, "q2");
        assert_eq!(repeat.len(), 1, "{repeat:#?}");
        assert_eq!(repeat[0].1[0]["type"], "created");
        assert_eq!(repeat[0].1[0]["id"], "q2");
        let reused = expected_after(&suite, "q3");
        assert_eq!(reused.len(), 1, "{reused:#?}");
        assert_eq!(reused[0].1[0]["error"]["code"], "conflict");
        assert_eq!(
            reused[0].1[0]["error"]["details"]["idempotency_key"],
            "${nonce}-i0"
        );
    }

    #[test]
    fn a_repeated_keyed_post_gets_its_reply_posts_nothing_and_names_its_origin() {
        let join = Op::Join {
            room: 0,
            observer: false,
            display_name: None,
        };
        let post = |n: i64| Op::KeyedPost {
            room: 0,
            n,
            idem: 0,
        };
        let suite = suite(
            2,
            &[
                (0, join.clone()),
                (1, join),
                (0, post(1)),
                (1, post(1)),
                (1, post(2)),
            ],
        );
        // The first post reaches both members, naming its connection and key.
        let first = expected_after(&suite, "q2");
        assert_eq!(first.len(), 2, "{first:#?}");
        let pushed = &first[1].1[0];
        assert_eq!(pushed["type"], "room_message");
        assert_eq!(
            pushed["message"]["origin"]["idempotency_key"],
            "${nonce}-p0"
        );
        let repeat = expected_after(&suite, "q3");
        assert_eq!(repeat.len(), 1, "{repeat:#?}");
        assert_eq!(repeat[0].1[0]["type"], "posted");
        assert_eq!(repeat[0].1[0]["id"], "q3");
        let reused = expected_after(&suite, "q4");
        assert_eq!(reused.len(), 1, "{reused:#?}");
        assert_eq!(reused[0].1[0]["error"]["code"], "conflict");
    }

    #[test]
    fn a_repeated_keyed_edit_names_its_first_version_and_applies_nothing() {
        let join = Op::Join {
            room: 0,
            observer: false,
            display_name: None,
        };
        let edit = |text| Op::KeyedEdit {
            room: 0,
            text,
            idem: 0,
        };
        let suite = suite(
            2,
            &[
                (0, join.clone()),
                (1, join),
                (0, edit('a')),
                (1, edit('a')),
                (1, edit('b')),
            ],
        );
        let sent = |id: &str| {
            steps(&suite)
                .iter()
                .find(|s| s["json"]["id"] == id)
                .expect("the request is sent")["json"]
                .clone()
        };
        assert_eq!(sent("q3")["version"], 0);
        assert_eq!(sent("q4")["version"], 1);
        let first = expected_after(&suite, "q2");
        assert_eq!(first.len(), 2, "{first:#?}");
        assert_eq!(first[1].1[0]["type"], "document_edit");
        assert_eq!(first[1].1[0]["origin"]["idempotency_key"], "${nonce}-e0");
        let repeat = expected_after(&suite, "q3");
        assert_eq!(repeat.len(), 1, "{repeat:#?}");
        assert_eq!(repeat[0].1[0]["type"], "edit_applied");
        assert_eq!(repeat[0].1[0]["version"], 1);
        let reused = expected_after(&suite, "q4");
        assert_eq!(reused[0].1[0]["error"]["code"], "conflict");
    }

    #[test]
    fn a_view_reports_a_record_entering_and_leaving_its_filter() {
        let suite = suite(
            2,
            &[
                (
                    0,
                    Op::View {
                        coll: Some(0),
                        filter: EventFilter::FullDocumentNGte(5),
                    },
                ),
                (
                    1,
                    Op::Create {
                        coll: 0,
                        key: 1,
                        n: 2,
                        tag: None,
                    },
                ),
                (
                    1,
                    Op::Update {
                        coll: 0,
                        key: 1,
                        change: Change::SetN(7),
                    },
                ),
                (
                    1,
                    Op::Update {
                        coll: 0,
                        key: 1,
                        change: Change::SetN(1),
                    },
                ),
                (1, Op::Delete { coll: 0, key: 1 }),
            ],
        );
        // The insert of a record outside the view is not delivered.
        assert_eq!(expected_after(&suite, "q1").len(), 1);
        let event = |id: &str| {
            let after = expected_after(&suite, id);
            assert_eq!(after.len(), 2, "{id}: {after:#?}");
            assert_eq!(after[1].0, "c0");
            after[1].1[0]["event"].clone()
        };
        let entered = event("q2");
        assert_eq!(entered["view"], json!({"$literal": "enter"}));
        assert_eq!(entered["full_document"]["$literal"]["n"], 7);
        assert_eq!(entered.get("full_document_before_change"), None, "free");
        let left = event("q3");
        assert_eq!(left["view"], json!({"$literal": "leave"}));
        assert_eq!(left["full_document"]["$literal"]["n"], 1);
        assert_eq!(left["full_document_before_change"]["$literal"]["n"], 7);
        // The record left the view, so its delete is nobody's business.
        assert_eq!(expected_after(&suite, "q4").len(), 1);
    }

    #[test]
    fn an_update_reaches_the_watch_with_its_description_and_no_full_document() {
        let suite = suite(
            2,
            &[
                (
                    0,
                    Op::Watch {
                        coll: Some(0),
                        filter: EventFilter::All,
                        pipeline: false,
                        full_document: false,
                    },
                ),
                (
                    1,
                    Op::Create {
                        coll: 0,
                        key: 1,
                        n: 2,
                        tag: Some(Tag::Red),
                    },
                ),
                (
                    1,
                    Op::Update {
                        coll: 0,
                        key: 1,
                        change: Change::UnsetTag,
                    },
                ),
            ],
        );
        let after = expected_after(&suite, "q2");
        assert_eq!(after.len(), 2, "{after:#?}");
        // The acting connection's reply comes first: it captures what pushes repeat.
        let (conn, change) = &after[1];
        assert_eq!(conn, "c0");
        let event = &change[0]["event"];
        assert_eq!(event["operation_type"]["$literal"], "update");
        assert_eq!(
            event["update_description"],
            json!({
                "updated_fields": {"$literal": {}},
                "removed_fields": {"$literal": ["tag"]},
            })
        );
        assert_eq!(event["full_document"], json!({"$absent": true}));
        assert_eq!(
            after[0].1[0]["record"]["$literal"],
            json!({"_id": "k1", "n": 2})
        );
        // Names carry the case's nonce, so reruns against one server do not collide.
        assert_eq!(event["ns"]["database"]["$literal"], "${nonce}d");
    }

    #[test]
    fn a_query_is_filtered_sorted_and_limited_like_the_spec_says() {
        let create = |key, n, tag| Op::Create {
            coll: 0,
            key,
            n,
            tag,
        };
        let suite = suite(
            1,
            &[
                (0, create(0, 1, Some(Tag::Red))),
                (0, create(1, 3, None)),
                (0, create(2, 3, Some(Tag::Blue))),
                (0, create(3, -1, None)),
                (
                    0,
                    Op::Query {
                        coll: 0,
                        filter: RecordFilter::NGte(0),
                        desc: true,
                        limit: Some(2),
                    },
                ),
            ],
        );
        let reply = &expected_after(&suite, "q4")[0].1[0];
        assert_eq!(reply["total"], 3);
        assert_eq!(reply["count"], 2);
        // Equal on `n`, records fall back to `_id` ascending.
        let ids: Vec<&Value> = reply["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["$literal"]["_id"])
            .collect();
        assert_eq!(ids, [&json!("k1"), &json!("k2")]);
    }

    #[test]
    fn a_dropped_member_leaves_its_rooms_with_reason_disconnected() {
        let suite = suite(
            2,
            &[
                (
                    0,
                    Op::Join {
                        room: 0,
                        observer: false,
                        display_name: None,
                    },
                ),
                (
                    1,
                    Op::Join {
                        room: 0,
                        observer: true,
                        display_name: None,
                    },
                ),
                (1, Op::Reconnect),
                (1, Op::Post { room: 0, n: 1 }),
            ],
        );
        let steps = steps(&suite);
        let reconnect = steps.iter().position(|s| s["step"] == "reconnect").unwrap();
        let presence = steps[reconnect..]
            .iter()
            .find(|s| s["conn"] == "c0" && s["step"] == "expect_all")
            .unwrap();
        assert_eq!(presence["match"][0]["action"], "left");
        assert_eq!(presence["match"][0]["reason"], "disconnected");
        assert_eq!(presence["match"][0]["member"]["connection_id"], "${c1_id0}");
        // After reconnecting, c1 is no member: its post is forbidden.
        let after = expected_after(&suite, "q3");
        assert_eq!(after[0].1[0]["error"]["code"], "forbidden");
    }

    #[test]
    fn a_history_page_lists_the_newest_messages_before_the_cursor() {
        let join = Op::Join {
            room: 0,
            observer: false,
            display_name: None,
        };
        let post = |n| Op::Post { room: 0, n };
        let suite = suite(
            2,
            &[
                (0, join.clone()),
                (1, join),
                (0, post(1)),
                (1, post(2)),
                (0, post(3)),
                (
                    1,
                    Op::History {
                        room: 0,
                        before: Some(2),
                        limit: Some(1),
                    },
                ),
            ],
        );
        let steps = steps(&suite);
        let request = steps.iter().find(|s| s["json"]["id"] == "q5").unwrap();
        let posted = |id: &str| {
            steps
                .iter()
                .find_map(|s| {
                    s["match"]
                        .as_array()?
                        .iter()
                        .find(|p| p["id"] == id)
                        .map(|p| p["message_id"]["$capture"].as_str().unwrap().to_string())
                })
                .unwrap()
        };
        // The cursor is the third message: the page is the second alone,
        // and the first is older still.
        assert_eq!(request["json"]["before"], format!("${{{}}}", posted("q4")));
        let page = &expected_after(&suite, "q5")[0].1[0];
        assert_eq!(page["has_more"], true);
        let messages = page["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["message_id"], format!("${{{}}}", posted("q3")));
        assert_eq!(messages[0]["body"]["$literal"]["n"], 2);
    }

    #[test]
    fn a_member_alone_in_its_room_leaves_before_reconnecting() {
        let suite = suite(
            1,
            &[
                (
                    0,
                    Op::Join {
                        room: 0,
                        observer: false,
                        display_name: None,
                    },
                ),
                (0, Op::Reconnect),
            ],
        );
        let steps = steps(&suite);
        let leave = steps
            .iter()
            .position(|s| s["json"]["type"] == "leave")
            .expect("a leave");
        let reconnect = steps.iter().position(|s| s["step"] == "reconnect").unwrap();
        assert!(leave < reconnect);
        assert_eq!(steps[leave + 1]["match"][0]["type"], "left");
    }

    #[test]
    fn a_member_of_a_shared_and_a_lone_room_leaves_one_and_drops_from_the_other() {
        let join = |room| Op::Join {
            room,
            observer: false,
            display_name: None,
        };
        let suite = suite(
            2,
            &[(1, join(0)), (0, join(0)), (1, join(1)), (1, Op::Reconnect)],
        );
        let steps = steps(&suite);
        let reconnect = steps.iter().position(|s| s["step"] == "reconnect").unwrap();
        let leave = steps
            .iter()
            .position(|s| s["json"]["type"] == "leave")
            .unwrap();
        let presence = steps
            .iter()
            .position(|s| s["conn"] == "c0" && s["match"][0]["type"] == "presence")
            .unwrap();
        // The lone room is left before the close; the other member hears of
        // the departure from the shared room only after it.
        assert!(leave < reconnect && reconnect < presence, "{steps:#?}");
        assert_eq!(steps[presence]["match"][0]["reason"], "disconnected");
    }

    #[test]
    fn a_stale_edit_is_a_conflict_naming_the_current_version() {
        let edit = |stale| Op::Edit {
            room: 1,
            stale,
            text: 'a',
        };
        let suite = suite(
            1,
            &[
                (
                    0,
                    Op::Join {
                        room: 1,
                        observer: false,
                        display_name: None,
                    },
                ),
                (0, edit(false)),
                (0, edit(false)),
                (0, edit(true)),
            ],
        );
        let steps = steps(&suite);
        let stale = steps.iter().find(|s| s["json"]["id"] == "q3").unwrap();
        assert_eq!(stale["json"]["version"], 1);
        let reply = &expected_after(&suite, "q3")[0].1[0];
        assert_eq!(reply["error"]["code"], "conflict");
        assert_eq!(reply["error"]["details"]["current_version"], 2);
    }

    /// The steps after the last send of a burst whose first request is `id`.
    fn after_burst<'a>(suite: &'a Value, id: &str) -> Vec<&'a Value> {
        let steps = steps(suite);
        let first = steps.iter().position(|s| s["json"]["id"] == id).unwrap();
        steps[first + 2..]
            .iter()
            .take_while(|s| s["step"] != "send")
            .collect()
    }

    /// A burst of two publishes (first request `q1-0`) to connection 0's
    /// subscription; whether `publisher` is connection 0 decides what order
    /// the suite may insist on.
    fn burst_to_subscriber(publisher: usize) -> Value {
        let publish = |n| Op::Publish { topic: 0, n };
        suite(
            publisher + 1,
            &[
                (
                    0,
                    Op::Subscribe {
                        topic: 0,
                        min: None,
                    },
                ),
                (publisher, Op::Burst(vec![publish(1), publish(2)])),
            ],
        )
    }

    #[test]
    fn a_burst_expects_the_events_of_one_subscription_in_order() {
        let suite = burst_to_subscriber(1);
        let after = after_burst(&suite, "q1-0");
        let on = |conn: &str| -> Vec<&Value> {
            after
                .iter()
                .copied()
                .filter(|s| s["conn"] == conn)
                .collect()
        };
        let events = on("c0");
        assert_eq!(events.len(), 2, "{after:#?}");
        assert!(events.iter().all(|s| s["step"] == "expect"));
        assert_eq!(events[0]["match"]["data"]["$literal"]["n"], 1);
        assert_eq!(events[1]["match"]["data"]["$literal"]["n"], 2);
        // The publisher's replies are one ordered stream too.
        let replies = on("c1");
        assert!(replies.iter().all(|s| s["step"] == "expect"));
        assert_eq!(replies[0]["match"]["id"], "q1-0");
        assert_eq!(replies[1]["match"]["id"], "q1-1");
    }

    #[test]
    fn a_burst_leaves_replies_and_events_of_one_connection_unordered() {
        let suite = burst_to_subscriber(0);
        let after = after_burst(&suite, "q1-0");
        assert_eq!(after.len(), 1, "{after:#?}");
        assert_eq!(after[0]["step"], "expect_all");
        assert_eq!(after[0]["match"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn stats_count_the_connection_exactly_and_the_server_as_a_bound() {
        let suite = suite(
            2,
            &[
                (
                    0,
                    Op::Subscribe {
                        topic: 0,
                        min: None,
                    },
                ),
                (1, Op::Publish { topic: 0, n: 1 }),
                (
                    0,
                    Op::Undecodable {
                        kind: crate::Undecodable::NotJson,
                    },
                ),
                (0, Op::Stats),
            ],
        );
        let reply = &expected_after(&suite, "q3")[0].1[0];
        // Sent: subscribe, the refused frame, get_stats; predicted: welcome,
        // subscribed, publication, error.
        assert_eq!(reply["connection"]["subscriptions"], 1);
        assert_eq!(reply["connection"]["rooms"], 0);
        assert_eq!(reply["connection"]["messages_in"], 3);
        assert_eq!(reply["connection"]["messages_out"]["$gte"], 4);
        assert_eq!(reply["server"]["connections"]["$gte"], 2);
        assert_eq!(reply["server"]["subscriptions"]["$gte"], 1);
    }

    #[test]
    fn a_frame_without_type_is_refused_with_its_readable_id() {
        let suite = suite(
            1,
            &[(
                0,
                Op::Undecodable {
                    kind: crate::Undecodable::MissingType,
                },
            )],
        );
        let steps = steps(&suite);
        let sent = steps.iter().position(|s| s.get("text").is_some()).unwrap();
        let reply = &steps[sent + 1]["match"][0];
        assert_eq!(reply["id"], "q0");
        assert_eq!(reply["error"]["code"], "invalid_message");
        assert_eq!(reply["error"]["details"]["path"], "type");
    }

    #[test]
    fn a_flood_sends_one_frame_over_the_rate_on_its_own_connection() {
        let suite = suite(1, &[(0, Op::Flood { messages: 5 })]);
        let steps = steps(&suite);
        let sends: Vec<&Value> = steps.iter().filter(|s| s["conn"] == "q0-flood").collect();
        assert_eq!(sends[0]["step"], "open");
        assert_eq!(sends[2]["repeat"], 5);
        assert_eq!(sends[3]["json"]["id"], "q0");
        assert_eq!(sends[4]["match"]["error"]["code"], "rate_limited");
        assert_eq!(sends[5]["step"], "close");
    }

    #[test]
    fn a_resumed_watch_expects_exactly_the_missed_changes_its_filter_selects() {
        let create = |key, n| Op::Create {
            coll: 0,
            key,
            n,
            tag: None,
        };
        let suite = suite(
            1,
            &[(
                0,
                Op::ResumeWatch {
                    coll: Some(0),
                    filter: EventFilter::FullDocumentNGte(2),
                    before: vec![create(0, 3)],
                    after: vec![create(1, 1), create(2, 5)],
                    live: vec![create(3, 4)],
                    from: crate::ResumeFrom::Token,
                },
            )],
        );
        let steps = steps(&suite);
        let on = |conn: &str| -> Vec<&Value> {
            steps
                .iter()
                .filter(|s| s["conn"] == conn && s["step"] == "expect")
                .collect()
        };
        let first = on("q0-watcher");
        // The welcome, the watching reply, the one change seen before the disconnect.
        assert_eq!(first.len(), 3, "{first:#?}");
        let token = first[2]["match"]["event"]["resume_token"]["$capture"]
            .as_str()
            .unwrap();
        let request = steps
            .iter()
            .find(|s| s["conn"] == "q0-resumed" && s["json"]["type"] == "watch")
            .unwrap();
        assert_eq!(request["json"]["resume_after"], format!("${{{token}}}"));
        let resumed = on("q0-resumed");
        let keys: Vec<&Value> = resumed
            .iter()
            .filter(|s| s["match"]["type"] == "change")
            .map(|s| &s["match"]["event"]["document_key"]["_id"]["$literal"])
            .collect();
        // k1 (n 1) is missed but filtered out; k2 is replayed, k3 arrives live.
        assert_eq!(keys, [&json!("k2"), &json!("k3")]);
        assert_eq!(resumed[1]["match"]["resumed"], true);
    }

    #[test]
    fn a_watch_from_beyond_the_head_is_history_lost_and_receives_nothing() {
        let suite = suite(
            1,
            &[(
                0,
                Op::ResumeWatch {
                    coll: None,
                    filter: EventFilter::All,
                    before: vec![],
                    after: vec![],
                    live: vec![Op::Create {
                        coll: 1,
                        key: 0,
                        n: 0,
                        tag: None,
                    }],
                    from: crate::ResumeFrom::BeyondHead,
                },
            )],
        );
        let steps = steps(&suite);
        let resumed: Vec<&Value> = steps
            .iter()
            .filter(|s| s["conn"] == "q0-resumed" && s["step"] == "expect")
            .collect();
        assert_eq!(resumed.len(), 3, "{resumed:#?}");
        assert_eq!(resumed[1]["match"]["error"]["code"], "history_lost");
        assert_eq!(resumed[2]["match"]["type"], "pong");
    }

    #[test]
    fn narrower_scopes_end_the_room_and_refuse_writes_and_another_principal() {
        let suite = suite(
            1,
            &[(
                0,
                Op::Reauth {
                    handshake: false,
                    steps: vec![
                        AuthStep::Reader,
                        AuthStep::Write { key: 0 },
                        AuthStep::Admin,
                        AuthStep::Publish { n: 1 },
                    ],
                },
            )],
        );
        let steps = steps(&suite);
        let reply = |id: &str| {
            let sent = steps.iter().position(|s| s["json"]["id"] == id).unwrap();
            steps[sent + 1]["match"].clone()
        };
        let narrowed = reply("q0-0");
        assert_eq!(narrowed[0]["type"], "authenticated");
        assert_eq!(narrowed[1]["reason"], "scopes_narrowed");
        assert_eq!(reply("q0-1")["error"]["code"], "forbidden");
        assert_eq!(reply("q0-2")["error"]["code"], "forbidden");
        // The topic subscription outlives the narrowing.
        let publication = steps
            .iter()
            .find(|s| s["match"]["type"] == "publication")
            .unwrap();
        assert_eq!(publication["conn"], "q0-auth");
        assert_eq!(
            suite["cases"][0]["needs"],
            json!(["token_reader", "token_admin", "jwt_expired"])
        );
    }

    #[test]
    fn a_rejoining_member_expects_the_missed_messages_after_its_last_one() {
        let suite = suite(
            1,
            &[(
                0,
                Op::RejoinRoom {
                    before: vec![1],
                    after: vec![2, 3],
                    live: vec![4],
                },
            )],
        );
        let steps = steps(&suite);
        let received: Vec<&Value> = steps
            .iter()
            .filter(|s| s["conn"] == "q0-member" && s["match"]["type"] == "room_message")
            .collect();
        assert_eq!(received.len(), 1);
        let last = &received[0]["match"]["message"]["position"];
        let rejoin = steps
            .iter()
            .find(|s| s["conn"] == "q0-rejoined" && s["json"]["type"] == "join")
            .unwrap();
        assert_eq!(
            rejoin["json"]["start_after"]["seq"],
            format!("${{{}}}", last["seq"]["$capture"].as_str().unwrap())
        );
        let bodies: Vec<&Value> = steps
            .iter()
            .filter(|s| s["conn"] == "q0-rejoined" && s["match"]["type"] == "room_message")
            .map(|s| &s["match"]["message"]["body"]["$literal"]["n"])
            .collect();
        assert_eq!(bodies, [&json!(2), &json!(3), &json!(4)]);
    }
}
