//! Records, the change journal and watch subscriptions, behind one lock.
//!
//! Every write commits under the store lock: it changes the records, appends
//! the event to the journal and pushes it to every matching watch before the
//! lock is released. A watch registers itself, reads the journal head and
//! queues its `watching` reply under the same lock, so no commit can fall
//! between the barrier and the registration, and per subscription events are
//! queued in commit order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value};
use tidewire_filter::{Filter, Pipeline};
use tidewire_protocol::{
    ChangeEvent, CollectionName, DocumentKey, ErrorCode, Namespace, Object, OperationType,
    RequestId, ResumeToken, ServerMessage, SortKey, SortOrder, UpdateDescription, Watching,
};

use crate::auth::Action;
use crate::fanout::change_frame;
use crate::outbound::{Conn, Outbound};
use crate::util::{error, invalid_at, lookup, now_timestamp, set_path, unset_path};
use tidewire_protocol::ErrorBody;

/// A committed change, serialized once per variant.
#[derive(Debug)]
pub(crate) struct Event {
    pub position: u64,
    pub database: String,
    pub collection: String,
    /// `database.collection`, the target of read scopes.
    pub namespace: String,
    pub token: Arc<str>,
    /// As sent to watches without `full_document` (inserts carry it anyway).
    pub plain: Variant,
    /// Update events as sent to watches that asked for `full_document`.
    pub with_document: Option<Variant>,
}

#[derive(Debug)]
pub(crate) struct Variant {
    pub json: Arc<str>,
    pub value: Value,
}

impl Variant {
    fn of(event: &ChangeEvent) -> Variant {
        let value = serde_json::to_value(event).expect("change events serialize");
        Variant {
            json: value.to_string().into(),
            value,
        }
    }
}

impl Event {
    fn variant(&self, full_document: bool) -> &Variant {
        match (&self.with_document, full_document) {
            (Some(with_document), true) => with_document,
            _ => &self.plain,
        }
    }
}

/// What a watch selects.
pub(crate) struct WatchSub {
    pub conn: Arc<Conn>,
    pub id: Arc<str>,
    pub database: Option<String>,
    pub collection: Option<String>,
    pub filter: Option<Filter>,
    pub pipeline: Option<Pipeline>,
    pub full_document: bool,
}

impl WatchSub {
    fn selects<'e>(&self, event: &'e Event) -> Option<&'e str> {
        if self
            .database
            .as_ref()
            .is_some_and(|db| *db != event.database)
            || self
                .collection
                .as_ref()
                .is_some_and(|coll| *coll != event.collection)
        {
            return None;
        }
        let variant = event.variant(self.full_document);
        if self
            .filter
            .as_ref()
            .is_some_and(|f| !f.matches(&variant.value))
            || self
                .pipeline
                .as_ref()
                .is_some_and(|p| !p.matches(&variant.value))
        {
            return None;
        }
        // Scopes are read at delivery, so a re-authentication that narrows
        // them takes effect at once.
        if !self
            .conn
            .identity
            .read()
            .scopes
            .allows(Action::Read, &event.namespace)
        {
            return None;
        }
        Some(&variant.json)
    }

    fn outbound(&self, event: &Event, json: &str) -> Outbound {
        Outbound {
            text: change_frame(&self.id, json),
            position: Some((self.id.clone(), event.token.clone())),
            replay: false,
        }
    }
}

/// A parsed `read` query.
pub(crate) struct Query {
    pub filter: Option<Filter>,
    pub sort: Vec<SortKey>,
    pub offset: usize,
    pub limit: usize,
    pub fields: Option<Vec<String>>,
}

pub(crate) struct Store {
    epoch: String,
    collections: HashMap<(String, String), BTreeMap<String, Value>>,
    journal: VecDeque<Arc<Event>>,
    head: u64,
    retention: usize,
    watches: BTreeMap<(u64, u64), WatchSub>,
}

