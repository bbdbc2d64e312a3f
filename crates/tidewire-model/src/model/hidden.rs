//! Predictions of row-level authorization (section 8.5) on the `authz_url`
//! server: to a principal, a record hidden from it does not exist.

use super::*;
use crate::{HiddenStep, Privacy};

/// The two principals of a hidden-records scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Principal {
    /// `${authz_owner}`, who writes.
    Owner,
    /// The principal of `${token_reader}`, another one.
    Other,
}

/// Whether `principal` may see `record` by the rule the run variables
/// describe: a record whose `private` is `true` only by the principal its
/// `owner` names, any other by everyone. Only `true` or no `private` is
/// ever written, the values whose meaning the rule states.
fn visible(principal: Principal, record: &Map<String, Value>) -> bool {
    if record.get("private") != Some(&json!(true)) {
        return true;
    }
    principal == Principal::Owner && record.get("owner") == Some(&json!("${authz_owner}"))
}

/// The event a watch of `principal` gets for a change whose record was
/// `before` and is `after` it (TW-AUTHZ-3, -4, -5), before its filter: an
/// update it sees only on one side is a delete or an insert.
fn event_for(
    principal: Principal,
    mut event: Map<String, Value>,
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
) -> Option<Map<String, Value>> {
    let saw = before.is_some_and(|r| visible(principal, r));
    let sees = after.is_some_and(|r| visible(principal, r));
    let operation = match (saw, sees) {
        (false, false) => return None,
        (true, true) => return Some(event),
        (true, false) => "delete",
        (false, true) => "insert",
    };
    event.insert("operation_type".into(), json!(operation));
    event.remove("update_description");
    match after.filter(|_| operation == "insert") {
        Some(record) => event.insert("full_document".into(), Value::Object(record.clone())),
        None => event.remove("full_document"),
    };
    Some(event)
}

/// `event` as a pattern: the records are the client's data, as they were;
/// what sections 8.2 and 8.5 leave out of an event must be absent.
fn event_pattern(subscription: &str, event: &Map<String, Value>) -> Value {
    let mut pattern = Map::new();
    for (member, value) in event {
        let value = match member.as_str() {
            "full_document" => json!({"$literal": value}),
            _ => value.clone(),
        };
        pattern.insert(member.clone(), value);
    }
    for member in ["full_document", "update_description"] {
        if !event.contains_key(member) {
            pattern.insert(member.into(), json!({"$absent": true}));
        }
    }
    pattern.insert("committed_at".into(), timestamp());
    pattern.insert("resume_token".into(), ANY_STRING());
    json!({"type": "change", "subscription": format!("${{{subscription}}}"), "event": pattern})
}

