//! Records, the change journal and watch subscriptions, behind one
//! readers-writer lock. Reads (and their filters) share it, so they do not
//! wait for each other; filters are bounded and linear in the document (see
//! `tidewire_filter::BOUNDS`), so no holder keeps it long.
//!
//! Every write commits under the exclusive lock: it changes the records, appends
//! the event to the journal and pushes it to every matching watch before the
//! lock is released. A watch registers itself, reads the journal head and
//! queues its `watching` reply under the same lock, so no commit can fall
//! between the barrier and the registration, and per subscription events are
//! queued in commit order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tidewire_filter::{Filter, Pipeline};
use tidewire_protocol::{
    ChangeEvent, CollectionName, DocumentKey, ErrorCode, Namespace, Object, OperationType,
    RequestId, ResumeToken, ServerMessage, SortKey, SortOrder, UpdateDescription, Watching,
};

use crate::auth::Action;
use crate::fanout::{change_frame, change_frame_body};
use crate::hooks::RecordVisibility;
use crate::outbound::{Conn, Outbound};
use crate::persist::{Disk, JournalEntry, Recovered, StorageError};
use crate::util::{error, invalid_at, lookup, set_path, timestamp, unset_path};
use crate::variant::Choices;
use tidewire_protocol::ErrorBody;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A committed change, serialized once per variant.
#[derive(Debug)]
pub(crate) struct Event {
    pub position: u64,
    /// Milliseconds since the Unix epoch, for retention by age.
    pub committed_ms: u64,
    pub database: String,
    pub collection: String,
    /// `database.collection`, the target of read scopes.
    pub namespace: String,
    pub token: Arc<str>,
    /// As sent to watches without `full_document` (inserts carry it anyway).
    pub plain: Variant,
    /// Update events as sent to watches that asked for `full_document`.
    pub with_document: Option<Variant>,
    /// What row-level authorization needs, when the server narrows watches.
    pub images: Option<Images>,
}

/// The record before and after a change, and the forms an update takes for
/// a principal who could see the record on one side of it only (TW-AUTHZ-4,
/// TW-AUTHZ-5): to that principal the record disappears or appears.
#[derive(Debug)]
pub(crate) struct Images {
    pub before: Option<Object>,
    pub after: Option<Object>,
    pub as_delete: Option<Variant>,
    pub as_insert: Option<Variant>,
}

/// Which records each principal sees, and the faults that break it.
#[derive(Clone)]
pub(crate) struct Narrowing {
    pub visibility: Arc<dyn RecordVisibility>,
    pub count_hidden_records: bool,
    pub leak_hidden_change: bool,
    pub hide_without_delete: bool,
    pub reveal_as_update: bool,
    pub read_hidden_by_id: bool,
}

impl Narrowing {
    fn sees(&self, principal: &str, event: &Event, record: Option<&Object>) -> bool {
        record.is_some_and(|record| {
            self.visibility
                .visible(principal, &event.database, &event.collection, record)
        })
    }
}

#[derive(Debug)]
pub(crate) struct Variant {
    /// The event JSON and the closing brace of the `change` frame around it,
    /// shared by every subscriber's frame.
    pub frame_body: Utf8Bytes,
    pub value: Value,
}

impl Variant {
    fn of(event: &ChangeEvent, choices: &dyn Choices) -> Variant {
        let mut value = serde_json::to_value(event).expect("change events serialize");
        choices.shape_event(&mut value);
        Variant {
            frame_body: change_frame_body(&value.to_string()),
            value,
        }
    }
}

