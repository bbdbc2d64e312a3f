//! Predictions of the records profile: writes, reads and queries, and invalid requests naming them.

use super::*;

impl Model {
    pub(super) fn apply_create(
        &mut self,
        conn: usize,
        id: &str,
        coll: u8,
        k: u8,
        n: i64,
        tag: Option<Tag>,
    ) {
        let rid = request_id(id.to_string());
        let key = key(k);
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
                database: Some(coll_name(DATABASE.into())),
                collection: Some(coll_name(collection(coll))),
                record: record.clone(),
                idempotency_key: None,
            }),
            false,
        );
        let records = self.records.entry(coll).or_default();
        if records.contains_key(&key) {
            self.expect(conn, error(id, ErrorCode::Conflict));
            return;
        }
        records.insert(key.clone(), record.clone());
        let record = Value::Object(record);
        self.expect(
            conn,
            json!({"type": "created", "id": id, "record": {"$literal": record}}),
        );
        let mut event = self.event("insert", coll, &key);
        event.insert("origin".into(), self.origin(conn, None));
        self.change(coll, event, (None, Some(&record)));
    }

    /// A create with an idempotency key: a repeat of a remembered write gets
    /// its reply and changes nothing (TW-IDEM-1), another write under the key
    /// is a `conflict` (TW-IDEM-2), a new key behaves as a plain create and
    /// is remembered when the create succeeds.
    pub(super) fn apply_keyed_create(
        &mut self,
        conn: usize,
        id: &str,
        coll: u8,
        k: u8,
        n: i64,
        idem: u8,
    ) {
        let idempotency_key = format!("{NONCE}-i{idem}");
        let mut record = Map::new();
        record.insert("_id".into(), json!(key(k)));
        record.insert("n".into(), json!(n));
        let request = Create {
            id: request_id(id.to_string()),
            database: Some(coll_name(DATABASE.into())),
            collection: Some(coll_name(collection(coll))),
            record: record.clone(),
            idempotency_key: Some(IdempotencyKey(idempotency_key.clone())),
        };
        let fingerprint = without_id(request.clone());
        if let Some((remembered, reply)) = self.keys.get(&idem).cloned() {
            self.send(conn, typed(request), false);
            let same = remembered == fingerprint;
            self.expect_keyed_repeat(conn, id, same, reply, &idempotency_key);
            return;
        }
        self.send(conn, typed(request), false);
        let key = key(k);
        let records = self.records.entry(coll).or_default();
        if records.contains_key(&key) {
            self.expect(conn, error(id, ErrorCode::Conflict));
            return;
        }
        records.insert(key.clone(), record.clone());
        let record = Value::Object(record);
        let reply = json!({"type": "created", "record": {"$literal": record}});
        self.keys.insert(idem, (fingerprint, reply.clone()));
        let mut reply = reply;
        reply["id"] = json!(id);
        self.expect(conn, reply);
        let mut event = self.event("insert", coll, &key);
        event.insert("origin".into(), self.origin(conn, Some(&idempotency_key)));
        self.change(coll, event, (None, Some(&record)));
    }

    pub(super) fn apply_update(&mut self, conn: usize, id: &str, coll: u8, k: u8, change: Change) {
        let rid = request_id(id.to_string());
        let key = key(k);
        let one = |path: &str, value: Value| Map::from_iter([(path.to_string(), value)]);
        let (set, unset): (Map<String, Value>, Vec<String>) = match change {
            Change::SetN(v) => (one("n", json!(v)), vec![]),
            Change::SetTag(t) => (one("tag", json!(t.as_str())), vec![]),
            Change::UnsetTag => (Map::new(), vec!["tag".to_string()]),
            Change::SetNested(v) => (one("meta.v", json!(v)), vec![]),
            Change::SetVec(v) => (one("vec", json!(v)), vec![]),
            Change::SetVecOtherDimension(v) => (one("vec", json!(v)), vec![]),
        };
        self.send(
            conn,
            typed(Update {
                id: rid,
                database: Some(coll_name(DATABASE.into())),
                collection: Some(coll_name(collection(coll))),
                record_id: key.clone(),
                set: set.clone(),
                unset: unset.clone(),
                idempotency_key: None,
            }),
            false,
        );
        let Some(record) = self.records.entry(coll).or_default().get_mut(&key) else {
            self.expect(conn, error(id, ErrorCode::NotFound));
            return;
        };
        let before = Value::Object(record.clone());
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
            Change::SetVec(v) => {
                record.insert("vec".into(), json!(v));
            }
            Change::SetVecOtherDimension(v) => {
                record.insert("vec".into(), json!(v));
            }
        }
        let record = Value::Object(record.clone());
        self.expect(
            conn,
            json!({"type": "updated", "id": id, "record": {"$literal": record}}),
        );
        let mut event = self.event("update", coll, &key);
        event.insert(
            "update_description".into(),
            json!({"updated_fields": set, "removed_fields": removed}),
        );
        event.insert("origin".into(), self.origin(conn, None));
        self.change(coll, event, (Some(&before), Some(&record)));
    }

    pub(super) fn apply_delete(&mut self, conn: usize, id: &str, coll: u8, k: u8) {
        let rid = request_id(id.to_string());
        let key = key(k);
        self.send(
            conn,
            typed(Delete {
                id: rid,
                database: Some(coll_name(DATABASE.into())),
                collection: Some(coll_name(collection(coll))),
                record_id: key.clone(),
                idempotency_key: None,
            }),
            false,
        );
        let Some(before) = self.records.entry(coll).or_default().remove(&key) else {
            self.expect(conn, error(id, ErrorCode::NotFound));
            return;
        };
        self.expect(conn, json!({"type": "deleted", "id": id, "record_id": key}));
        let mut event = self.event("delete", coll, &key);
        event.insert("origin".into(), self.origin(conn, None));
        self.change(coll, event, (Some(&Value::Object(before)), None));
    }

    pub(super) fn apply_get(&mut self, conn: usize, id: &str, coll: u8, k: u8) {
        let rid = request_id(id.to_string());
        let key = key(k);
        self.send(
            conn,
            typed(Read {
                id: rid,
                database: Some(coll_name(DATABASE.into())),
                collection: Some(coll_name(collection(coll))),
                record_id: Some(key.clone()),
                filter: None,
                sort: Vec::new(),
                limit: None,
                offset: None,
                fields: None,
            }),
            false,
        );
        let found = self.records.get(&coll).and_then(|r| r.get(&key)).cloned();
        match found {
            None => self.expect(conn, error(id, ErrorCode::NotFound)),
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

    pub(super) fn apply_query(
        &mut self,
        conn: usize,
        id: &str,
        coll: u8,
        filter: RecordFilter,
        desc: bool,
        limit: Option<u32>,
    ) {
        let rid = request_id(id.to_string());
        let filter_json = filter.to_json();
        let order = if desc {
            SortOrder::Desc
        } else {
            SortOrder::Asc
        };
        self.send(
            conn,
            spelled_as_float(
                typed(Read {
                    id: rid,
                    database: Some(coll_name(DATABASE.into())),
                    collection: Some(coll_name(collection(coll))),
                    record_id: None,
                    filter: wire_filter(&filter_json),
                    sort: vec![SortKey {
                        field: "n".into(),
                        order,
                    }],
                    limit: limit.map(u64::from),
                    offset: None,
                    fields: None,
                }),
                "limit",
            ),
            false,
        );
        let evaluator = evaluator(&filter_json);
        let mut matched: Vec<Value> = self
            .records
            .entry(coll)
            .or_default()
            .values()
            .map(|r| Value::Object(r.clone()))
            .filter(|r| evaluator.matches(r))
            .collect();
        matched.sort_by(|a, b| {
            let by_n = compare(a.get("n"), b.get("n"));
            let by_n = if desc { by_n.reverse() } else { by_n };
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

    pub(super) fn apply_wrong_field_type(&mut self, conn: usize, id: &str) {
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
            error_with(id, ErrorCode::InvalidMessage, json!({"path": "database"})),
        );
    }

    pub(super) fn apply_unknown_operator(&mut self, conn: usize, id: &str, coll: u8) {
        self.send(
            conn,
            json!({
                "type": "read", "id": id, "database": DATABASE,
                "collection": collection(coll), "filter": {"n": {"$near": 1}},
            }),
            true,
        );
        self.expect(
            conn,
            error_with(id, ErrorCode::InvalidMessage, json!({"path": "filter.n"})),
        );
    }

    pub(super) fn event(&self, operation: &str, coll: u8, key: &str) -> Map<String, Value> {
        json!({
            "operation_type": operation,
            "ns": {"database": DATABASE, "collection": collection(coll)},
            "document_key": {"_id": key},
        })
        .as_object()
        .expect("an object")
        .clone()
    }
}