impl Model {
    /// The owner writes in a collection of the scenario's own while both
    /// principals watch it, and either reads: every reply, event and count
    /// is the one the principal's view of the collection gives
    /// (TW-AUTHZ-1 to TW-AUTHZ-5).
    pub(super) fn apply_hidden_records(
        &mut self,
        id: &str,
        filter: EventFilter,
        steps: &[HiddenStep],
    ) {
        let owner = format!("{id}-owner");
        let other = format!("{id}-other");
        let collection = format!("{id}-h");
        for (conn, token) in [
            (&owner, "${authz_owner_token}"),
            (&other, "${token_reader}"),
        ] {
            self.steps.push(json!({
                "step": "open",
                "conn": conn,
                "url": "${authz_url}",
                "query": {"token": token},
                "subprotocols": ["tidewire.v1"],
                "ignore": [{"type": "heartbeat"}],
            }));
            self.steps
                .push(json!({"step": "expect", "conn": conn, "match": {"type": "welcome"}}));
        }
        let filter_json = filter.to_json();
        let filters = [
            (&owner, Principal::Owner, None),
            (&other, Principal::Other, filter_json),
        ];
        let mut watches = Vec::new();
        for (conn, principal, filter_json) in filters {
            let rid = format!("{id}-w{}", watches.len());
            self.send_on(
                conn,
                watch_request(
                    rid.clone(),
                    DATABASE.into(),
                    Some(collection.clone()),
                    &filter_json,
                ),
            );
            let var = self.fresh_var(0, "hw");
            self.steps
                .push(json!({"step": "expect", "conn": conn, "match": {
                    "type": "watching", "id": rid,
                    "subscription": {"$type": "string", "$capture": var},
                }}));
            watches.push((conn.clone(), principal, evaluator(&filter_json), var));
        }
        let mut records: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for (i, step) in steps.iter().enumerate() {
            let rid = format!("{id}-{i}");
            let write = |k: u8| {
                (
                    Some(coll_name(DATABASE.into())),
                    Some(coll_name(collection.clone())),
                    key(k),
                )
            };
            let (message, change) = match *step {
                HiddenStep::Query { by_owner, min } => {
                    self.hidden_query(&rid, [&owner, &other], by_owner, &collection, &records, min);
                    continue;
                }
                HiddenStep::Get { by_owner, key: k } => {
                    let (conn, principal) = if by_owner {
                        (&owner, Principal::Owner)
                    } else {
                        (&other, Principal::Other)
                    };
                    let (database, collection, record_id) = write(k);
                    self.send_on(
                        conn,
                        typed(Read {
                            id: request_id(rid.clone()),
                            database,
                            collection,
                            record_id: Some(record_id.clone()),
                            filter: None,
                            sort: Vec::new(),
                            limit: None,
                            offset: None,
                            fields: None,
                        }),
                    );
                    let reply = match records.get(&record_id).filter(|r| visible(principal, r)) {
                        // TW-AUTHZ-1: hidden is exactly as missing.
                        None => error(&rid, ErrorCode::NotFound),
                        Some(record) => json!({
                            "type": "records", "id": rid,
                            "records": [{"$literal": record}], "total": 1, "count": 1,
                        }),
                    };
                    self.steps
                        .push(json!({"step": "expect", "conn": conn, "match": reply}));
                    continue;
                }
                HiddenStep::Create { key: k, n, privacy } => {
                    let (database, collection, record_id) = write(k);
                    let mut record = Map::new();
                    record.insert("_id".into(), json!(record_id));
                    record.insert("n".into(), json!(n));
                    record.extend(hiding(privacy));
                    let message = typed(Create {
                        id: request_id(rid.clone()),
                        database,
                        collection,
                        record: record.clone(),
                        idempotency_key: None,
                    });
                    let change = match records.get(&record_id) {
                        Some(_) => None,
                        None => {
                            records.insert(record_id.clone(), record.clone());
                            Some(("insert", record_id, None, Some(record), Map::new(), vec![]))
                        }
                    };
                    (message, change)
                }
                HiddenStep::Renumber { key: k, n } => {
                    let set = Map::from_iter([("n".to_string(), json!(n))]);
                    self.hidden_update(&rid, write(k), &mut records, set, vec![])
                }
                HiddenStep::Hide { key: k, privacy } => {
                    let set = hiding(privacy);
                    self.hidden_update(&rid, write(k), &mut records, set, vec![])
                }
                HiddenStep::Reveal { key: k } => {
                    let unset = vec!["private".to_string()];
                    self.hidden_update(&rid, write(k), &mut records, Map::new(), unset)
                }
                HiddenStep::Delete { key: k } => {
                    let (database, collection, record_id) = write(k);
                    let message = typed(Delete {
                        id: request_id(rid.clone()),
                        database,
                        collection,
                        record_id: record_id.clone(),
                        idempotency_key: None,
                    });
                    let change = records.remove(&record_id).map(|before| {
                        ("delete", record_id, Some(before), None, Map::new(), vec![])
                    });
                    (message, change)
                }
            };
            let kind = message["type"].as_str().unwrap_or_default().to_string();
            self.send_on(&owner, message);
            let Some((operation, record_id, before, after, set, removed)) = change else {
                // Writes are not narrowed (section 8.5): a missing record is
                // missing to the writer, hidden or not.
                let code = if kind == "create" {
                    ErrorCode::Conflict
                } else {
                    ErrorCode::NotFound
                };
                self.steps
                    .push(json!({"step": "expect", "conn": owner, "match": error(&rid, code)}));
                continue;
            };
            let reply = match (&after, kind.as_str()) {
                (Some(record), "create") => {
                    json!({"type": "created", "id": rid, "record": {"$literal": record}})
                }
                (Some(record), _) => {
                    json!({"type": "updated", "id": rid, "record": {"$literal": record}})
                }
                (None, _) => json!({"type": "deleted", "id": rid, "record_id": record_id}),
            };
            let mut event = Map::new();
            event.insert("operation_type".into(), json!(operation));
            event.insert(
                "ns".into(),
                json!({"database": DATABASE, "collection": collection}),
            );
            event.insert("document_key".into(), json!({"_id": record_id}));
            match (operation, &after) {
                ("insert", Some(record)) => {
                    event.insert("full_document".into(), Value::Object(record.clone()));
                }
                ("update", _) => {
                    event.insert(
                        "update_description".into(),
                        json!({"updated_fields": set, "removed_fields": removed}),
                    );
                }
                _ => {}
            }
            // The reply and the owner's own event are of two streams, in either order.
            let mut owner_frames = vec![reply];
            let mut other_frames = Vec::new();
            for (conn, principal, filter, var) in &watches {
                let Some(sent) =
                    event_for(*principal, event.clone(), before.as_ref(), after.as_ref())
                else {
                    continue;
                };
                if !filter.matches(&Value::Object(sent.clone())) {
                    continue;
                }
                let pattern = event_pattern(var, &sent);
                if *conn == owner {
                    owner_frames.push(pattern);
                } else {
                    other_frames.push(pattern);
                }
            }
            self.steps
                .push(json!({"step": "expect_all", "conn": owner, "match": owner_frames}));
            for pattern in other_frames {
                self.steps
                    .push(json!({"step": "expect", "conn": other, "match": pattern}));
            }
        }
        // Nothing more: no event the view does not have.
        for conn in [&owner, &other] {
            let fence = format!("{id}-fence-{conn}");
            self.send_on(conn, json!({"type": "ping", "id": fence}));
            self.steps.push(json!({
                "step": "expect", "conn": conn,
                "match": {"type": "pong", "id": fence},
            }));
            self.steps.push(json!({"step": "close", "conn": conn}));
        }
    }

