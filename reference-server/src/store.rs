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
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tidewire_filter::{Filter, Pipeline};
use tidewire_protocol::{
    ChangeEvent, CollectionName, Created, Deleted, DocumentKey, ErrorCode, Metric, Namespace,
    Object, OperationType, Origin, Position, Progress, RequestId, ResumeToken, ScoredRecord,
    ServerMessage, SortKey, SortOrder, UpdateDescription, Updated, ViewTransition, Watching,
    MAX_VECTOR_COMPONENT, MAX_VECTOR_DIMENSIONS,
};

use crate::auth::{Action, Permission};
use crate::fanout::{change_frame, change_frame_body};
use crate::hooks::RecordVisibility;
use crate::idempotency::{Kept, Keys, Remember};
use crate::outbound::{Conn, Outbound};
use crate::persist::{Disk, JournalEntry, Recovered, StorageError};
use crate::similarity;
use crate::util::{error, invalid_at, lookup, set_path, timestamp, unset_path};
use crate::variant::{Choices, StreamKind};
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
    pub operation: OperationType,
    /// The record before the change; `None` for inserts.
    pub before: Option<Object>,
    /// Whether `view` events other than `leave` carry the record before the change.
    pre_image_beyond_leave: bool,
    /// The event as a view's filter sees it before the change: `full_document`
    /// is the record before it. Built when a view first asks.
    before_probe: OnceLock<Value>,
    /// The events sent to view watches, by [`ViewTransition`], built when first sent.
    views: [OnceLock<Variant>; 3],
    /// What row-level authorization needs, when the server narrows watches.
    pub images: Option<Images>,
    /// The `leave` and `enter` events of views whose principal sees the record on
    /// one side of an update only, built when first sent.
    narrowed_views: [OnceLock<Variant>; 2],
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
        narrowed: bool,
    ) -> Event {
        let database = event.ns.database.to_string();
        let collection = event.ns.collection.to_string();
        let token: Arc<str> = event.resume_token.0.as_str().into();
        let operation = event.operation_type;
        // The stored form keeps the pre-image for views; plain watches never see it.
        let before = event.full_document_before_change.take();
        let images = narrowed.then(|| {
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
                before: before.clone(),
                after,
                as_delete,
                as_insert,
            }
        });
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
            operation,
            before,
            pre_image_beyond_leave: choices.pre_image_beyond_leave(),
            before_probe: OnceLock::new(),
            views: Default::default(),
            images,
            narrowed_views: Default::default(),
        }
    }

    fn variant(&self, full_document: bool) -> &Variant {
        match (&self.with_document, full_document) {
            (Some(with_document), true) => with_document,
            _ => &self.plain,
        }
    }

    /// The event a view's filter sees for the record after the change;
    /// `None` for a delete, whose record is in no view after it.
    fn after_probe(&self) -> Option<&Value> {
        match self.operation {
            OperationType::Delete => None,
            _ => Some(&self.variant(true).value),
        }
    }

    /// The event a view's filter sees for the record before the change;
    /// `None` for an insert, whose record was in no view before it.
    fn before_probe(&self) -> Option<&Value> {
        let before = self.before.as_ref()?;
        Some(self.before_probe.get_or_init(|| {
            let mut probe = self.variant(true).value.clone();
            if let Some(event) = probe.as_object_mut() {
                event.insert("full_document".into(), Value::Object(before.clone()));
            }
            probe
        }))
    }

    /// The event a view receives for an update that hides the record from the view's
    /// principal (`leave`, in the form of a delete, with the record before it) or
    /// reveals it (`enter`, in the form of an insert): to that principal the record
    /// disappears or appears (section 8.5), and nothing it may not see is sent.
    fn narrowed_view_variant(
        &self,
        images: &Images,
        transition: ViewTransition,
    ) -> Option<&Variant> {
        let (slot, base) = match transition {
            ViewTransition::Leave => (0, images.as_delete.as_ref()?),
            ViewTransition::Enter => (1, images.as_insert.as_ref()?),
            ViewTransition::Stay => return None,
        };
        let pre_image = self
            .before
            .as_ref()
            .filter(|_| transition == ViewTransition::Leave);
        Some(self.narrowed_views[slot].get_or_init(|| labelled(base, pre_image, transition)))
    }

    /// The event as a view watch receives it for `transition`.
    fn view_variant(&self, transition: ViewTransition) -> &Variant {
        let slot = match transition {
            ViewTransition::Enter => 0,
            ViewTransition::Stay => 1,
            ViewTransition::Leave => 2,
        };
        let pre_image = transition == ViewTransition::Leave
            || (self.pre_image_beyond_leave && self.operation == OperationType::Update);
        let pre_image = self.before.as_ref().filter(|_| pre_image);
        self.views[slot].get_or_init(|| labelled(self.variant(true), pre_image, transition))
    }
}