impl Store {
    pub fn new(epoch: String, retention: usize) -> Store {
        Store {
            epoch,
            collections: HashMap::new(),
            journal: VecDeque::new(),
            head: 0,
            retention,
            watches: BTreeMap::new(),
        }
    }

    pub fn token(&self, position: u64) -> String {
        format!("{}:{position}", self.epoch)
    }

    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    pub fn create(
        &mut self,
        database: &str,
        collection: &str,
        mut record: Object,
    ) -> Result<Object, ErrorBody> {
        let id = match record.get("_id") {
            Some(Value::String(id)) => id.clone(),
            Some(_) => return Err(invalid_at("record._id", "`_id` must be a string")),
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                let mut with_id = Map::new();
                with_id.insert("_id".into(), Value::String(id.clone()));
                with_id.extend(record);
                record = with_id;
                id
            }
        };
        let records = self
            .collections
            .entry((database.to_string(), collection.to_string()))
            .or_default();
        if records.contains_key(&id) {
            return Err(error(
                ErrorCode::Conflict,
                format!("a record with _id {id:?} already exists"),
            ));
        }
        records.insert(id.clone(), Value::Object(record.clone()));
        self.commit(
            OperationType::Insert,
            database,
            collection,
            &id,
            Some(&record),
            None,
        );
        Ok(record)
    }

    pub fn get(&self, database: &str, collection: &str, id: &str) -> Option<&Value> {
        self.collections
            .get(&(database.to_string(), collection.to_string()))
            .and_then(|records| records.get(id))
    }

    pub fn read_one(
        &self,
        database: &str,
        collection: &str,
        id: &str,
        fields: Option<&[String]>,
    ) -> Option<Object> {
        self.get(database, collection, id)
            .map(|record| project(record, fields))
    }

    /// Returns the page of matching records and the number of matches before paging.
    pub fn query(&self, database: &str, collection: &str, query: &Query) -> (Vec<Object>, usize) {
        let Some(records) = self
            .collections
            .get(&(database.to_string(), collection.to_string()))
        else {
            return (Vec::new(), 0);
        };
        // The map iterates in `_id` order, and the sort is stable, so ties keep `_id` order.
        let mut matches: Vec<&Value> = records
            .values()
            .filter(|record| query.filter.as_ref().is_none_or(|f| f.matches(record)))
            .collect();
        if !query.sort.is_empty() {
            matches.sort_by(|a, b| {
                for key in &query.sort {
                    let ordering =
                        tidewire_filter::compare(lookup(a, &key.field), lookup(b, &key.field));
                    let ordering = match key.order {
                        SortOrder::Asc => ordering,
                        SortOrder::Desc => ordering.reverse(),
                    };
                    if ordering.is_ne() {
                        return ordering;
                    }
                }
                std::cmp::Ordering::Equal
            });
        }
        let total = matches.len();
        let page = matches
            .into_iter()
            .skip(query.offset)
            .take(query.limit)
            .map(|record| project(record, query.fields.as_deref()))
            .collect();
        (page, total)
    }

    pub fn update(
        &mut self,
        database: &str,
        collection: &str,
        id: &str,
        set: &Object,
        unset: &[String],
    ) -> Result<Object, ErrorBody> {
        let Some(current) = self.get(database, collection, id) else {
            return Err(not_found(id));
        };
        let Value::Object(mut record) = current.clone() else {
            unreachable!("records are objects")
        };
        for (path, value) in set {
            set_path(&mut record, path, value.clone())
                .map_err(|why| invalid_at(format!("set.{path}"), why))?;
        }
        let removed: Vec<String> = unset
            .iter()
            .filter(|path| unset_path(&mut record, path))
            .cloned()
            .collect();
        self.collections
            .get_mut(&(database.to_string(), collection.to_string()))
            .expect("the record was just read")
            .insert(id.to_string(), Value::Object(record.clone()));
        let description = UpdateDescription {
            updated_fields: set.clone(),
            removed_fields: removed,
        };
        self.commit(
            OperationType::Update,
            database,
            collection,
            id,
            Some(&record),
            Some(description),
        );
        Ok(record)
    }

    pub fn delete(&mut self, database: &str, collection: &str, id: &str) -> Result<(), ErrorBody> {
        let removed = self
            .collections
            .get_mut(&(database.to_string(), collection.to_string()))
            .and_then(|records| records.remove(id));
        if removed.is_none() {
            return Err(not_found(id));
        }
        self.commit(OperationType::Delete, database, collection, id, None, None);
        Ok(())
    }

    fn commit(
        &mut self,
        operation: OperationType,
        database: &str,
        collection: &str,
        id: &str,
        record: Option<&Object>,
        update: Option<UpdateDescription>,
    ) {
        self.head += 1;
        let position = self.head;
        let token: Arc<str> = self.token(position).into();
        let mut event = ChangeEvent {
            operation_type: operation,
            ns: Namespace {
                database: CollectionName::new(database).expect("names are validated on input"),
                collection: CollectionName::new(collection).expect("names are validated on input"),
            },
            document_key: DocumentKey { id: id.to_string() },
            full_document: None,
            update_description: update,
            committed_at: now_timestamp(),
            resume_token: ResumeToken(token.to_string()),
        };
        let (plain, with_document) = match operation {
            OperationType::Insert => {
                event.full_document = record.cloned();
                (Variant::of(&event), None)
            }
            OperationType::Update => {
                let plain = Variant::of(&event);
                event.full_document = record.cloned();
                (plain, Some(Variant::of(&event)))
            }
            OperationType::Delete => (Variant::of(&event), None),
        };
        let event = Arc::new(Event {
            position,
            database: database.to_string(),
            collection: collection.to_string(),
            namespace: format!("{database}.{collection}"),
            token,
            plain,
            with_document,
        });
        for sub in self.watches.values() {
            if let Some(json) = sub.selects(&event) {
                sub.conn.push(sub.outbound(&event, json));
            }
        }
        self.journal.push_back(event);
        while self.journal.len() > self.retention {
            self.journal.pop_front();
        }
    }

    /// The position after which a resume token replays, if it can be honoured.
    fn resume_position(&self, token: &ResumeToken) -> Result<u64, ErrorBody> {
        let lost = |why: &str| error(ErrorCode::HistoryLost, why.to_string());
        let (epoch, position) = token
            .0
            .rsplit_once(':')
            .ok_or_else(|| lost("the resume token is malformed"))?;
        let position: u64 = position
            .parse()
            .map_err(|_| lost("the resume token is malformed"))?;
        if epoch != self.epoch {
            return Err(lost("the resume token is from another journal epoch"));
        }
        if position > self.head {
            return Err(lost("the resume token is ahead of the journal"));
        }
        let first_retained = self.journal.front().map_or(self.head + 1, |e| e.position);
        if position + 1 < first_retained {
            return Err(lost(
                "the changes after the resume token are no longer retained",
            ));
        }
        Ok(position)
    }

    /// Registers a watch and queues its `watching` reply (and, when resuming,
    /// the replayed changes) under the store lock: the barrier.
    pub fn watch(
        &mut self,
        key: (u64, u64),
        sub: WatchSub,
        request: RequestId,
        resume_after: Option<&ResumeToken>,
    ) -> Result<ServerMessage, ErrorBody> {
        let resume = resume_after.map(|t| self.resume_position(t)).transpose()?;
        let barrier = self.token(self.head);
        let reply = ServerMessage::Watching(Watching {
            id: request,
            subscription: sub.id.to_string(),
            resume_token: ResumeToken(barrier.clone()),
            resumed: resume.is_some(),
        });
        // Until a change is written, a resumed subscription's position is the
        // token it resumed from: the replayed changes are not delivered yet.
        let start = match resume_after {
            Some(token) => token.0.clone(),
            None => barrier,
        };
        sub.conn.add_position(&sub.id, &start);
        sub.conn.reply(Outbound::message(&reply));
        if let Some(after) = resume {
            for event in self.journal.iter().filter(|e| e.position > after) {
                if let Some(json) = sub.selects(event) {
                    sub.conn.replay(sub.outbound(event, json));
                }
            }
        }
        self.watches.insert(key, sub);
        Ok(reply)
    }

    pub fn unwatch(&mut self, key: (u64, u64)) -> bool {
        self.watches.remove(&key).is_some()
    }

    pub fn drop_connection(&mut self, conn: u64) {
        self.watches.retain(|(c, _), _| *c != conn);
    }
}