    /// An update by the owner: the request, and the change it makes.
    #[allow(clippy::type_complexity)]
    fn hidden_update(
        &mut self,
        rid: &str,
        (database, collection, record_id): (Option<CollectionName>, Option<CollectionName>, String),
        records: &mut BTreeMap<String, Map<String, Value>>,
        set: Map<String, Value>,
        unset: Vec<String>,
    ) -> (
        Value,
        Option<(
            &'static str,
            String,
            Option<Map<String, Value>>,
            Option<Map<String, Value>>,
            Map<String, Value>,
            Vec<String>,
        )>,
    ) {
        let message = typed(Update {
            id: request_id(rid.to_string()),
            database,
            collection,
            record_id: record_id.clone(),
            set: set.clone(),
            unset: unset.clone(),
            idempotency_key: None,
        });
        let Some(record) = records.get_mut(&record_id) else {
            return (message, None);
        };
        let before = record.clone();
        let removed: Vec<String> = unset
            .into_iter()
            .filter(|path| record.remove(path).is_some())
            .collect();
        record.extend(set.clone());
        let after = record.clone();
        (
            message,
            Some(("update", record_id, Some(before), Some(after), set, removed)),
        )
    }

    /// A `read` of the collection by one principal: exactly the records it
    /// may see, counted as it sees them (TW-AUTHZ-2).
    fn hidden_query(
        &mut self,
        rid: &str,
        [owner, other]: [&String; 2],
        by_owner: bool,
        collection: &str,
        records: &BTreeMap<String, Map<String, Value>>,
        min: Option<i64>,
    ) {
        let (conn, principal) = if by_owner {
            (owner, Principal::Owner)
        } else {
            (other, Principal::Other)
        };
        let filter_json = min.map(|v| json!({"n": {"$gte": v}}));
        self.send_on(conn, read_by_id(rid, collection.to_string(), &filter_json));
        let evaluator = evaluator(&filter_json);
        // `records` is keyed by `_id`, so in the order the read sorts by.
        let seen: Vec<Value> = records
            .values()
            .filter(|r| visible(principal, r))
            .map(|r| Value::Object(r.clone()))
            .filter(|r| evaluator.matches(r))
            .map(|r| json!({"$literal": r}))
            .collect();
        let total = seen.len();
        self.steps
            .push(json!({"step": "expect", "conn": conn, "match": {
                "type": "records", "id": rid, "records": seen, "total": total, "count": total,
            }}));
    }
}