/// `base` as a view receives it: labelled with `transition`, with the record
/// before the change when one is given.
fn labelled(base: &Variant, pre_image: Option<&Object>, transition: ViewTransition) -> Variant {
    let mut value = base.value.clone();
    if let Some(event) = value.as_object_mut() {
        if let Some(before) = pre_image {
            event.insert(
                "full_document_before_change".into(),
                Value::Object(before.clone()),
            );
        }
        event.insert(
            "view".into(),
            serde_json::to_value(transition).expect("transitions serialize"),
        );
    }
    Variant {
        frame_body: change_frame_body(&value.to_string()),
        value,
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
    /// A live view (`watch.view`): records entering, staying in and leaving
    /// what the filter and pipeline select.
    pub view: bool,
    /// The `view-drops-leaves` fault: records leaving the view are not reported.
    pub drops_leaves: bool,
    /// The head of this watch's change frames (`fanout::change_head`).
    pub head: Utf8Bytes,
    /// Whether the scopes let it read its collection, for a watch of one
    /// collection (the namespace of every change it is sent).
    pub permission: Permission,
}

impl WatchSub {
    fn passes(&self, event: &Value) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(event))
            && self.pipeline.as_ref().is_none_or(|p| p.matches(event))
    }

    /// Whether the change enters, stays in or leaves this view; `None` when
    /// the record is in the view neither before nor after it.
    fn transition(&self, event: &Event) -> Option<ViewTransition> {
        let before = event.before_probe().is_some_and(|e| self.passes(e));
        let after = event.after_probe().is_some_and(|e| self.passes(e));
        self.label(before, after)
    }

    /// The label of a change whose record is in the view `before` and `after` it.
    fn label(&self, before: bool, after: bool) -> Option<ViewTransition> {
        match (before, after) {
            (false, false) => None,
            (false, true) => Some(ViewTransition::Enter),
            (true, true) => Some(ViewTransition::Stay),
            (true, false) if self.drops_leaves => None,
            (true, false) => Some(ViewTransition::Leave),
        }
    }

    /// A view of the records the principal sees: a record it does not see is in
    /// no view, and an update that hides or reveals one is a `leave` or an `enter`
    /// in the form the narrowed stream gives it.
    fn narrowed_view<'e>(
        &self,
        event: &'e Event,
        images: &'e Images,
        narrowing: &Narrowing,
    ) -> Option<&'e Variant> {
        if narrowing.leak_hidden_change {
            return Some(event.view_variant(self.transition(event)?));
        }
        let (seen_before, seen_after) = self.seen(event, images, narrowing);
        let before = seen_before && event.before_probe().is_some_and(|e| self.passes(e));
        let after = seen_after && event.after_probe().is_some_and(|e| self.passes(e));
        let transition = self.label(before, after)?;
        let appears_or_disappears = match transition {
            ViewTransition::Leave => !seen_after,
            ViewTransition::Enter => !seen_before,
            ViewTransition::Stay => false,
        };
        if appears_or_disappears && event.operation == OperationType::Update {
            return event.narrowed_view_variant(images, transition);
        }
        Some(event.view_variant(transition))
    }

    /// Whether the change is in a collection this watch follows.
    fn follows(&self, event: &Event) -> bool {
        self.database
            .as_ref()
            .is_none_or(|db| *db == event.database)
            && self
                .collection
                .as_ref()
                .is_none_or(|coll| *coll == event.collection)
    }

    fn selects<'e>(&self, event: &'e Event, narrowing: Option<&Narrowing>) -> Option<&'e Variant> {
        self.selects_found(event, narrowing, Candidate::Wide)
    }

    /// What this watch is sent of `event`, for a watch the index found as
    /// `found`: one found by the change's collection follows it already.
    fn selects_found<'e>(
        &self,
        event: &'e Event,
        narrowing: Option<&Narrowing>,
        found: Candidate,
    ) -> Option<&'e Variant> {
        if matches!(found, Candidate::Wide) && !self.follows(event) {
            return None;
        }
        let narrowed = narrowing.zip(event.images.as_ref());
        let variant = if let (true, Some((narrowing, images))) = (self.view, narrowed) {
            self.narrowed_view(event, images, narrowing)?
        } else if let Some((narrowing, images)) = narrowed {
            // A narrowed stream is the stream of the records the principal sees;
            // its events are filtered as they are sent (section 8.5).
            let variant = self.narrowed(event, images, narrowing)?;
            if !self.passes(&variant.value) {
                return None;
            }
            variant
        } else if self.view {
            event.view_variant(self.transition(event)?)
        } else {
            let variant = event.variant(self.full_document);
            if !self.passes(&variant.value) {
                return None;
            }
            variant
        };
        // Scopes are read at delivery, so a re-authentication that narrows
        // them takes effect at once.
        let allowed = match found {
            Candidate::OfCollection => {
                self.permission
                    .allows(&self.conn, Action::Read, &event.namespace)
            }
            Candidate::Wide => self
                .conn
                .identity()
                .scopes
                .allows(Action::Read, &event.namespace),
        };
        if !allowed {
            return None;
        }
        Some(variant)
    }

    /// Whether the watch's principal sees the changed record before and
    /// after the change.
    fn seen(&self, event: &Event, images: &Images, narrowing: &Narrowing) -> (bool, bool) {
        let principal = self.conn.identity().principal.clone();
        (
            narrowing.sees(&principal, event, images.before.as_ref()),
            narrowing.sees(&principal, event, images.after.as_ref()),
        )
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
        let (before, after) = self.seen(event, images, narrowing);
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
            frame: change_frame(&self.head, &variant.frame_body),
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

/// A parsed `search` (section 24), with the server's choices and faults.
pub(crate) struct VectorSearch<'q> {
    pub field: &'q str,
    pub vector: &'q [f64],
    pub metric: Metric,
    pub k: usize,
    pub filter: Option<Filter>,
    pub fields: Option<Vec<String>>,
    /// Equal scores in descending `_id` order, a freedom of section 24.
    pub ties_descending: bool,
    /// The `search-skips-other-dimensions` fault.
    pub skip_other_dimensions: bool,
    /// The `search-misses-nearest` fault.
    pub miss_nearest: bool,
}