impl Event {
    /// `event` in its stored form: updates carry `full_document`.
    fn build(
        position: u64,
        committed_ms: u64,
        mut event: ChangeEvent,
        choices: &dyn Choices,
        before: Option<Option<Object>>,
    ) -> Event {
        let images = before.map(|before| {
            let after = event.full_document.clone();
            let (as_delete, as_insert) = match event.operation_type {
                OperationType::Update => {
                    let as_delete = ChangeEvent {
                        operation_type: OperationType::Delete,
                        full_document: None,
                        update_description: None,
                        ..event.clone()
                    };
                    let as_insert = ChangeEvent {
                        operation_type: OperationType::Insert,
                        update_description: None,
                        ..event.clone()
                    };
                    (
                        Some(Variant::of(&as_delete, choices)),
                        Some(Variant::of(&as_insert, choices)),
                    )
                }
                OperationType::Insert | OperationType::Delete => (None, None),
            };
            Images {
                before,
                after,
                as_delete,
                as_insert,
            }
        });
        let database = event.ns.database.to_string();
        let collection = event.ns.collection.to_string();
        let token: Arc<str> = event.resume_token.0.as_str().into();
        let (plain, with_document) = match event.operation_type {
            OperationType::Update => {
                let with_document = Variant::of(&event, choices);
                event.full_document = None;
                (Variant::of(&event, choices), Some(with_document))
            }
            OperationType::Insert | OperationType::Delete => (Variant::of(&event, choices), None),
        };
        Event {
            position,
            committed_ms,
            namespace: format!("{database}.{collection}"),
            database,
            collection,
            token,
            plain,
            with_document,
            images,
        }
    }

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
    fn selects<'e>(&self, event: &'e Event, narrowing: Option<&Narrowing>) -> Option<&'e Variant> {
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
        let variant = match (narrowing, &event.images) {
            (Some(narrowing), Some(images)) => self.narrowed(event, images, narrowing)?,
            _ => event.variant(self.full_document),
        };
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
        Some(variant)
    }

    /// The event as the watch's principal sees it: the changes of a record
    /// it sees on neither side are not there, and an update of one it sees
    /// on one side only is the record appearing or disappearing.
    fn narrowed<'e>(
        &self,
        event: &'e Event,
        images: &'e Images,
        narrowing: &Narrowing,
    ) -> Option<&'e Variant> {
        if narrowing.leak_hidden_change {
            return Some(event.variant(self.full_document));
        }
        let principal = self.conn.identity.read().principal.clone();
        let before = narrowing.sees(&principal, event, images.before.as_ref());
        let after = narrowing.sees(&principal, event, images.after.as_ref());
        match (before, after) {
            (false, false) => None,
            (true, true) => Some(event.variant(self.full_document)),
            // Inserts have no record before and deletes none after, so only
            // an update takes one of its other forms.
            (true, false) => match &images.as_delete {
                Some(_) if narrowing.hide_without_delete => None,
                Some(as_delete) => Some(as_delete),
                None => Some(event.variant(self.full_document)),
            },
            (false, true) => match &images.as_insert {
                Some(_) if narrowing.reveal_as_update => Some(event.variant(self.full_document)),
                Some(as_insert) => Some(as_insert),
                None => Some(event.variant(self.full_document)),
            },
        }
    }

    fn outbound(&self, event: &Event, variant: &Variant) -> Outbound {
        Outbound {
            frame: change_frame(&self.id, &variant.frame_body),
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
    /// Retention by age; `None` keeps events until the count bound drops them.
    max_age: Option<Duration>,
    /// The latest commit time, so commit times never go backwards with the clock.
    last_committed_ms: u64,
    /// The data directory; `None` keeps everything in memory only.
    disk: Option<Arc<Disk>>,
    watches: BTreeMap<(u64, u64), WatchSub>,
    /// How tokens and record ids are written, and how events are shaped.
    choices: Arc<dyn Choices>,
    /// Row-level authorization; `None`: every principal sees every record.
    narrowing: Option<Narrowing>,
}

impl Store {
    pub fn new(epoch: String, retention: usize) -> Store {
        Store {
            epoch,
            collections: HashMap::new(),
            journal: VecDeque::new(),
            head: 0,
            retention,
            max_age: None,
            last_committed_ms: 0,
            disk: None,
            watches: BTreeMap::new(),
            narrowing: None,
            choices: crate::variant::Variant::Usual.choices(),
        }
    }

    pub fn with_choices(mut self, choices: Arc<dyn Choices>) -> Store {
        self.choices = choices;
        self
    }

    pub fn with_narrowing(mut self, narrowing: Option<Narrowing>) -> Store {
        self.narrowing = narrowing;
        self
    }

    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Store {
        self.max_age = max_age;
        self
    }

    /// Rebuilds the store from a data directory, applying the current
    /// retention settings to the recovered journal; later commits go to `disk`.
    pub fn recover(
        mut self,
        disk: Arc<Disk>,
        recovered: &mut Recovered,
    ) -> Result<Store, StorageError> {
        self.epoch = recovered.epoch.clone();
        self.head = recovered.head;
        for (namespace, records) in std::mem::take(&mut recovered.records) {
            self.collections.insert(namespace, records);
        }
        for (position, entry) in std::mem::take(&mut recovered.journal) {
            self.last_committed_ms = self.last_committed_ms.max(entry.committed_ms);
            // The disk keeps no record before each change, without which a
            // narrowing server cannot tell what a principal saw: it replays
            // nothing from before the restart, and answers `history_lost`.
            if self.narrowing.is_some() {
                continue;
            }
            self.journal.push_back(Arc::new(Event::build(
                position,
                entry.committed_ms,
                entry.event,
                &*self.choices,
                None,
            )));
        }
        let dropped = self.dropped_by_retention(now_ms(), 0);
        disk.drop_journal(&dropped)?;
        self.journal.drain(..dropped.len());
        self.disk = Some(disk);
        Ok(self)
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    pub fn token(&self, position: u64) -> String {
        self.choices.resume_token(&self.epoch, position)
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
        let id = match record_id(&record)? {
            Some(id) => id.to_string(),
            None => {
                let id = self.choices.record_id();
                let mut with_id = Map::new();
                with_id.insert("_id".into(), Value::String(id.clone()));
                with_id.extend(record);
                record = with_id;
                id
            }
        };
        if self.get(database, collection, &id).is_some() {
            return Err(error(
                ErrorCode::Conflict,
                format!("a record with _id {id:?} already exists"),
            ));
        }
        self.commit(
            OperationType::Insert,
            (database, collection, &id),
            Some(&record),
            None,
            None,
        )?;
        Ok(record)
    }

    pub fn get(&self, database: &str, collection: &str, id: &str) -> Option<&Value> {
        self.collections
            .get(&(database.to_string(), collection.to_string()))
            .and_then(|records| records.get(id))
    }

    /// The record, unless it is absent or hidden from `principal`: the two
    /// are one answer (TW-AUTHZ-1).
    pub fn read_one(
        &self,
        principal: &str,
        database: &str,
        collection: &str,
        id: &str,
        fields: Option<&[String]>,
    ) -> Option<Object> {
        let leak = self.narrowing.as_ref().is_some_and(|n| n.read_hidden_by_id);
        self.get(database, collection, id)
            .filter(|record| leak || self.sees(principal, database, collection, record))
            .map(|record| project(record, fields))
    }

    fn sees(&self, principal: &str, database: &str, collection: &str, record: &Value) -> bool {
        match (&self.narrowing, record) {
            (Some(narrowing), Value::Object(record)) => narrowing
                .visibility
                .visible(principal, database, collection, record),
            _ => true,
        }
    }

    /// Returns the page of matching records and the number of matches before paging.
    pub fn query(
        &self,
        principal: &str,
        database: &str,
        collection: &str,
        query: &Query,
    ) -> (Vec<Object>, usize) {
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
        let hidden_counted = self
            .narrowing
            .as_ref()
            .filter(|n| n.count_hidden_records)
            .map_or(0, |_| {
                matches
                    .iter()
                    .filter(|r| !self.sees(principal, database, collection, r))
                    .count()
            });
        // Hidden records are dropped before sorting and paging, so `offset`
        // and `total` count only what the principal sees (TW-AUTHZ-2).
        matches.retain(|record| self.sees(principal, database, collection, record));
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
        let total = matches.len() + hidden_counted;
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
        let original = record.clone();
        // `removed_fields` lists the unset paths the record had before this
        // update (TW-WATCH-5), not those a set path of the same update created.
        let mut before = record.clone();
        for (path, value) in set {
            set_path(&mut record, path, value.clone())
                .map_err(|why| invalid_at(format!("set.{path}"), why.to_string()))?;
        }
        let removed: Vec<String> = unset
            .iter()
            .filter(|path| {
                unset_path(&mut record, path);
                unset_path(&mut before, path)
            })
            .cloned()
            .collect();
        let description = UpdateDescription {
            updated_fields: set.clone(),
            removed_fields: removed,
        };
        self.commit(
            OperationType::Update,
            (database, collection, id),
            Some(&record),
            Some(description),
            Some(original),
        )?;
        Ok(record)
    }

    pub fn delete(&mut self, database: &str, collection: &str, id: &str) -> Result<(), ErrorBody> {
        let Some(current) = self.get(database, collection, id) else {
            return Err(not_found(id));
        };
        let original = current.as_object().cloned();
        self.commit(
            OperationType::Delete,
            (database, collection, id),
            None,
            None,
            original,
        )
    }

    /// The journal positions that retention drops once `incoming` more events
    /// are appended (an incoming event itself when the count bound is zero),
    /// oldest first.
    fn dropped_by_retention(&self, now_ms: u64, incoming: usize) -> Vec<u64> {
        let over = (self.journal.len() + incoming).saturating_sub(self.retention);
        let mut dropped: Vec<u64> = self.journal.iter().take(over).map(|e| e.position).collect();
        if over > self.journal.len() {
            dropped.push(self.head + 1);
        }
        dropped.extend(
            self.journal
                .iter()
                .skip(over)
                .take_while(|e| self.expired(e, now_ms))
                .map(|e| e.position),
        );
        dropped
    }

    fn expired(&self, event: &Event, now_ms: u64) -> bool {
        self.max_age.is_some_and(|age| {
            now_ms.saturating_sub(event.committed_ms)
                > u64::try_from(age.as_millis()).unwrap_or(u64::MAX)
        })
    }

    /// Applies a record change (`record` is the record after it, `None` for a
    /// delete) and appends its event. With a data directory the change is
    /// durable before memory changes or any watch sees it; if it cannot be
    /// made durable, memory and watches are left as they were and the write
    /// fails with `internal`.
    fn commit(
        &mut self,
        operation: OperationType,
        (database, collection, id): (&str, &str, &str),
        record: Option<&Object>,
        update: Option<UpdateDescription>,
        before: Option<Object>,
    ) -> Result<(), ErrorBody> {
        let position = self.head + 1;
        let now = SystemTime::now();
        let committed_ms = now_ms_of(now).max(self.last_committed_ms);
        let event = ChangeEvent {
            operation_type: operation,
            ns: Namespace {
                database: CollectionName::new(database).expect("names are validated on input"),
                collection: CollectionName::new(collection).expect("names are validated on input"),
            },
            document_key: DocumentKey { id: id.to_string() },
            // Inserts and updates keep the record; `Event::build` derives the
            // variant without it that update events are sent as by default.
            full_document: record.cloned(),
            update_description: update,
            committed_at: timestamp(now),
            resume_token: ResumeToken(self.token(position)),
        };
        let dropped = self.dropped_by_retention(committed_ms, 1);
        let entry = JournalEntry {
            committed_ms,
            event,
        };
        if let Some(disk) = &self.disk {
            disk.commit_change(
                (database, collection, id),
                record,
                position,
                &entry,
                &dropped,
            )
            .map_err(|err| {
                tracing::error!(%err, "a write could not be made durable");
                error(ErrorCode::Internal, "the write could not be made durable")
            })?;
        }
        self.head = position;
        self.last_committed_ms = committed_ms;
        let records = self
            .collections
            .entry((database.to_string(), collection.to_string()))
            .or_default();
        match record {
            Some(record) => records.insert(id.to_string(), Value::Object(record.clone())),
            None => records.remove(id),
        };
        let event = Arc::new(Event::build(
            position,
            committed_ms,
            entry.event,
            &*self.choices,
            // The images are kept only where a watch may need them.
            self.narrowing.as_ref().map(|_| before),
        ));
        for sub in self.watches.values() {
            if let Some(variant) = sub.selects(&event, self.narrowing.as_ref()) {
                sub.conn.push(sub.outbound(&event, variant));
            }
        }
        self.journal.push_back(event);
        self.journal.drain(..dropped.len().min(self.journal.len()));
        Ok(())
    }

    /// The position after which a resume token replays, if it can be honoured.
    pub(crate) fn resume_position(&self, token: &ResumeToken) -> Result<u64, ErrorBody> {
        let lost = |why: &str| error(ErrorCode::HistoryLost, why.to_string());
        let (epoch, position) = self
            .choices
            .parse_resume_token(&token.0)
            .ok_or_else(|| lost("the resume token is malformed"))?;
        if epoch != self.epoch {
            return Err(lost("the resume token is from another journal epoch"));
        }
        if position > self.head {
            return Err(lost("the resume token is ahead of the journal"));
        }
        // Events past the age bound count as dropped even before the next
        // commit removes them.
        let now = now_ms();
        let first_retained = self
            .journal
            .iter()
            .find(|e| !self.expired(e, now))
            .map_or(self.head + 1, |e| e.position);
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
                if let Some(variant) = sub.selects(event, self.narrowing.as_ref()) {
                    sub.conn.replay(sub.outbound(event, variant));
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

fn now_ms() -> u64 {
    now_ms_of(SystemTime::now())
}

fn now_ms_of(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The `_id` a `create` names, if any. A present `_id` that is not a string is
/// invalid from the request alone, so the session checks it before the scopes
/// (section 4.4) with this same function.
pub(crate) fn record_id(record: &Object) -> Result<Option<&str>, ErrorBody> {
    match record.get("_id") {
        None => Ok(None),
        Some(Value::String(id)) => Ok(Some(id)),
        Some(_) => Err(invalid_at("record._id", "`_id` must be a string")),
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
    fn events_past_the_age_bound_are_lost_before_and_after_the_next_commit() {
        let mut store = Store::new("E".into(), 10).with_max_age(Some(Duration::from_millis(20)));
        for n in 0..2 {
            store
                .create("d", "c", obj(json!({"_id": format!("r{n}")})))
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(60));
        // No commit since: the aged events are still in memory but not resumable.
        assert_eq!(store.journal.len(), 2);
        let err = store
            .resume_position(&ResumeToken("E:0".into()))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::HistoryLost);
        assert_eq!(
            store.resume_position(&ResumeToken("E:2".into())).unwrap(),
            2
        );
        store.create("d", "c", obj(json!({"_id": "r2"}))).unwrap();
        let positions: Vec<u64> = store.journal.iter().map(|e| e.position).collect();
        assert_eq!(positions, [3]);
        assert_eq!(
            store.resume_position(&ResumeToken("E:2".into())).unwrap(),
            2
        );
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
        let (page, total) = store.query("anyone", "d", "c", &query);
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

    fn narrowing() -> Narrowing {
        Narrowing {
            visibility: Arc::new(|principal: &str, _: &str, _: &str, record: &Object| {
                record.get("owner").is_none_or(|o| o == principal)
            }),
            count_hidden_records: false,
            leak_hidden_change: false,
            hide_without_delete: false,
            reveal_as_update: false,
            read_hidden_by_id: false,
        }
    }

    #[test]
    fn a_narrowing_store_reads_and_counts_only_what_the_principal_sees() {
        let mut store = Store::new("E".into(), 10).with_narrowing(Some(narrowing()));
        for (id, owner) in [("a", None), ("b", Some("ann")), ("c", Some("bob"))] {
            let mut record = obj(json!({"_id": id}));
            if let Some(owner) = owner {
                record.insert("owner".into(), owner.into());
            }
            store.create("d", "c", record).unwrap();
        }
        let query = Query {
            filter: None,
            sort: Vec::new(),
            offset: 1,
            limit: 10,
            fields: None,
        };
        let (page, total) = store.query("ann", "d", "c", &query);
        assert_eq!(total, 2);
        assert_eq!(page, [obj(json!({"_id": "b", "owner": "ann"}))]);
        assert!(store.read_one("ann", "d", "c", "c", None).is_none());
        assert!(store.read_one("bob", "d", "c", "c", None).is_some());
        // The journal keeps the record on both sides of an update, for the
        // watches that must see it appear or disappear.
        store
            .update("d", "c", "a", &obj(json!({"owner": "bob"})), &[])
            .unwrap();
        let images = store.journal.back().unwrap().images.as_ref().unwrap();
        assert_eq!(images.before, Some(obj(json!({"_id": "a"}))));
        assert_eq!(
            images.as_delete.as_ref().unwrap().value["operation_type"],
            "delete"
        );
        assert!(images
            .as_delete
            .as_ref()
            .unwrap()
            .value
            .get("full_document")
            .is_none());
        assert_eq!(
            images.as_insert.as_ref().unwrap().value["full_document"],
            json!({"_id": "a", "owner": "bob"})
        );
    }
}