/// The members a write sets to give a record `privacy`.
fn hiding(privacy: Privacy) -> Map<String, Value> {
    let owner = match privacy {
        Privacy::Public => return Map::new(),
        Privacy::Mine => json!("${authz_owner}"),
        Privacy::Nobody => json!(format!("nobody-{NONCE}")),
    };
    Map::from_iter([
        ("private".to_string(), json!(true)),
        ("owner".to_string(), owner),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(op: Op) -> Vec<Value> {
        crate::model::tests::case_steps(1, &[(0, op)])
    }

    #[test]
    fn a_hidden_record_is_a_delete_to_the_other_principal_and_uncounted() {
        let steps = steps(Op::HiddenRecords {
            filter: EventFilter::All,
            steps: vec![
                HiddenStep::Create {
                    key: 0,
                    n: 1,
                    privacy: Privacy::Public,
                },
                HiddenStep::Create {
                    key: 1,
                    n: 2,
                    privacy: Privacy::Mine,
                },
                HiddenStep::Hide {
                    key: 0,
                    privacy: Privacy::Nobody,
                },
                HiddenStep::Query {
                    by_owner: false,
                    min: None,
                },
                HiddenStep::Get {
                    by_owner: true,
                    key: 1,
                },
            ],
        });
        let other: Vec<&Value> = steps
            .iter()
            .filter(|s| s["conn"] == "q0-other" && s["step"] == "expect")
            .map(|s| &s["match"])
            .collect();
        // The welcome, the watching reply, the public insert; the private
        // create is not seen; the hide is a delete; the read finds nothing.
        let events: Vec<&Value> = other
            .iter()
            .filter(|m| m["type"] == "change")
            .copied()
            .collect();
        assert_eq!(events.len(), 2, "{other:#?}");
        assert_eq!(events[0]["event"]["operation_type"], "insert");
        assert_eq!(events[1]["event"]["operation_type"], "delete");
        assert_eq!(
            events[1]["event"]["full_document"],
            json!({"$absent": true})
        );
        assert_eq!(
            events[1]["event"]["update_description"],
            json!({"$absent": true})
        );
        let read = other.iter().find(|m| m["type"] == "records").unwrap();
        assert_eq!(read["total"], 0);
        assert_eq!(read["records"], json!([]));
        // The owner sees its own private record.
        let get = steps
            .iter()
            .find(|s| s["conn"] == "q0-owner" && s["match"]["id"] == "q0-4")
            .unwrap();
        assert_eq!(get["match"]["records"][0]["$literal"]["_id"], "k1");
        assert_eq!(
            get["match"]["records"][0]["$literal"]["owner"],
            "${authz_owner}"
        );
    }

    #[test]
    fn a_revealed_record_is_an_insert_carrying_the_record() {
        let steps = steps(Op::HiddenRecords {
            filter: EventFilter::All,
            steps: vec![
                HiddenStep::Create {
                    key: 2,
                    n: 0,
                    privacy: Privacy::Nobody,
                },
                HiddenStep::Reveal { key: 2 },
                HiddenStep::Get {
                    by_owner: false,
                    key: 2,
                },
            ],
        });
        let events: Vec<&Value> = steps
            .iter()
            .filter(|s| s["conn"] == "q0-other" && s["match"]["type"] == "change")
            .map(|s| &s["match"]["event"])
            .collect();
        assert_eq!(events.len(), 1, "{steps:#?}");
        assert_eq!(events[0]["operation_type"], "insert");
        assert_eq!(events[0]["full_document"]["$literal"]["_id"], "k2");
        assert_eq!(events[0]["full_document"]["$literal"].get("private"), None);
    }
}