/// Orders records of equal score by `_id`, either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TieKey<'a> {
    id: &'a str,
    descending: bool,
}

impl Ord for TieKey<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let ascending = self.id.cmp(other.id);
        if self.descending {
            ascending.reverse()
        } else {
            ascending
        }
    }
}

impl PartialOrd for TieKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A stored value that is a vector in the sense of section 24: 1 to 4096
/// numbers, none larger in magnitude than the bound. Other values are not
/// vectors, and their records are no candidates.
fn stored_vector(value: &Value) -> Option<Vec<f64>> {
    let items = value.as_array()?;
    if items.is_empty() || items.len() > MAX_VECTOR_DIMENSIONS {
        return None;
    }
    items
        .iter()
        .map(|item| item.as_f64().filter(|x| x.abs() <= MAX_VECTOR_COMPONENT))
        .collect()
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
    watches: BTreeMap<(u64, u64), Arc<WatchSub>>,
    /// The same watches by the collection each follows.
    watch_index: WatchIndex,
    /// How tokens and record ids are written, and how events are shaped.
    choices: Arc<dyn Choices>,
    /// The `ignore-position-epoch` fault: positions of any epoch are honoured.
    ignore_position_epoch: bool,
    /// A fault: the first change a resumed watch should replay is left out.
    resume_skips_first: bool,
    /// The idempotency keys of recent writes, with their replies.
    keys: Keys,
    /// Row-level authorization; `None`: every principal sees every record.
    narrowing: Option<Narrowing>,
}