fn not_found(id: &str) -> ErrorBody {
    error(ErrorCode::NotFound, format!("no record with _id {id:?}"))
}

/// Keeps `_id` and the given dotted paths that exist.
fn project(record: &Value, fields: Option<&[String]>) -> Object {
    let Some(fields) = fields else {
        return record.as_object().cloned().unwrap_or_default();
    };
    let mut out = Map::new();
    if let Some(id) = record.get("_id") {
        out.insert("_id".into(), id.clone());
    }
    for path in fields {
        if path == "_id" {
            continue;
        }
        if let Some(value) = lookup(record, path) {
            // A path through an existing non-object (an array index) keeps
            // the value under the same keys in nested objects.
            let _ = set_path(&mut out, path, value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn resume_positions_respect_epoch_retention_and_head() {
        let mut store = Store::new("E".into(), 2);
        for n in 0..4 {
            store
                .create("d", "c", obj(json!({"_id": format!("r{n}")})))
                .unwrap();
        }
        // Retained: positions 3 and 4; resuming after 2, 3 or 4 is possible.
        assert_eq!(
            store.resume_position(&ResumeToken("E:2".into())).unwrap(),
            2
        );
        assert_eq!(
            store.resume_position(&ResumeToken("E:4".into())).unwrap(),
            4
        );
        for bad in ["E:1", "E:5", "F:3", "garbage", "E:x", ""] {
            let err = store.resume_position(&ResumeToken(bad.into())).unwrap_err();
            assert_eq!(err.code, ErrorCode::HistoryLost, "{bad}");
        }
    }

    #[test]
    fn query_sorts_pages_and_projects() {
        let mut store = Store::new("E".into(), 10);
        for (id, age) in [("b", 30), ("a", 30), ("c", 20), ("d", 40)] {
            store
                .create(
                    "d",
                    "c",
                    obj(json!({"_id": id, "age": age, "x": {"y": 1, "z": 2}})),
                )
                .unwrap();
        }
        let query = Query {
            filter: Some(Filter::parse(&json!({"age": {"$gte": 25}})).unwrap()),
            sort: vec![SortKey {
                field: "age".into(),
                order: SortOrder::Asc,
            }],
            offset: 1,
            limit: 5,
            fields: Some(vec!["x.y".into(), "missing".into()]),
        };
        let (page, total) = store.query("d", "c", &query);
        assert_eq!(total, 3);
        let page: Vec<Value> = page.into_iter().map(Value::Object).collect();
        assert_eq!(
            page,
            vec![
                json!({"_id": "b", "x": {"y": 1}}),
                json!({"_id": "d", "x": {"y": 1}})
            ]
        );
    }

    #[test]
    fn create_refuses_taken_and_non_string_ids() {
        let mut store = Store::new("E".into(), 10);
        let created = store.create("d", "c", obj(json!({"n": 1}))).unwrap();
        assert!(created.keys().next().is_some_and(|k| k == "_id"));
        let id = created["_id"].as_str().unwrap().to_string();
        let err = store.create("d", "c", obj(json!({"_id": id}))).unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict);
        let err = store.create("d", "c", obj(json!({"_id": 5}))).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMessage);
    }
}
