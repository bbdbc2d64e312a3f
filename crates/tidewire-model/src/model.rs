//! The protocol state a scenario builds up, and what it predicts each
//! connection receives.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use tidewire_filter::{compare, Filter, Pipeline};
use tidewire_protocol::{
    ClientMessage, CollectionName, Create, Delete, Edit, EditOp, GetDocument, Join, Leave, Name,
    Ping, Post, Publish, Read, RequestId, Role, SortKey, SortOrder, Subscribe, Typing, Unsubscribe,
    Update, Watch,
};

use crate::{Action, Change, Op, Scenario};

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

#[derive(Default)]
struct Model {
    connections: usize,
    records: BTreeMap<u8, BTreeMap<String, Map<String, Value>>>,
    /// Live subscriptions in the order they were made.
    subscriptions: Vec<Subscription>,
    /// Members of each room in the order they joined.
    rooms: BTreeMap<u8, Vec<(usize, Role)>>,
    documents: BTreeMap<u8, (u64, String)>,
    /// How often each connection has been opened, for its connection-id variable.
    generation: Vec<u32>,
    next_var: usize,
    steps: Vec<Value>,
    /// Frames each connection must receive for the current action.
    expected: Vec<Vec<Value>>,
}

fn typed(message: impl Into<ClientMessage>) -> Value {
    serde_json::to_value(message.into()).expect("client messages serialize")
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

/// A generated filter as the model evaluates it (absent matches everything).
fn evaluator(filter: &Option<Value>) -> Filter {
    match filter {
        Some(f) => Filter::parse(f).expect("model filters are valid"),
        None => Filter::match_all(),
    }
}

fn error(id: &str, code: &str) -> Value {
    json!({"type": "error", "id": id, "error": {"code": code}})
}

const ANY_STRING: fn() -> Value = || json!({"$type": "string"});

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

    fn member(&self, conn: usize, role: Role) -> Value {
        json!({
            "$exact": true,
            "connection_id": format!("${{{}}}", self.cid_var(conn)),
            "principal": ANY_STRING(),
            "role": role_name(role),
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
        } else {
            json!({
                "step": "open",
                "conn": name,
                "subprotocols": ["tidewire.v1"],
                "ignore": [{"type": "heartbeat"}],
            })
        });
        let cid = self.cid_var(conn);
        self.steps.push(json!({
            "step": "expect",
            "conn": name,
            "match": {"type": "welcome", "connection_id": {"$capture": cid}},
        }));
    }

    fn send_on(&mut self, conn: &str, message: Value) {
        self.steps
            .push(json!({"step": "send", "conn": conn, "json": message}));
    }

    fn send(&mut self, conn: usize, message: Value, invalid: bool) {
        let mut step = json!({"step": "send", "conn": conn_name(conn), "json": message});
        if invalid {
            step["invalid"] = json!(true);
        }
        self.steps.push(step);
    }

    fn expect(&mut self, conn: usize, pattern: Value) {
        self.expected[conn].push(pattern);
    }

    /// Expects each connection's predicted frames. Frames of one ordered
    /// stream (see [`stream`]) are expected one after the other; any mix of
    /// streams in any order, since their interleaving is not specified.
    fn flush(&mut self) {
        for conn in 0..self.connections {
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

    fn members(&self, room: u8) -> &[(usize, Role)] {
        self.rooms.get(&room).map(Vec::as_slice).unwrap_or(&[])
    }

    fn role_of(&self, conn: usize, room: u8) -> Option<Role> {
        self.members(room)
            .iter()
            .find(|(c, _)| *c == conn)
            .map(|(_, role)| *role)
    }

    fn change(&mut self, coll: u8, event: Map<String, Value>, full_document: Option<&Value>) {
        let mut pushes = Vec::new();
        for sub in &self.subscriptions {
            let SubKind::Watch {
                coll: target,
                filter,
                pipeline,
                full_document: wants_full,
            } = &sub.kind
            else {
                continue;
            };
            if target.is_some_and(|t| t != coll) {
                continue;
            }
            let mut sent = event.clone();
            let insert = event["operation_type"] == "insert";
            if let Some(doc) = full_document.filter(|_| insert || *wants_full) {
                sent.insert("full_document".into(), doc.clone());
            }
            let sent = Value::Object(sent);
            if !filter.matches(&sent) || pipeline.as_ref().is_some_and(|p| !p.matches(&sent)) {
                continue;
            }
            let mut pattern: Map<String, Value> = sent
                .as_object()
                .expect("events are objects")
                .iter()
                .map(|(k, v)| (k.clone(), json!({"$literal": v})))
                .collect();
            pattern.insert("$exact".into(), json!(true));
            pattern.insert("committed_at".into(), ANY_STRING());
            pattern.insert("resume_token".into(), ANY_STRING());
            pushes.push((
                sub.conn,
                json!({
                    "type": "change",
                    "subscription": format!("${{{}}}", sub.var),
                    "event": pattern,
                }),
            ));
        }
        for (conn, pattern) in pushes {
            self.expect(conn, pattern);
        }
    }

    fn event(&self, operation: &str, coll: u8, key: &str) -> Map<String, Value> {
        json!({
            "operation_type": operation,
            "ns": {"database": DATABASE, "collection": collection(coll)},
            "document_key": {"_id": key},
        })
        .as_object()
        .expect("an object")
        .clone()
    }

    fn apply(&mut self, id: String, action: &Action) {
        let conn = action.conn;
        let rid = request_id(id.clone());
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
            Op::AwaitHeartbeat { heartbeat_ms } => {
                // Heartbeats are not ignored here, and nothing else is sent:
                // the first frame after the welcome must be one, on time.
                let name = format!("{id}-idle");
                self.side_connection(
                    &name,
                    json!([]),
                    json!({"type": "welcome", "heartbeat_ms": heartbeat_ms}),
                );
                self.steps.push(json!({
                    "step": "expect",
                    "conn": name,
                    "timeout_ms": heartbeat_ms + heartbeat_ms / 2 + 250,
                    "match": {"type": "heartbeat", "at": ANY_STRING()},
                }));
                self.steps.push(json!({"step": "close", "conn": name}));
            }
            Op::OutOfScope { coll } => {
                let name = format!("{id}-narrow");
                self.steps.push(json!({
                    "step": "open",
                    "conn": name,
                    "subprotocols": ["tidewire.v1"],
                    "query": {"token": "${token_narrow}"},
                    "inject": false,
                    "ignore": [{"type": "heartbeat"}],
                }));
                self.steps
                    .push(json!({"step": "expect", "conn": name, "match": {"type": "welcome"}}));
                self.send_on(
                    &name,
                    typed(Create {
                        id: rid,
                        database: coll_name(DATABASE.into()),
                        collection: coll_name(collection(*coll)),
                        record: Map::from_iter([("_id".to_string(), json!("narrow"))]),
                    }),
                );
                self.steps.push(
                    json!({"step": "expect", "conn": name, "match": error(&id, "forbidden")}),
                );
                self.steps.push(json!({"step": "close", "conn": name}));
            }
            Op::Flood { messages } => {
                // The replies to the allowed frames are ignored, not counted:
                // the frame one over the limit is the one that must be refused.
                let name = format!("{id}-flood");
                let allowed = format!("{id}-ok");
                self.side_connection(
                    &name,
                    json!([{"type": "heartbeat"}, {"type": "pong", "id": allowed}]),
                    json!({"type": "welcome", "limits": {"rate": {"messages": messages}}}),
                );
                self.steps.push(json!({
                    "step": "send", "conn": name, "repeat": messages,
                    "json": {"type": "ping", "id": allowed},
                }));
                self.steps.push(json!({
                    "step": "send", "conn": name, "json": {"type": "ping", "id": id},
                }));
                self.steps.push(json!({
                    "step": "expect",
                    "conn": name,
                    "match": {
                        "type": "error", "id": id,
                        "error": {
                            "code": "rate_limited",
                            "details": {"retry_after_ms": {"$type": "integer", "$gte": 1}},
                        },
                    },
                }));
                self.steps.push(json!({"step": "close", "conn": name}));
            }
            Op::Ping { payload } => {
                self.send(
                    conn,
                    typed(Ping {
                        id: rid,
                        payload: Some(json!(payload)),
                    }),
                    false,
                );
                self.expect(
                    conn,
                    json!({"$exact": true, "type": "pong", "id": id, "payload": payload}),
                );
            }
            Op::Create {
                coll,
                key: k,
                n,
                tag,
            } => {
                let key = key(*k);
                let mut record = Map::new();
                record.insert("_id".into(), json!(key));
                record.insert("n".into(), json!(n));
                if let Some(tag) = tag {
                    record.insert("tag".into(), json!(tag.as_str()));
                }
                self.send(
                    conn,
                    typed(Create {
                        id: rid,
                        database: coll_name(DATABASE.into()),
                        collection: coll_name(collection(*coll)),
                        record: record.clone(),
                    }),
                    false,
                );
                let records = self.records.entry(*coll).or_default();
                if records.contains_key(&key) {
                    self.expect(conn, error(&id, "conflict"));
                    return;
                }
                records.insert(key.clone(), record.clone());
                let record = Value::Object(record);
                self.expect(
                    conn,
                    json!({"type": "created", "id": id, "record": {"$literal": record}}),
                );
                let event = self.event("insert", *coll, &key);
                self.change(*coll, event, Some(&record));
            }
            Op::Update {
                coll,
                key: k,
                change,
            } => {
                let key = key(*k);
                let one = |path: &str, value: Value| Map::from_iter([(path.to_string(), value)]);
                let (set, unset): (Map<String, Value>, Vec<String>) = match change {
                    Change::SetN(v) => (one("n", json!(v)), vec![]),
                    Change::SetTag(t) => (one("tag", json!(t.as_str())), vec![]),
                    Change::UnsetTag => (Map::new(), vec!["tag".to_string()]),
                    Change::SetNested(v) => (one("meta.v", json!(v)), vec![]),
                };
                self.send(
                    conn,
                    typed(Update {
                        id: rid,
                        database: coll_name(DATABASE.into()),
                        collection: coll_name(collection(*coll)),
                        record_id: key.clone(),
                        set: set.clone(),
                        unset: unset.clone(),
                    }),
                    false,
                );
                let Some(record) = self.records.entry(*coll).or_default().get_mut(&key) else {
                    self.expect(conn, error(&id, "not_found"));
                    return;
                };
                let mut removed = Vec::new();
                match change {
                    Change::SetN(v) => {
                        record.insert("n".into(), json!(v));
                    }
                    Change::SetTag(t) => {
                        record.insert("tag".into(), json!(t.as_str()));
                    }
                    Change::UnsetTag => {
                        if record.remove("tag").is_some() {
                            removed.push("tag");
                        }
                    }
                    Change::SetNested(v) => {
                        let meta = record
                            .entry("meta")
                            .or_insert_with(|| Value::Object(Map::new()));
                        meta.as_object_mut()
                            .expect("meta is only ever an object")
                            .insert("v".into(), json!(v));
                    }
                }
                let record = Value::Object(record.clone());
                self.expect(
                    conn,
                    json!({"type": "updated", "id": id, "record": {"$literal": record}}),
                );
                let mut event = self.event("update", *coll, &key);
                event.insert(
                    "update_description".into(),
                    json!({"updated_fields": set, "removed_fields": removed}),
                );
                self.change(*coll, event, Some(&record));
            }
            Op::Delete { coll, key: k } => {
                let key = key(*k);
                self.send(
                    conn,
                    typed(Delete {
                        id: rid,
                        database: coll_name(DATABASE.into()),
                        collection: coll_name(collection(*coll)),
                        record_id: key.clone(),
                    }),
                    false,
                );
                if self
                    .records
                    .entry(*coll)
                    .or_default()
                    .remove(&key)
                    .is_none()
                {
                    self.expect(conn, error(&id, "not_found"));
                    return;
                }
                self.expect(conn, json!({"type": "deleted", "id": id, "record_id": key}));
                let event = self.event("delete", *coll, &key);
                self.change(*coll, event, None);
            }
            Op::Get { coll, key: k } => {
                let key = key(*k);
                self.send(
                    conn,
                    typed(Read {
                        id: rid,
                        database: coll_name(DATABASE.into()),
                        collection: coll_name(collection(*coll)),
                        record_id: Some(key.clone()),
                        filter: None,
                        sort: Vec::new(),
                        limit: None,
                        offset: None,
                        fields: None,
                    }),
                    false,
                );
                let found = self.records.get(coll).and_then(|r| r.get(&key)).cloned();
                match found {
                    None => self.expect(conn, error(&id, "not_found")),
                    Some(record) => {
                        let record = Value::Object(record);
                        self.expect(
                            conn,
                            json!({
                                "type": "records", "id": id,
                                "records": [{"$literal": record}], "total": 1, "count": 1,
                            }),
                        );
                    }
                }
            }
            Op::Query {
                coll,
                filter,
                desc,
                limit,
            } => {
                let filter_json = filter.to_json();
                let order = if *desc {
                    SortOrder::Desc
                } else {
                    SortOrder::Asc
                };
                self.send(
                    conn,
                    typed(Read {
                        id: rid,
                        database: coll_name(DATABASE.into()),
                        collection: coll_name(collection(*coll)),
                        record_id: None,
                        filter: wire_filter(&filter_json),
                        sort: vec![SortKey {
                            field: "n".into(),
                            order,
                        }],
                        limit: *limit,
                        offset: None,
                        fields: None,
                    }),
                    false,
                );
                let evaluator = evaluator(&filter_json);
                let mut matched: Vec<Value> = self
                    .records
                    .entry(*coll)
                    .or_default()
                    .values()
                    .map(|r| Value::Object(r.clone()))
                    .filter(|r| evaluator.matches(r))
                    .collect();
                matched.sort_by(|a, b| {
                    let by_n = compare(a.get("n"), b.get("n"));
                    let by_n = if *desc { by_n.reverse() } else { by_n };
                    by_n.then_with(|| compare(a.get("_id"), b.get("_id")))
                });
                let total = matched.len();
                matched.truncate(limit.map_or(100, |l| l as usize));
                let count = matched.len();
                let records: Vec<Value> = matched
                    .into_iter()
                    .map(|r| json!({"$literal": r}))
                    .collect();
                self.expect(
                    conn,
                    json!({
                        "type": "records", "id": id,
                        "records": records, "total": total, "count": count,
                    }),
                );
            }
            Op::Watch {
                coll,
                filter,
                pipeline,
                full_document,
            } => {
                let filter_json = filter.to_json();
                let pipeline_json =
                    pipeline.then(|| json!([{"$match": {"operation_type": {"$ne": "delete"}}}]));
                self.send(
                    conn,
                    typed(Watch {
                        id: rid,
                        database: Some(coll_name(DATABASE.into())),
                        collection: coll.map(|c| coll_name(collection(c))),
                        filter: wire_filter(&filter_json),
                        pipeline: pipeline_json.as_ref().map(|p| {
                            p.as_array()
                                .expect("an array")
                                .iter()
                                .map(|s| s.as_object().expect("an object").clone())
                                .collect()
                        }),
                        full_document: *full_document,
                        resume_after: None,
                    }),
                    false,
                );
                let var = self.fresh_var(conn, "w");
                self.expect(
                    conn,
                    json!({
                        "type": "watching", "id": id,
                        "subscription": {"$type": "string", "$capture": var},
                        "resume_token": ANY_STRING(), "resumed": false,
                    }),
                );
                self.subscriptions.push(Subscription {
                    conn,
                    var,
                    kind: SubKind::Watch {
                        coll: *coll,
                        filter: evaluator(&filter_json),
                        pipeline: pipeline_json
                            .as_ref()
                            .map(|p| Pipeline::parse(p).expect("model pipelines are valid")),
                        full_document: *full_document,
                    },
                });
            }
            Op::Unsubscribe { nth } => {
                let own: Vec<usize> = self
                    .subscriptions
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.conn == conn)
                    .map(|(i, _)| i)
                    .collect();
                if own.is_empty() {
                    self.send(
                        conn,
                        typed(Unsubscribe {
                            id: rid,
                            subscription: "no-such-subscription".into(),
                        }),
                        false,
                    );
                    self.expect(conn, error(&id, "not_found"));
                    return;
                }
                let sub = self.subscriptions.remove(own[*nth as usize % own.len()]);
                let reference = format!("${{{}}}", sub.var);
                self.send(
                    conn,
                    typed(Unsubscribe {
                        id: rid,
                        subscription: reference.clone(),
                    }),
                    false,
                );
                self.expect(
                    conn,
                    json!({"type": "unsubscribed", "id": id, "subscription": reference}),
                );
            }
            Op::Subscribe { topic: t, min } => {
                let filter_json = min.map(|m| json!({"n": {"$gte": m}}));
                self.send(
                    conn,
                    typed(Subscribe {
                        id: rid,
                        topic: name(topic(*t)),
                        filter: wire_filter(&filter_json),
                    }),
                    false,
                );
                let var = self.fresh_var(conn, "s");
                self.expect(
                    conn,
                    json!({
                        "type": "subscribed", "id": id,
                        "subscription": {"$type": "string", "$capture": var},
                    }),
                );
                self.subscriptions.push(Subscription {
                    conn,
                    var,
                    kind: SubKind::Topic {
                        topic: *t,
                        filter: evaluator(&filter_json),
                    },
                });
            }
            Op::Publish { topic: t, n } => {
                let data = json!({"n": n});
                self.send(
                    conn,
                    typed(Publish {
                        id: rid,
                        topic: name(topic(*t)),
                        data: data.clone(),
                    }),
                    false,
                );
                self.expect(
                    conn,
                    json!({
                        "type": "published", "id": id, "topic": topic(*t),
                        "message_id": ANY_STRING(), "published_at": ANY_STRING(),
                    }),
                );
                let pushes: Vec<(usize, Value)> = self
                    .subscriptions
                    .iter()
                    .filter(|s| {
                        matches!(&s.kind, SubKind::Topic { topic, filter }
                            if topic == t && filter.matches(&data))
                    })
                    .map(|s| {
                        (
                            s.conn,
                            json!({
                                "$exact": true,
                                "type": "publication",
                                "subscription": format!("${{{}}}", s.var),
                                "topic": topic(*t),
                                "message_id": ANY_STRING(),
                                "publisher": ANY_STRING(),
                                "published_at": ANY_STRING(),
                                "data": {"$literal": data},
                            }),
                        )
                    })
                    .collect();
                for (c, p) in pushes {
                    self.expect(c, p);
                }
            }
            Op::Join { room: r, observer } => {
                let role = if *observer {
                    Role::Observer
                } else {
                    Role::Participant
                };
                self.send(
                    conn,
                    typed(Join {
                        id: rid,
                        room: name(room(*r)),
                        role,
                    }),
                    false,
                );
                let members = self.rooms.entry(*r).or_default();
                let rejoin = match members.iter_mut().find(|(c, _)| *c == conn) {
                    Some(entry) => {
                        entry.1 = role;
                        true
                    }
                    None => {
                        members.push((conn, role));
                        false
                    }
                };
                let listed: Vec<Value> = self
                    .members(*r)
                    .iter()
                    .map(|(c, role)| self.member(*c, *role))
                    .collect();
                self.expect(
                    conn,
                    json!({
                        "type": "joined", "id": id, "room": room(*r),
                        "role": role_name(role),
                        "members": {"$length": listed.len(), "$contains": listed},
                    }),
                );
                if !rejoin {
                    self.presence(*r, conn, role, "joined", None);
                }
            }
            Op::Leave { room: r } => {
                self.send(
                    conn,
                    typed(Leave {
                        id: rid,
                        room: name(room(*r)),
                    }),
                    false,
                );
                match self.role_of(conn, *r) {
                    None => self.expect(conn, error(&id, "not_found")),
                    Some(role) => {
                        self.rooms
                            .entry(*r)
                            .or_default()
                            .retain(|(c, _)| *c != conn);
                        self.expect(conn, json!({"type": "left", "id": id, "room": room(*r)}));
                        self.presence(*r, conn, role, "left", Some("left"));
                    }
                }
            }
            Op::Post { room: r, n } => {
                let body = json!({"n": n});
                self.send(
                    conn,
                    typed(Post {
                        id: rid,
                        room: name(room(*r)),
                        body: body.clone(),
                    }),
                    false,
                );
                match self.role_of(conn, *r) {
                    None | Some(Role::Observer) => self.expect(conn, error(&id, "forbidden")),
                    Some(role) => {
                        self.expect(
                            conn,
                            json!({
                                "type": "posted", "id": id, "room": room(*r),
                                "message_id": ANY_STRING(), "sent_at": ANY_STRING(),
                            }),
                        );
                        let message = json!({
                            "$exact": true,
                            "type": "room_message",
                            "room": room(*r),
                            "message": {
                                "$exact": true,
                                "message_id": ANY_STRING(),
                                "author": self.member(conn, role),
                                "body": {"$literal": body},
                                "sent_at": ANY_STRING(),
                            },
                        });
                        for (c, _) in self.members(*r).to_vec() {
                            self.expect(c, message.clone());
                        }
                    }
                }
            }
            Op::Typing { room: r, active } => {
                self.send(
                    conn,
                    typed(Typing {
                        id: rid,
                        room: name(room(*r)),
                        active: *active,
                    }),
                    false,
                );
                match self.role_of(conn, *r) {
                    None | Some(Role::Observer) => self.expect(conn, error(&id, "forbidden")),
                    Some(role) => {
                        self.expect(conn, json!({"$exact": true, "type": "ack", "id": id}));
                        let push = json!({
                            "$exact": true, "type": "typing", "room": room(*r),
                            "member": self.member(conn, role), "active": active,
                        });
                        for (c, _) in self.members(*r).to_vec() {
                            if c != conn {
                                self.expect(c, push.clone());
                            }
                        }
                    }
                }
            }
            Op::Edit {
                room: r,
                stale,
                text,
            } => {
                let (version, content) = self.documents.get(r).cloned().unwrap_or_default();
                let sent_version = match (*stale, version) {
                    (false, v) => v,
                    (true, 0) => 1,
                    (true, v) => v - 1,
                };
                let ops = vec![EditOp::Insert {
                    position: 0,
                    text: text.to_string(),
                }];
                self.send(
                    conn,
                    typed(Edit {
                        id: rid,
                        room: name(room(*r)),
                        document: name(DOCUMENT.into()),
                        version: sent_version,
                        ops: ops.clone(),
                    }),
                    false,
                );
                match self.role_of(conn, *r) {
                    None | Some(Role::Observer) => self.expect(conn, error(&id, "forbidden")),
                    Some(_) if *stale => self.expect(
                        conn,
                        json!({
                            "type": "error", "id": id,
                            "error": {"code": "conflict", "details": {"current_version": version}},
                        }),
                    ),
                    Some(role) => {
                        let next = version + 1;
                        self.documents
                            .insert(*r, (next, format!("{text}{content}")));
                        self.expect(
                            conn,
                            json!({
                                "type": "edit_applied", "id": id, "room": room(*r),
                                "document": DOCUMENT, "version": next,
                            }),
                        );
                        let push = json!({
                            "$exact": true, "type": "document_edit", "room": room(*r),
                            "document": DOCUMENT, "version": next,
                            "author": self.member(conn, role),
                            "ops": {"$literal": ops},
                        });
                        for (c, _) in self.members(*r).to_vec() {
                            if c != conn {
                                self.expect(c, push.clone());
                            }
                        }
                    }
                }
            }
            Op::GetDocument { room: r } => {
                self.send(
                    conn,
                    typed(GetDocument {
                        id: rid,
                        room: name(room(*r)),
                        document: name(DOCUMENT.into()),
                    }),
                    false,
                );
                match self.role_of(conn, *r) {
                    None => self.expect(conn, error(&id, "forbidden")),
                    Some(_) => {
                        let (version, content) = self.documents.get(r).cloned().unwrap_or_default();
                        self.expect(
                            conn,
                            json!({
                                "type": "document", "id": id, "room": room(*r),
                                "document": DOCUMENT, "version": version, "content": content,
                            }),
                        );
                    }
                }
            }
            Op::Reconnect => {
                self.subscriptions.retain(|s| s.conn != conn);
                let rooms: Vec<(u8, Role)> = self
                    .rooms
                    .iter()
                    .filter_map(|(r, m)| {
                        m.iter()
                            .find(|(c, _)| *c == conn)
                            .map(|(_, role)| (*r, *role))
                    })
                    .collect();
                for (r, role) in &rooms {
                    self.rooms
                        .entry(*r)
                        .or_default()
                        .retain(|(c, _)| *c != conn);
                    self.presence(*r, conn, *role, "left", Some("disconnected"));
                }
                self.generation[conn] += 1;
                self.open(conn, true);
            }
            Op::UnknownType => {
                self.send(conn, json!({"type": "no_such_type", "id": id}), true);
                self.expect(conn, error(&id, "unknown_type"));
            }
            Op::WrongFieldType => {
                self.send(
                    conn,
                    json!({
                        "type": "create", "id": id, "database": 7,
                        "collection": collection(0), "record": {"n": 1},
                    }),
                    true,
                );
                self.expect(
                    conn,
                    json!({
                        "type": "error", "id": id,
                        "error": {"code": "invalid_message", "details": {"path": "database"}},
                    }),
                );
            }
            Op::UnknownOperator { coll } => {
                self.send(
                    conn,
                    json!({
                        "type": "read", "id": id, "database": DATABASE,
                        "collection": collection(*coll), "filter": {"n": {"$near": 1}},
                    }),
                    true,
                );
                self.expect(
                    conn,
                    json!({
                        "type": "error", "id": id,
                        "error": {"code": "invalid_message", "details": {"path": "filter.n"}},
                    }),
                );
            }
        }
    }

    /// `presence` of `conn` to every other member of `room`. On reconnect the
    /// connection-id variable still names the old connection, as it must.
    fn presence(
        &mut self,
        room_index: u8,
        conn: usize,
        role: Role,
        action: &str,
        reason: Option<&str>,
    ) {
        let mut push = json!({
            "$exact": true, "type": "presence", "room": room(room_index),
            "action": action, "member": self.member(conn, role),
        });
        if let Some(reason) = reason {
            push["reason"] = json!(reason);
        }
        for (c, _) in self.members(room_index).to_vec() {
            if c != conn {
                self.expect(c, push.clone());
            }
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
        model.flush();
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
        model.expect(conn, json!({"$exact": true, "type": "pong", "id": id}));
        model.flush();
    }
    let profile = profile_of(scenario);
    let narrow = scenario
        .actions
        .iter()
        .any(|a| matches!(a.op, Op::OutOfScope { .. }));
    let needs: Vec<&str> = if narrow { vec!["token_narrow"] } else { vec![] };
    with_nonce(json!({
        "description": "A sequence generated by `tidewire-conform prop` and shrunk to a minimal failing one.",
        "schemas": schemas,
        "cases": [{
            "id": case_id,
            "title": title,
            "requirements": requirements,
            "profile": profile,
            "tags": ["prop"],
            "needs": needs,
            "steps": model.steps,
        }],
    }))
}

/// The most specific profile the scenario uses, for the case's `profile`.
fn profile_of(scenario: &Scenario) -> &'static str {
    let uses = |f: fn(&Op) -> bool| {
        scenario
            .actions
            .iter()
            .any(|a| a.op.flatten().into_iter().any(f))
    };
    if uses(|op| matches!(op, Op::Edit { .. } | Op::GetDocument { .. })) {
        "collab"
    } else if uses(|op| {
        matches!(
            op,
            Op::Join { .. } | Op::Leave { .. } | Op::Post { .. } | Op::Typing { .. }
        )
    }) {
        "rooms"
    } else if uses(|op| matches!(op, Op::Watch { .. })) {
        "watch"
    } else if uses(|op| matches!(op, Op::Subscribe { .. } | Op::Publish { .. })) {
        "topics"
    } else if uses(|op| {
        matches!(
            op,
            Op::Create { .. }
                | Op::Update { .. }
                | Op::Delete { .. }
                | Op::Get { .. }
                | Op::Query { .. }
                | Op::WrongFieldType
                | Op::UnknownOperator { .. }
        )
    }) {
        "records"
    } else {
        "core"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventFilter, RecordFilter, Tag};

    fn suite(connections: usize, ops: &[(usize, Op)]) -> Value {
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
        let (conn, change) = &after[0];
        assert_eq!(conn, "c0");
        let event = &change[0]["event"];
        assert_eq!(event["operation_type"]["$literal"], "update");
        assert_eq!(
            event["update_description"]["$literal"],
            json!({"updated_fields": {}, "removed_fields": ["tag"]})
        );
        assert!(event.get("full_document").is_none());
        assert_eq!(event["$exact"], true);
        assert_eq!(
            after[1].1[0]["record"]["$literal"],
            json!({"_id": "k1", "n": 2})
        );
        // Names carry the case's nonce, so reruns against one server do not collide.
        assert_eq!(event["ns"]["$literal"]["database"], "${nonce}d");
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
                    },
                ),
                (
                    1,
                    Op::Join {
                        room: 0,
                        observer: true,
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
}