/// Who makes a write: the origin its events name and, when it carries an
/// idempotency key, what to remember under it.
#[derive(Default)]
pub(crate) struct WriteMeta {
    pub origin: Option<Origin>,
    pub remember: Option<(Remember, RequestId)>,
}

impl WriteMeta {
    /// The reply to remember with the key, when there is one.
    pub fn kept(
        &self,
        reply: impl FnOnce(RequestId) -> ServerMessage,
        at_ms: u64,
    ) -> Option<(Remember, Kept)> {
        self.remember.as_ref().map(|(write, id)| {
            let reply = serde_json::to_value(reply(id.clone())).expect("replies serialize");
            (
                write.clone(),
                Kept {
                    fingerprint: write.fingerprint.clone(),
                    reply,
                    at_ms,
                },
            )
        })
    }
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
            watch_index: WatchIndex::default(),
            choices: crate::variant::Variant::Usual.choices(),
            keys: Keys::new(Duration::ZERO),
            ignore_position_epoch: false,
            resume_skips_first: false,
            narrowing: None,
        }
    }

    pub fn with_narrowing(mut self, narrowing: Option<Narrowing>) -> Store {
        self.narrowing = narrowing;
        self
    }

    /// The reply to remember under the write's key, if it carries one: `reply` is given
    /// the request's id and the position of the commit about to be made, the journal's
    /// next entry.
    fn kept_reply(
        &self,
        meta: &WriteMeta,
        reply: impl FnOnce(RequestId, Position) -> ServerMessage,
    ) -> Option<(Remember, Kept)> {
        let position = self.position(self.head + 1);
        meta.kept(|id| reply(id, position), now_ms())
    }

    /// How long idempotency keys are remembered.
    pub fn with_idempotency_window(mut self, window: Duration) -> Store {
        self.keys = Keys::new(window);
        self
    }

    /// The reply to repeat for a write whose key was used before (see
    /// `idempotency.rs`); `None` when the write is new.
    pub fn recall(
        &self,
        write: &Remember,
        id: &RequestId,
    ) -> Result<Option<ServerMessage>, ErrorBody> {
        self.keys.recall(write, id, now_ms())
    }

    pub fn with_resume_skips_first(mut self, skip: bool) -> Store {
        self.resume_skips_first = skip;
        self
    }

    pub fn with_ignore_position_epoch(mut self, ignore: bool) -> Store {
        self.ignore_position_epoch = ignore;
        self
    }

    pub fn with_choices(mut self, choices: Arc<dyn Choices>) -> Store {
        self.choices = choices;
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
        for (write, kept) in std::mem::take(&mut recovered.keys) {
            self.keys.insert(&write, kept);
        }
        disk.forget_keys(&self.keys.expire(now_ms()))?;
        for (position, entry) in std::mem::take(&mut recovered.journal) {
            self.last_committed_ms = self.last_committed_ms.max(entry.committed_ms);
            // The journal keeps the record before each change, so a narrowing
            // server serves resumed watches as it served them before.
            self.journal.push_back(Arc::new(Event::build(
                position,
                entry.committed_ms,
                entry.event,
                &*self.choices,
                self.narrowing.is_some(),
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

    /// The position of the last commit.
    pub fn head(&self) -> u64 {
        self.head
    }

    pub fn token(&self, position: u64) -> String {
        self.choices.resume_token(&self.epoch, position)
    }

    /// The journal position `n` as the wire shows it (section 9.1).
    pub fn position(&self, n: u64) -> Position {
        Position {
            epoch: self
                .choices
                .position_epoch(StreamKind::Journal, &self.epoch),
            seq: self.choices.position_seq(n),
        }
    }

    /// The journal's head: the position of the last commit, which a read
    /// under the same lock reflects.
    pub fn head_position(&self) -> Position {
        self.position(self.head)
    }

    /// The position of the commit before `position` (the `read-position-behind` fault).
    pub fn position_before(&self, position: &Position) -> Position {
        let n = self.choices.entries_through(position.seq);
        self.position(n.saturating_sub(1))
    }

    /// Where each live watch of connection `conn` stands: every change up to
    /// the head was pushed to it under the write lock, so the head is its
    /// position (TW-POS-8).
    pub fn progress(&self, conn: u64) -> Vec<((u64, u64), Progress)> {
        let head = self.head_position();
        self.watches
            .range((conn, 0)..=(conn, u64::MAX))
            .map(|(key, sub)| {
                (
                    *key,
                    Progress {
                        subscription: sub.id.to_string(),
                        position: head.clone(),
                    },
                )
            })
            .collect()
    }

    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    pub fn create(
        &mut self,
        database: &str,
        collection: &str,
        record: Object,
    ) -> Result<Object, ErrorBody> {
        self.create_as(database, collection, record, &WriteMeta::default())
    }

    pub fn create_as(
        &mut self,
        database: &str,
        collection: &str,
        mut record: Object,
        meta: &WriteMeta,
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
        let kept = self.kept_reply(meta, |id, position| {
            ServerMessage::Created(Created {
                id,
                record: record.clone(),
                position: Some(position),
            })
        });
        self.commit(
            OperationType::Insert,
            (database, collection, &id),
            (None, Some(&record)),
            None,
            (meta.origin.clone(), kept),
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

    /// The `k` records nearest to the query among those with a vector at
    /// its `field` that match its filter (section 24), best first.
    pub fn search(
        &self,
        database: &str,
        collection: &str,
        search: &VectorSearch,
    ) -> Result<Vec<ScoredRecord>, ErrorBody> {
        let Some(records) = self
            .collections
            .get(&(database.to_string(), collection.to_string()))
        else {
            return Ok(Vec::new());
        };
        let mut candidates: Vec<(TieKey, &Value, Vec<f64>)> = Vec::new();
        for (id, record) in records {
            let Some(stored) = lookup(record, search.field).and_then(stored_vector) else {
                continue;
            };
            if stored.len() != search.vector.len() {
                if search.skip_other_dimensions {
                    continue;
                }
                // Every record counts, matching the filter or not: the
                // dimension belongs to the collection's field (TW-VECTOR-6).
                return Err(invalid_at(
                    "vector",
                    format!(
                        "the query vector has {} dimensions, but record {id:?} holds {} at `{}`",
                        search.vector.len(),
                        stored.len(),
                        search.field
                    ),
                ));
            }
            if search.filter.as_ref().is_some_and(|f| !f.matches(record)) {
                continue;
            }
            let key = TieKey {
                id,
                descending: search.ties_descending,
            };
            candidates.push((key, record, stored));
        }
        let query = similarity::Query::new(search.metric, search.vector);
        let wanted = search.k + usize::from(search.miss_nearest);
        let ranked = similarity::nearest(
            &query,
            wanted,
            candidates
                .iter()
                .enumerate()
                .map(|(at, (key, _, stored))| ((*key, at), stored.as_slice())),
        );
        Ok(ranked
            .into_iter()
            .skip(usize::from(search.miss_nearest))
            .map(|((_, at), score)| ScoredRecord {
                record: project(candidates[at].1, search.fields.as_deref()),
                score,
            })
            .collect())
    }

    #[cfg(test)]
    pub fn update(
        &mut self,
        database: &str,
        collection: &str,
        id: &str,
        set: &Object,
        unset: &[String],
    ) -> Result<Object, ErrorBody> {
        self.update_as(
            database,
            collection,
            id,
            (set, unset),
            &WriteMeta::default(),
        )
    }

    pub fn update_as(
        &mut self,
        database: &str,
        collection: &str,
        id: &str,
        (set, unset): (&Object, &[String]),
        meta: &WriteMeta,
    ) -> Result<Object, ErrorBody> {
        let Some(current) = self.get(database, collection, id) else {
            return Err(not_found(id));
        };
        let Value::Object(mut record) = current.clone() else {
            unreachable!("records are objects")
        };
        let pre_image = record.clone();
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
        let kept = self.kept_reply(meta, |id, position| {
            ServerMessage::Updated(Updated {
                id,
                record: record.clone(),
                position: Some(position),
            })
        });
        self.commit(
            OperationType::Update,
            (database, collection, id),
            (Some(pre_image), Some(&record)),
            Some(description),
            (meta.origin.clone(), kept),
        )?;
        Ok(record)
    }

    #[cfg(test)]
    pub fn delete(&mut self, database: &str, collection: &str, id: &str) -> Result<(), ErrorBody> {
        self.delete_as(database, collection, id, &WriteMeta::default())
    }

    pub fn delete_as(
        &mut self,
        database: &str,
        collection: &str,
        id: &str,
        meta: &WriteMeta,
    ) -> Result<(), ErrorBody> {
        let Some(Value::Object(pre_image)) = self.get(database, collection, id).cloned() else {
            return Err(not_found(id));
        };
        let kept = self.kept_reply(meta, |request, position| {
            ServerMessage::Deleted(Deleted {
                id: request,
                record_id: id.to_string(),
                position: Some(position),
            })
        });
        self.commit(
            OperationType::Delete,
            (database, collection, id),
            (Some(pre_image), None),
            None,
            (meta.origin.clone(), kept),
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

    /// Applies a record change (`images` are the record before it, `None`
    /// for an insert, and after it, `None` for a delete) and appends its event. With a data directory the change is
    /// durable before memory changes or any watch sees it; if it cannot be
    /// made durable, memory and watches are left as they were and the write
    /// fails with `internal`.
    fn commit(
        &mut self,
        operation: OperationType,
        (database, collection, id): (&str, &str, &str),
        images: (Option<Object>, Option<&Object>),
        update: Option<UpdateDescription>,
        (origin, kept): (Option<Origin>, Option<(Remember, Kept)>),
    ) -> Result<(), ErrorBody> {
        let (pre_image, record) = images;
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
            // Kept in the journal for view watches, which `Event::build` serves.
            full_document_before_change: pre_image,
            view: None,
            origin,
            position: Some(self.position(position)),
        };
        let dropped = self.dropped_by_retention(committed_ms, 1);
        let entry = JournalEntry {
            committed_ms,
            event,
        };
        let forgotten = self.keys.expire(committed_ms);
        if let Some(disk) = &self.disk {
            disk.commit_change(
                (database, collection, id),
                record,
                position,
                &entry,
                &dropped,
                (kept.as_ref(), &forgotten),
            )
            .map_err(|err| {
                tracing::error!(%err, "a write could not be made durable");
                error(ErrorCode::Internal, "the write could not be made durable")
            })?;
        }
        self.head = position;
        self.last_committed_ms = committed_ms;
        if let Some((write, kept)) = kept {
            self.keys.insert(&write, kept);
        }
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
            self.narrowing.is_some(),
        ));
        self.watch_index
            .for_each_candidate(&event.database, &event.collection, |sub, found| {
                if let Some(variant) = sub.selects_found(&event, self.narrowing.as_ref(), found) {
                    sub.conn.push(sub.outbound(&event, variant));
                }
            });
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

    /// The journal position after which a client's position replays, if it
    /// can be honoured: of this epoch, not beyond the head, and with every
    /// later change retained (TW-POS-5).
    pub(crate) fn start_position(&self, start: &Position) -> Result<u64, ErrorBody> {
        let lost = |why: &str| error(ErrorCode::HistoryLost, why.to_string());
        let epoch = self
            .choices
            .position_epoch(StreamKind::Journal, &self.epoch);
        if start.epoch != epoch && !self.ignore_position_epoch {
            return Err(lost("the position is from another journal epoch"));
        }
        if start.seq > self.choices.position_seq(self.head) {
            return Err(lost("the position is ahead of the journal"));
        }
        let after = self.choices.entries_through(start.seq);
        // Resume tokens and positions name the same points, so retention
        // applies to both alike.
        self.resume_position(&ResumeToken(self.token(after)))
    }

    /// Registers a watch and queues its `watching` reply (and, when resuming,
    /// the replayed changes) under the store lock: the barrier.
    pub fn watch(
        &mut self,
        key: (u64, u64),
        sub: WatchSub,
        request: RequestId,
        resume_after: Option<&ResumeToken>,
        start_after: Option<&Position>,
    ) -> Result<ServerMessage, ErrorBody> {
        let resume = match (resume_after, start_after) {
            (Some(token), _) => Some(self.resume_position(token)?),
            (None, Some(start)) => Some(self.start_position(start)?),
            (None, None) => None,
        };
        let barrier = self.token(self.head);
        let reply = ServerMessage::Watching(Watching {
            id: request,
            subscription: sub.id.to_string(),
            resume_token: ResumeToken(barrier.clone()),
            resumed: resume.is_some(),
            position: Some(self.head_position()),
        });
        // Until a change is written, a resumed subscription's position is the
        // point it resumed from: the replayed changes are not delivered yet.
        let start = match resume {
            Some(after) => self.token(after),
            None => barrier,
        };
        sub.conn.add_position(&sub.id, &start);
        sub.conn.reply(Outbound::message(&reply));
        if let Some(after) = resume {
            let skip = usize::from(self.resume_skips_first);
            let replayed = self
                .journal
                .iter()
                .filter(|e| e.position > after)
                .filter_map(|event| {
                    sub.selects(event, self.narrowing.as_ref())
                        .map(|variant| (event, variant))
                })
                .skip(skip);
            for (event, variant) in replayed {
                sub.conn.replay(sub.outbound(event, variant));
            }
        }
        self.unwatch(key);
        let sub = Arc::new(sub);
        self.watch_index.insert(key, &sub);
        self.watches.insert(key, sub);
        Ok(reply)
    }

    pub fn unwatch(&mut self, key: (u64, u64)) -> bool {
        let Some(sub) = self.watches.remove(&key) else {
            return false;
        };
        self.watch_index.remove(key, &sub);
        true
    }

    pub fn drop_connection(&mut self, conn: u64) {
        let keys: Vec<(u64, u64)> = self
            .watches
            .range((conn, 0)..=(conn, u64::MAX))
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            self.unwatch(key);
        }
    }
}

/// The live watches by the collection they follow, so that a commit looks
/// at the watches that can select it rather than at every watch on the
/// server, and reaches each without a lookup by key.
#[derive(Default)]
struct WatchIndex {
    /// Watches of one collection, by database and then collection.
    by_collection: HashMap<String, HashMap<String, Watches>>,
    /// Watches of a whole database or of every database.
    wide: Watches,
}

/// Watches in key order: a connection's watches in the order it created them.
type Watches = BTreeMap<(u64, u64), Arc<WatchSub>>;

impl WatchIndex {
    fn insert(&mut self, key: (u64, u64), sub: &Arc<WatchSub>) {
        let watches = match (&sub.database, &sub.collection) {
            (Some(database), Some(collection)) => self
                .by_collection
                .entry(database.clone())
                .or_default()
                .entry(collection.clone())
                .or_default(),
            _ => &mut self.wide,
        };
        watches.insert(key, sub.clone());
    }

    fn remove(&mut self, key: (u64, u64), sub: &WatchSub) {
        let (Some(database), Some(collection)) = (&sub.database, &sub.collection) else {
            self.wide.remove(&key);
            return;
        };
        let Some(collections) = self.by_collection.get_mut(database) else {
            return;
        };
        if let Some(watches) = collections.get_mut(collection) {
            watches.remove(&key);
            if watches.is_empty() {
                collections.remove(collection);
            }
        }
        if collections.is_empty() {
            self.by_collection.remove(database);
        }
    }

    /// Calls `f` with every watch that may select a change in
    /// `database`.`collection`, in key order, so that a connection with
    /// several watches gets their pushes in the order it created them.
    fn for_each_candidate(
        &self,
        database: &str,
        collection: &str,
        mut f: impl FnMut(&WatchSub, Candidate),
    ) {
        let narrow = self
            .by_collection
            .get(database)
            .and_then(|collections| collections.get(collection));
        let mut narrow = narrow.into_iter().flatten().peekable();
        let mut wide = self.wide.iter().peekable();
        loop {
            let narrow_first = match (narrow.peek(), wide.peek()) {
                (Some((n, _)), Some((w, _))) => n < w,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return,
            };
            if narrow_first {
                let (_, sub) = narrow.next().expect("peeked");
                f(sub, Candidate::OfCollection);
            } else {
                let (_, sub) = wide.next().expect("peeked");
                f(sub, Candidate::Wide);
            }
        }
    }
}

/// How the index found a watch that may select a change: among the watches
/// of the change's collection, which need no further check of the namespace
/// (comparing each watch's names was a cache miss per watch per commit), or
/// among the wide watches, which do.
#[derive(Debug, Clone, Copy)]
enum Candidate {
    OfCollection,
    Wide,
}

pub(crate) fn now_ms() -> u64 {
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

    /// A watch of `database`.`collection` (or wider, with `None`) on `conn`.
    fn watch_of(
        conn: &Arc<Conn>,
        id: &str,
        database: Option<&str>,
        collection: Option<&str>,
    ) -> WatchSub {
        WatchSub {
            conn: conn.clone(),
            id: id.into(),
            database: database.map(str::to_string),
            collection: collection.map(str::to_string),
            filter: None,
            pipeline: None,
            full_document: false,
            view: false,
            drops_leaves: false,
            head: crate::fanout::change_head(id),
            permission: Permission::default(),
        }
    }

    /// The subscriptions of the changes queued on a connection, in order.
    fn changes_queued(rx: &mut crate::outbound::Receiver) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv())
            .filter_map(|item| {
                item.position
                    .map(|(subscription, _)| subscription.to_string())
            })
            .collect()
    }

    #[test]
    fn a_change_reaches_the_watches_that_follow_it_in_the_order_they_were_made() {
        let bound = crate::outbound::QueueBound {
            messages: 100,
            bytes: 1 << 20,
        };
        let identity = crate::auth::Identity::anonymous(&["*".to_string()]);
        let (conn, mut rx) = Conn::new(1, "c1".into(), identity, bound);
        let mut store = Store::new("E".into(), 10);
        let watches = [
            ("of-everything", None, None),
            ("of-c", Some("d"), Some("c")),
            ("of-other", Some("d"), Some("other")),
            ("of-d", Some("d"), None),
            ("of-c-again", Some("d"), Some("c")),
            ("of-other-database", Some("e"), None),
        ];
        for (n, (id, database, collection)) in watches.into_iter().enumerate() {
            let request = RequestId::new(format!("r{n}")).unwrap();
            let sub = watch_of(&conn, id, database, collection);
            store
                .watch((1, n as u64), sub, request, None, None)
                .unwrap();
        }
        store.create("d", "c", obj(json!({"_id": "x"}))).unwrap();
        assert_eq!(
            changes_queued(&mut rx),
            ["of-everything", "of-c", "of-d", "of-c-again"]
        );

        store.unwatch((1, 1));
        store.unwatch((1, 0));
        store.create("d", "c", obj(json!({"_id": "y"}))).unwrap();
        assert_eq!(changes_queued(&mut rx), ["of-d", "of-c-again"]);
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
