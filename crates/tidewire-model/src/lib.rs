//! A model of Tidewire v1 server behaviour, for property-based conformance runs.
//!
//! [`scenario`] generates [`Scenario`]s: up to three connections and a
//! sequence of operations on them — valid requests of the chosen profiles,
//! reusing a few collections, record keys, topics and rooms so that
//! operations meet each other, plus a share of invalid messages.
//! [`Scenario::to_suite`] runs the sequence through the model, which predicts
//! the reply to every request and the pushes every connection must see, and
//! writes it all as a conformance case in the fixture language. The
//! conformance engine replays that case against any server; a mismatch is a
//! failed case. A failing scenario shrinks (proptest drops and simplifies
//! operations) and the smallest one is a fixture that fails on its own.
//!
//! Requests are built from the typed messages of `tidewire-protocol`, and
//! filters are evaluated by `tidewire-filter`, the same evaluator the
//! reference server uses, so the model states the specification's rules
//! once, not again.

mod invariants;
mod model;

use proptest::prelude::*;
use proptest::strategy::Union;
use serde_json::Value;
use tidewire_protocol::{ConnectRate, Profile, RateLimit};

pub use invariants::{check_received, Received, CLOCK_TOLERANCE_MS};
pub use model::{to_suite, HEARTBEAT_SLACK_MS};

/// What some operations depend on beyond the profiles: what the server's
/// `welcome` announced (how long an idle connection waits for a heartbeat,
/// the message rate), and whether the run variable `token_narrow` names a
/// token whose scopes allow nothing on the names the model uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Announced {
    pub heartbeat_ms: Option<u64>,
    pub rate: Option<RateLimit>,
    pub narrow_token: bool,
    /// `welcome.idempotency_window_ms`: whether keyed writes may be generated.
    pub idempotency_window_ms: Option<u64>,
    /// `welcome.limits.max_nesting_depth`, for frames at and one over the depth.
    pub max_nesting_depth: Option<u32>,
    /// `welcome.limits.max_subscriptions`.
    pub max_subscriptions: Option<u32>,
    /// The server of the run variable `limits_url`, when there is one: where
    /// limits small enough to reach within a case are tried.
    pub limits_server: Option<LimitsServer>,
    /// Whether the run variable `stats_url` names a server no other client
    /// uses, whose server-wide gauges a case can then predict.
    pub stats_server: bool,
    /// Whether the run variables `token_reader`, `token_admin` and
    /// `jwt_expired` are given, for re-authentication and invalid tokens.
    pub auth_tokens: bool,
    /// Whether each case gets a fresh `jwt_expiring`, a token that expires
    /// a few seconds after the case starts (a `--var` would have expired
    /// before the later cases of a run).
    pub expiring_token: bool,
    /// Whether the run variable `auth_required_url` is given.
    pub auth_required_url: bool,
    /// Whether the run variables `authz_url`, `authz_owner`,
    /// `authz_owner_token` and `token_reader` are given: a server that hides
    /// records (section 8.5), the owner it writes them for and its token,
    /// and another principal's token.
    pub hidden_records: bool,
    /// The `heartbeat_ms` the server of the run variable `quiet_url`
    /// announces, when there is one.
    pub quiet_heartbeat_ms: Option<u64>,
    /// `welcome.retention.topic` of the run variable `retention_url`'s
    /// server: publications of a topic it keeps, at least, few enough for a
    /// case to publish past them.
    pub topic_retention: Option<u64>,
    /// `welcome.limits.room_post_rate` of the run variable `room_rate_url`'s server.
    pub room_post_rate: Option<RateLimit>,
    /// Whether the run variable `second_run_url` names another run of the server.
    pub second_run: bool,
    /// Whether the run variable `liveness_url` names a server whose liveness
    /// bounds are short enough to wait out within a case.
    pub liveness_url: bool,
    /// Whether the run variable `libraries_url` is given: the base of
    /// endpoints `${libraries_url}/<collection>` that bind one collection.
    pub libraries_url: bool,
    /// Whether the run variable `xerr_url` names a server whose application
    /// refuses a `create` in `xerr-validated` of a record without a string
    /// `name` with an error code of its own.
    pub xerr_url: bool,
    /// Whether the run variables `token_named` and `token_named_display_name`
    /// are given: a token that names a display name, and that name.
    pub named_token: bool,
    /// What the server of the run variable `connect_burst_url` announces as
    /// its `limits.connect_rate`, when there is one: a server no other
    /// client uses, whose connection rate a case can reach after waiting out
    /// its window.
    pub connect_burst: Option<ConnectRate>,
    /// Whether the run variable `shutdown_url` names a server that shuts
    /// down gracefully once a case has two connections open to it.
    pub shutdown_url: bool,
}

/// What the `limits_url` server announced in its `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsServer {
    pub max_subscriptions: u32,
    pub rate: Option<RateLimit>,
}

/// The server a side connection opens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The run's URL.
    Run,
    /// The run variable `limits_url`.
    Limits,
}

/// A text frame the decoder refuses (section 4.3); the session goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undecodable {
    /// A JSON text cut short.
    NotJson,
    /// An array around a valid request.
    NotObject,
    /// An object with a readable `id` and no `type`.
    MissingType,
    /// An object with a readable `id` and a number for `type`.
    NumericType,
}

/// What a fresh connection sends that ends it (sections 4.1, 18.2, 18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndingFrame {
    /// A binary frame holding a valid request: 1003.
    Binary,
    /// A text frame with a byte UTF-8 never uses: 1007.
    InvalidUtf8,
    /// A text frame one byte over `max_message_bytes`: 1009.
    Oversize,
    /// A text frame with RSV2 set, which no extension defines: 1002.
    ReservedBit,
    /// A frame of the reserved data opcode 3: 1002.
    ReservedOpcode,
    /// The client's own close with a code RFC 6455 allows: echoed.
    Close(u16),
    /// A close frame with a code RFC 6455 does not allow on the wire: 1002.
    ForbiddenCloseCode(u16),
}

/// A generated test: connections `c0`.. and the operations they perform, in order.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub connections: usize,
    pub actions: Vec<Action>,
}

/// One operation by one connection.
#[derive(Debug, Clone)]
pub struct Action {
    pub conn: usize,
    pub op: Op,
}

/// The operations a scenario is made of. Small index fields (`coll`, `key`,
/// `topic`, `room`) pick from a handful of names, so that writes, reads,
/// subscriptions and rooms of one scenario keep meeting each other.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Ping {
        payload: i64,
    },
    Create {
        coll: u8,
        key: u8,
        n: i64,
        tag: Option<Tag>,
    },
    Update {
        coll: u8,
        key: u8,
        change: Change,
    },
    Delete {
        coll: u8,
        key: u8,
    },
    Get {
        coll: u8,
        key: u8,
    },
    Query {
        coll: u8,
        filter: RecordFilter,
        desc: bool,
        limit: Option<u32>,
    },
    Watch {
        coll: Option<u8>,
        filter: EventFilter,
        pipeline: bool,
        full_document: bool,
    },
    /// Ends the `nth` live subscription of the connection (modulo their
    /// number), or names one that does not exist when there is none.
    Unsubscribe {
        nth: u8,
    },
    Subscribe {
        topic: u8,
        min: Option<i64>,
    },
    Publish {
        topic: u8,
        n: i64,
    },
    Join {
        room: u8,
        observer: bool,
        /// The display name the join gives, as an index into the model's names.
        display_name: Option<u8>,
    },
    Leave {
        room: u8,
    },
    Post {
        room: u8,
        n: i64,
    },
    Typing {
        room: u8,
        active: bool,
    },
    Edit {
        room: u8,
        stale: bool,
        text: char,
    },
    GetDocument {
        room: u8,
    },
    /// A `history` of the room; `before` picks the cursor from the room's
    /// messages so far (modulo their number), none when there are none.
    History {
        room: u8,
        before: Option<u8>,
        limit: Option<u32>,
    },
    /// Closes the connection and opens it again: the server must treat the
    /// old connection as gone (presence `left`, subscriptions ended).
    Reconnect,
    UnknownType,
    /// A `create` whose `database` is a number.
    WrongFieldType,
    /// A `read` whose filter uses an operator the language does not define.
    UnknownOperator {
        coll: u8,
    },
    /// Writes sent back to back on one connection, without waiting for a
    /// reply in between: the only way two events of one subscription are in
    /// flight together, so that their order is observable.
    Burst(Vec<Op>),
    /// A fresh connection that stays idle until the announced heartbeat is due.
    AwaitHeartbeat {
        heartbeat_ms: u64,
    },
    /// A fresh connection that sends one frame more than the announced rate
    /// allows: its own connection, so the window it fills delays nothing else.
    Flood {
        messages: u32,
    },
    /// A `create` on a fresh connection opened with `${token_narrow}`.
    OutOfScope {
        coll: u8,
    },
    /// A `search` of the records' `vec` fields (set by [`Change::SetVec`]),
    /// optionally only those with `tag`.
    Search {
        coll: u8,
        vector: [i8; 2],
        k: u8,
        metric: tidewire_protocol::Metric,
        tag: Option<Tag>,
    },
    /// A `watch` with `view`: a live view of the records `filter` selects.
    View {
        coll: Option<u8>,
        filter: EventFilter,
    },
    /// A `create` carrying the idempotency key `idem`: from a small set, so
    /// that the same write is repeated and a key meets another write.
    KeyedCreate {
        coll: u8,
        key: u8,
        n: i64,
        idem: u8,
    },
    /// A forward page of the room's history: after the position of the
    /// `after`-th message so far (modulo their number), or, without one,
    /// since the Unix epoch.
    HistoryForward {
        room: u8,
        after: Option<u8>,
        limit: Option<u32>,
    },
    /// Publishes to the topic, then `ns`, then subscribes (with a filter
    /// `n >= min`) after the first publication's position.
    ResumeTopic {
        topic: u8,
        min: Option<i64>,
        ns: Vec<i64>,
    },
    /// A `post` carrying the idempotency key `idem`: from a small set, so
    /// that the same post is repeated and a key meets another post.
    KeyedPost {
        room: u8,
        n: i64,
        idem: u8,
    },
    /// An `edit` carrying the idempotency key `idem`, against the version the
    /// edit remembered under that key was made against when it is the same
    /// edit (a repeat), else against the current version.
    KeyedEdit {
        room: u8,
        text: char,
        idem: u8,
    },
    /// A text frame the decoder refuses, on the connection's own session,
    /// which must go on serving it.
    Undecodable {
        kind: Undecodable,
    },
    /// A fresh connection, ended by the frame it sends.
    EndingFrame {
        kind: EndingFrame,
    },
    /// A `get_stats`: the connection's own gauges and counters are known
    /// exactly; the server's are bounded below by what the case holds open.
    Stats,
    /// A ping whose payload nests to exactly the announced depth, then one
    /// nesting a level deeper (through an object when `object`).
    Nesting {
        depth: u32,
        object: bool,
    },
    /// A fresh connection that fills its subscriptions to the cap, is
    /// refused one more, ends one and may then subscribe again.
    SubscriptionCap {
        endpoint: Endpoint,
        max: u32,
    },
    /// A fresh connection that sends more than twice the rate within a
    /// window, and is closed for it.
    RateAbuse {
        endpoint: Endpoint,
        messages: u32,
        window_ms: u64,
    },
    /// On the `stats_url` server, `subscriptions` topic subscriptions and
    /// `rooms` joins, each reading of the server's gauges exact relative to
    /// the one taken before them, then released again.
    ServerGauges {
        subscriptions: u8,
        rooms: u8,
    },
    /// A watcher on a connection of its own sees the writes of `before`,
    /// disconnects, misses those of `after`, then watches again `from` the
    /// last point it received and sees the `live` writes.
    ResumeWatch {
        coll: Option<u8>,
        filter: EventFilter,
        before: Vec<Op>,
        after: Vec<Op>,
        live: Vec<Op>,
        from: ResumeFrom,
    },
    /// Connections of their own: one (anonymous, or with `${token_reader}` at
    /// the handshake) subscribes, watches and joins, then takes `steps`;
    /// another publishes and shares the room.
    Reauth {
        handshake: bool,
        steps: Vec<AuthStep>,
    },
    /// A handshake with `${jwt_expired}`.
    InvalidHandshake,
    /// A connection with `${jwt_expiring}` that waits for its token to expire.
    Expiry,
    /// A connection to `${auth_required_url}` that never authenticates.
    AuthTimeout,
    /// A member that drops between the posts `before` and `after` to a room
    /// of its own, joins again after the last message it received, and
    /// stays for the `live` posts.
    RejoinRoom {
        before: Vec<i64>,
        after: Vec<i64>,
        live: Vec<i64>,
    },
    /// On the run variable `authz_url`, whose application hides a record
    /// whose `private` is `true` from every principal but its `owner`: the
    /// owner (`${authz_owner_token}`) writes, both it and another principal
    /// (`${token_reader}`) watch, the other's watch through `filter`, and
    /// either reads.
    HiddenRecords {
        filter: EventFilter,
        steps: Vec<HiddenStep>,
    },
    /// A `read` of the collection sorted by `_id`, its members written in
    /// one of the spellings section 4.5 gives the same meaning, or at and
    /// beyond the integer bound.
    SpelledRead {
        coll: u8,
        spelling: ReadSpelling,
    },
    /// A `watch` whose filter (or `$match` stage) names a path no change
    /// event has, one of [`UNMATCHABLE_PATHS`].
    UnmatchableWatch {
        coll: Option<u8>,
        path: u8,
        pipeline: bool,
    },
    /// A `search` refused for its request alone: `k` out of range, or a
    /// component beyond the bound at `at`.
    SearchOutOfRange {
        coll: u8,
        bound: SearchBound,
    },
    /// Writes `n` to the record `key` (a create, or an update when the
    /// model knows it exists), reads the collection, and watches the
    /// collection (or the database) `start_after` the read's position.
    ReadThenWatch {
        coll: u8,
        key: u8,
        n: i64,
        whole_database: bool,
    },
    /// A connection of its own watches, then re-authenticates with
    /// `${token_narrow}`, whose scopes end the watch; another resumes after
    /// the token the `ended` gives.
    NarrowedWatch {
        coll: u8,
    },
    /// On the run variable `quiet_url`, a watch that nothing matches and
    /// the heartbeat that says where it stands.
    QuietProgress {
        coll: u8,
        heartbeat_ms: u64,
    },
    /// An `edit` with no operations.
    EmptyEdit {
        room: u8,
        stale: bool,
    },
    /// A member of a room of its own edits, another member hearing of
    /// each edit, and reads the document; with `positions`, the read's
    /// position is the last applied edit's.
    DocumentEdits {
        edits: Vec<DocEdit>,
        positions: bool,
    },
    /// Records with vectors (and tags) in a collection of their own, and
    /// searches of it.
    SearchBatch {
        vectors: Vec<([i8; 2], Option<Tag>)>,
        /// A vector of three components on one more record, before the
        /// searches: every search of the collection is then refused.
        other_dimension: Option<[i8; 3]>,
        searches: Vec<Op>,
    },
    /// A `view` of the records of `coll` with `n` at least `threshold`, then
    /// writes of `n` (`None`: a delete) that move records in and out of it.
    ViewChurn {
        coll: u8,
        threshold: i64,
        writes: Vec<(u8, Option<i64>)>,
    },
    /// A `join` whose display name or metadata is over its bound: refused,
    /// and the connection's memberships stay as they were.
    OversizedJoin {
        room: u8,
        excess: MemberInfoExcess,
    },
    /// On the `retention_url` server, which keeps at least `retention`
    /// publications of a topic: a subscription resumed after a position
    /// that `retention` publications follow, then one after a position one
    /// more follows.
    TopicRetention {
        retention: u64,
    },
    /// On the `room_rate_url` server, two members of a room of their own
    /// post the `messages` the announced rate allows, then one more.
    RoomPostRate {
        messages: u32,
    },
    /// A `join` of a room of its own after a position the room cannot
    /// honour: beyond its head, or of an epoch it never had.
    RoomLost {
        beyond_head: bool,
    },
    /// A publication on the run's server and one on `second_run_url`'s.
    SecondRun,
    /// A fresh connection whose handshake the `check` is about.
    Handshake {
        check: HandshakeCheck,
    },
    /// On `${liveness_url}`: a connection that answers the server's Pings
    /// stays open past the liveness bound, and is closed with 4006 once its
    /// answers stop.
    Liveness,
    /// On `${libraries_url}/<collection>`, a connection bound to one
    /// collection: its `welcome` names it, requests may leave the names out,
    /// and one naming another collection is refused.
    BoundEndpoint,
    /// A `create` on the main endpoint that leaves out its `database` (and,
    /// with `both`, its `collection`), or only its `collection`.
    UnnamedCreate {
        coll: u8,
        omit: Omitted,
    },
    /// A `join` without `display_name`, to a room of its own, on a
    /// connection with `${token_named}`.
    TokenDisplayName,
    /// On `${auth_required_url}`: the welcome lists `auth` and states the
    /// connection's scopes, and `auth` with `${token_admin}` is served.
    RequiredMode,
    /// On `${xerr_url}`: a `create` the application refuses with its own code.
    ApplicationError,
    /// On `${connect_burst_url}`, after waiting out the window: `attempts`
    /// handshakes are accepted, and the next one within the window refused.
    ConnectRate {
        attempts: u32,
        window_ms: u64,
    },
    /// On `${shutdown_url}`, a server that shuts down gracefully once two
    /// connections are open: one holds what `held` says, the second opens,
    /// and both must be told and closed with 1001.
    Shutdown {
        held: ShutdownHeld,
    },
}

/// What the first connection of an [`Op::Shutdown`] holds when its server
/// shuts down: each must end with its own `ended` (TW-END-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownHeld {
    pub watches: u8,
    pub subscriptions: u8,
    pub rooms: u8,
}

/// The one shutdown a run can observe: a server variable like `shutdown_url`
/// serves once, so it is no operation of the generated sequences but a case
/// of its own after them, and what it holds is drawn from what `profiles`
/// can hold.
pub fn shutdown(profiles: &[Profile]) -> BoxedStrategy<Scenario> {
    let has = |p: Profile| profiles.contains(&p);
    let up_to_two = |served: bool| if served { 0u8..3 } else { 0u8..1 };
    (
        up_to_two(has(Profile::Records) && has(Profile::Watch)),
        up_to_two(has(Profile::Topics)),
        up_to_two(has(Profile::Rooms)),
    )
        .prop_map(|(watches, subscriptions, rooms)| Scenario {
            connections: 1,
            actions: vec![Action {
                conn: 0,
                op: Op::Shutdown {
                    held: ShutdownHeld {
                        watches,
                        subscriptions,
                        rooms,
                    },
                },
            }],
        })
        .boxed()
}

/// One edit of a [`Op::DocumentEdits`]: inserting `text` (`None`: no
/// operations at all), with the idempotency key `key` of a few.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocEdit {
    pub text: Option<char>,
    pub key: Option<u8>,
}

/// How a [`Op::SpelledRead`] writes its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSpelling {
    /// `null` for `filter`, `sort`, `limit`, `offset` and `fields`: as absent.
    NullMembers,
    /// `limit` in the `form`-th of [`INTEGER_FORMS`].
    Limit { limit: u8, form: u8 },
    /// `offset` written `-0`: the first page.
    NegativeZeroOffset,
    /// `limit` (or `offset`) 2^53 - 1: a clamped limit, a page past the end.
    AtBound { offset: bool },
    /// `limit` (or `offset`) 2^53: refused.
    BeyondBound { offset: bool },
}

/// Spellings of a small integer `{}` that JSON Schema reads as that integer
/// (section 4.5): `{}` stands for the integer, `{}0` for ten times it.
pub const INTEGER_FORMS: [&str; 4] = ["{}.0", "{}E0", "{}0e-1", "{}.00e+0"];

/// Watch filter paths no change event can have (section 8.4).
pub const UNMATCHABLE_PATHS: [&str; 5] = [
    "fullDocument.n",
    "operationType",
    "ns.db",
    "document_key._id.x",
    "committed_at.year",
];

/// Why a [`Op::SearchOutOfRange`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchBound {
    KZero,
    KOverMax,
    /// A component of absolute value over 10^15 at this index of two.
    Component {
        at: u8,
        negative: bool,
    },
}

/// How a generated `join` exceeds the bounds of section 11.7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberInfoExcess {
    /// A display name of 65 characters, each of two UTF-8 bytes.
    LongName,
    /// A display name with a control character.
    ControlInName,
    /// Metadata of 17 members.
    ManyMembers,
    /// A metadata value of 257 characters.
    LongValue,
    /// A metadata name with a character names may not have.
    BadName,
}

/// What the handshake of an [`Op::Handshake`] states or offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeCheck {
    /// `max_message_bytes`, the features `parts` and one no server supports,
    /// and a client name: the `welcome` echoes what the server takes, and
    /// messages within the bound come whole.
    Session,
    /// The least `max_message_bytes` a client may state: a pong longer than
    /// it comes in parts that join into the whole pong.
    Parts,
    /// A malformed session parameter, refused with HTTP 400.
    BadParameter(BadParameter),
    /// An offer of `permessage-deflate` without parameters.
    Deflate,
}

/// Session parameters a handshake must not be accepted with (TW-SESSION-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadParameter {
    /// `max_message_bytes` under the least a client may state.
    BoundTooSmall,
    /// `max_message_bytes` that is not a decimal integer.
    BoundNotDecimal,
    /// A `features` entry that is no feature name.
    FeatureNotAName,
    /// An empty `client`.
    EmptyClient,
}

/// The names an [`Op::UnnamedCreate`] leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Omitted {
    Database,
    Collection,
    Both,
}

/// One step of a connection that authenticates again and again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStep {
    /// `auth` with `${token_reader}`: narrower scopes than anonymous ones.
    Reader,
    /// `auth` with `${token_admin}`: another principal, every scope.
    Admin,
    /// `auth` with `${jwt_expired}`.
    Expired,
    /// A `create` in the collection the connection watches.
    Write { key: u8 },
    /// Another connection publishes to the topic the connection subscribed to.
    Publish { n: i64 },
    /// A `join` of the room another connection is in, outside `public-*`.
    Join,
}

/// Who may see a record on the `authz_url` server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// No `private`: everyone.
    Public,
    /// `private` true, `owner` the writing principal: the writer alone.
    Mine,
    /// `private` true, `owner` a principal no token names: nobody.
    Nobody,
}

/// One step of a [`Op::HiddenRecords`]: writes by the owner, reads by
/// either principal (`by_owner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenStep {
    Create {
        key: u8,
        n: i64,
        privacy: Privacy,
    },
    /// Sets `n`.
    Renumber {
        key: u8,
        n: i64,
    },
    /// Sets `private` and `owner`.
    Hide {
        key: u8,
        privacy: Privacy,
    },
    /// Unsets `private`.
    Reveal {
        key: u8,
    },
    Delete {
        key: u8,
    },
    /// A `read` of the collection, of the records with `n` at least `min`.
    Query {
        by_owner: bool,
        min: Option<i64>,
    },
    /// A `read` by `record_id`.
    Get {
        by_owner: bool,
        key: u8,
    },
}

/// Where a resumed watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeFrom {
    /// `resume_after` the token of the last change received.
    Token,
    /// `start_after` the position of the last change received.
    Position,
    /// `start_after` a position of the journal's epoch beyond its head.
    BeyondHead,
    /// `start_after` a position of an epoch the journal never had.
    OtherEpoch,
    /// Both `resume_after` the token and `start_after` the position of the
    /// last change received: one request may not carry both forms.
    BothForms,
}

impl Op {
    /// Requirement ids whose behaviour this operation's predicted outcome checks.
    pub fn requirements(&self) -> &'static [&'static str] {
        match self {
            Op::Ping { .. } => &["TW-CORE-27", "TW-EXT-1"],
            Op::Create { .. } => &["TW-REC-2", "TW-REC-4"],
            Op::Update { .. } => &["TW-REC-7", "TW-REC-12", "TW-WATCH-5"],
            Op::Delete { .. } => &["TW-REC-7", "TW-REC-14"],
            Op::Get { .. } => &["TW-REC-6", "TW-REC-7"],
            Op::Query { .. } => &["TW-REC-8", "TW-REC-9"],
            Op::Watch { .. } => &[
                "TW-WATCH-2",
                "TW-WATCH-4",
                "TW-WATCH-6",
                "TW-WATCH-7",
                "TW-WATCH-9",
                "TW-WATCH-10",
            ],
            Op::Unsubscribe { .. } => &["TW-CORE-30", "TW-CORE-31", "TW-CORE-32"],
            Op::Subscribe { .. } => &["TW-TOPIC-3", "TW-TOPIC-4"],
            Op::Publish { .. } => &["TW-TOPIC-1", "TW-TOPIC-2", "TW-TOPIC-5"],
            Op::Join { .. } => &[
                "TW-ROOM-3",
                "TW-ROOM-4",
                "TW-ROOM-5",
                "TW-PRESENCE-1",
                "TW-PRESENCE-2",
            ],
            Op::Leave { .. } => &["TW-ROOM-6", "TW-ROOM-7"],
            Op::Post { .. } => &["TW-ROOM-1", "TW-ROOM-2", "TW-ROOM-9", "TW-ROOM-10"],
            Op::Typing { .. } => &["TW-ROOM-1", "TW-ROOM-2", "TW-ROOM-11"],
            Op::Edit { .. } => &["TW-COLLAB-1", "TW-COLLAB-2", "TW-COLLAB-3", "TW-COLLAB-4"],
            Op::GetDocument { .. } => &["TW-COLLAB-1"],
            Op::History { .. } => &["TW-ROOM-1", "TW-ROOM-12", "TW-ROOM-13", "TW-ROOM-14"],
            Op::Reconnect => &["TW-ROOM-8"],
            Op::UnknownType => &["TW-CORE-18", "TW-CORE-21"],
            Op::WrongFieldType => &["TW-CORE-20", "TW-CORE-21"],
            Op::UnknownOperator { .. } => &["TW-FILTER-10"],
            Op::Burst(_) => &["TW-CORE-9", "TW-WATCH-9", "TW-TOPIC-6"],
            Op::AwaitHeartbeat { .. } => &["TW-CORE-28"],
            Op::Flood { .. } => &["TW-LIMIT-2"],
            Op::OutOfScope { .. } => &["TW-AUTH-11"],
            Op::Search { .. } => &["TW-VECTOR-1", "TW-VECTOR-2", "TW-VECTOR-3", "TW-VECTOR-4"],
            Op::KeyedCreate { .. } => &["TW-REC-2", "TW-REC-4", "TW-IDEM-1", "TW-IDEM-2"],
            Op::View { .. } => &[
                "TW-WATCH-2",
                "TW-VIEW-1",
                "TW-VIEW-2",
                "TW-VIEW-3",
                "TW-VIEW-4",
            ],
            Op::HistoryForward { .. } => &["TW-RECOVER-3", "TW-RECOVER-8", "TW-RECOVER-9"],
            Op::ResumeTopic { .. } => &["TW-RECOVER-1", "TW-RECOVER-2"],
            Op::KeyedPost { .. } => &["TW-ROOM-9", "TW-IDEM-1", "TW-IDEM-2", "TW-IDEM-3"],
            Op::KeyedEdit { .. } => &[
                "TW-COLLAB-2",
                "TW-COLLAB-3",
                "TW-IDEM-1",
                "TW-IDEM-2",
                "TW-IDEM-3",
            ],
            Op::Undecodable { kind } => match kind {
                Undecodable::NotJson => &["TW-CORE-15", "TW-CORE-21"],
                Undecodable::NotObject => &["TW-CORE-16", "TW-CORE-21"],
                Undecodable::MissingType | Undecodable::NumericType => {
                    &["TW-CORE-17", "TW-CORE-21"]
                }
            },
            Op::EndingFrame { kind } => match kind {
                EndingFrame::Binary => &["TW-CORE-12", "TW-CORE-35", "TW-CLOSE-1"],
                EndingFrame::InvalidUtf8 => &["TW-CORE-13", "TW-CORE-35", "TW-CLOSE-1"],
                EndingFrame::Oversize => &["TW-CORE-11", "TW-CORE-35", "TW-CLOSE-1"],
                EndingFrame::ReservedBit | EndingFrame::ReservedOpcode => {
                    &["TW-CLOSE-4", "TW-CORE-35"]
                }
                EndingFrame::Close(_) | EndingFrame::ForbiddenCloseCode(_) => &["TW-CLOSE-5"],
            },
            Op::Stats => &["TW-STATS-1"],
            Op::Nesting { .. } => &["TW-CORE-14", "TW-CORE-21"],
            Op::SubscriptionCap { .. } => &["TW-LIMIT-6", "TW-CORE-30"],
            Op::RateAbuse { .. } => &["TW-LIMIT-3", "TW-CLOSE-1", "TW-CLOSE-2"],
            Op::ServerGauges { .. } => &["TW-STATS-1"],
            Op::ResumeWatch { from, .. } => match from {
                ResumeFrom::Token => &["TW-RESUME-2", "TW-RESUME-3"],
                ResumeFrom::Position => &["TW-POS-2", "TW-POS-3"],
                ResumeFrom::BeyondHead | ResumeFrom::OtherEpoch => &["TW-RESUME-4", "TW-POS-5"],
                ResumeFrom::BothForms => &["TW-POS-4"],
            },
            Op::Reauth { handshake, .. } => {
                const REAUTH: [&str; 8] = [
                    "TW-AUTH-6",
                    "TW-AUTH-7",
                    "TW-AUTH-11",
                    "TW-AUTH-13",
                    "TW-AUTH-14",
                    "TW-AUTH-15",
                    "TW-END-1",
                    "TW-END-6",
                ];
                const WITH_HANDSHAKE: [&str; 9] = [
                    "TW-AUTH-2",
                    "TW-AUTH-6",
                    "TW-AUTH-7",
                    "TW-AUTH-11",
                    "TW-AUTH-13",
                    "TW-AUTH-14",
                    "TW-AUTH-15",
                    "TW-END-1",
                    "TW-END-6",
                ];
                if *handshake {
                    &WITH_HANDSHAKE
                } else {
                    &REAUTH
                }
            }
            Op::InvalidHandshake => &["TW-AUTH-3", "TW-AUTH-5"],
            Op::Expiry => &["TW-AUTH-16", "TW-AUTH-17", "TW-END-2"],
            Op::AuthTimeout => &["TW-AUTH-8", "TW-AUTH-10"],
            Op::RejoinRoom { .. } => &["TW-RECOVER-3", "TW-RECOVER-4"],
            Op::HiddenRecords { .. } => &[
                "TW-AUTHZ-1",
                "TW-AUTHZ-2",
                "TW-AUTHZ-3",
                "TW-AUTHZ-4",
                "TW-AUTHZ-5",
            ],
            Op::SpelledRead { spelling, .. } => match spelling {
                ReadSpelling::NullMembers => &["TW-DECODE-1", "TW-REC-8"],
                ReadSpelling::Limit { .. } | ReadSpelling::NegativeZeroOffset => {
                    &["TW-DECODE-2", "TW-REC-8"]
                }
                ReadSpelling::AtBound { .. } => &["TW-DECODE-4", "TW-REC-8"],
                ReadSpelling::BeyondBound { .. } => &["TW-DECODE-3"],
            },
            Op::UnmatchableWatch { .. } => &["TW-PATH-1"],
            Op::SearchOutOfRange { bound, .. } => match bound {
                SearchBound::KZero | SearchBound::KOverMax => &["TW-VECTOR-4"],
                SearchBound::Component { .. } => &["TW-VECTOR-5"],
            },
            Op::ReadThenWatch { .. } => &["TW-POS-2", "TW-POS-3"],
            Op::NarrowedWatch { .. } => &["TW-END-1", "TW-END-5", "TW-END-6", "TW-RESUME-2"],
            Op::QuietProgress { .. } => &["TW-POS-8"],
            Op::EmptyEdit { .. } => &["TW-COLLAB-5", "TW-CORE-23"],
            Op::DocumentEdits { positions, .. } => {
                if *positions {
                    &[
                        "TW-COLLAB-2",
                        "TW-COLLAB-3",
                        "TW-COLLAB-5",
                        "TW-COLLAB-6",
                        "TW-IDEM-1",
                        "TW-IDEM-2",
                        "TW-IDEM-3",
                        "TW-POS-1",
                    ]
                } else {
                    &[
                        "TW-COLLAB-2",
                        "TW-COLLAB-3",
                        "TW-COLLAB-5",
                        "TW-COLLAB-6",
                        "TW-IDEM-1",
                        "TW-IDEM-2",
                        "TW-IDEM-3",
                    ]
                }
            }
            Op::SearchBatch { .. } => &["TW-VECTOR-1", "TW-VECTOR-2", "TW-VECTOR-3"],
            Op::ViewChurn { .. } => &["TW-VIEW-1", "TW-VIEW-2", "TW-VIEW-3", "TW-VIEW-4"],
            Op::OversizedJoin { .. } => &["TW-PRESENCE-3"],
            Op::TopicRetention { .. } => {
                &["TW-RECOVER-2", "TW-RECOVER-5", "TW-RECOVER-6", "TW-POS-5"]
            }
            Op::RoomPostRate { .. } => &["TW-QUOTA-3", "TW-QUOTA-4"],
            Op::RoomLost { .. } => &["TW-POS-5", "TW-RECOVER-4"],
            Op::SecondRun => &["TW-POS-6"],
            Op::Handshake { check } => match check {
                HandshakeCheck::Session => &[
                    "TW-SESSION-2",
                    "TW-SESSION-3",
                    "TW-SESSION-5",
                    "TW-SESSION-7",
                    "TW-SESSION-8",
                    "TW-LIVE-1",
                ],
                HandshakeCheck::Parts => &["TW-SESSION-3", "TW-SESSION-4"],
                HandshakeCheck::BadParameter(_) => &["TW-SESSION-1"],
                HandshakeCheck::Deflate => &["TW-COMPRESS-1"],
            },
            Op::Liveness => &["TW-LIVE-1", "TW-LIVE-2", "TW-LIVE-3", "TW-LIVE-4"],
            Op::BoundEndpoint => &["TW-ENDPOINT-1", "TW-ENDPOINT-2", "TW-ENDPOINT-3"],
            Op::UnnamedCreate { .. } => &["TW-ENDPOINT-1", "TW-ENDPOINT-4"],
            Op::TokenDisplayName => &["TW-PRESENCE-1", "TW-PRESENCE-2", "TW-SESSION-11"],
            Op::RequiredMode => &["TW-AUTH-8", "TW-SESSION-10", "TW-SESSION-11"],
            Op::ApplicationError => &["TW-XERR-1", "TW-XERR-2"],
            Op::ConnectRate { .. } => &["TW-QUOTA-1", "TW-QUOTA-2"],
            Op::Shutdown { .. } => &["TW-CORE-33", "TW-END-1", "TW-END-2"],
        }
    }

    /// This operation and, for a burst, the operations it is made of.
    pub fn flatten(&self) -> Vec<&Op> {
        match self {
            Op::Burst(ops) => std::iter::once(self)
                .chain(ops.iter().flat_map(Op::flatten))
                .collect(),
            Op::ResumeWatch {
                before,
                after,
                live,
                ..
            } => std::iter::once(self)
                .chain(before.iter().chain(after).chain(live).flat_map(Op::flatten))
                .collect(),
            Op::SearchBatch { searches, .. } => std::iter::once(self)
                .chain(searches.iter().flat_map(Op::flatten))
                .collect(),
            op => vec![op],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Red,
    Blue,
}

impl Tag {
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Red => "red",
            Tag::Blue => "blue",
        }
    }
}

/// The change an `update` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    SetN(i64),
    SetTag(Tag),
    UnsetTag,
    /// Sets `meta.v`, creating `meta` when the record has none.
    SetNested(i64),
    /// Sets `vec`, the vector that searches rank.
    SetVec([i8; 2]),
    /// Sets `vec` to a vector of three components, a dimension no search
    /// of the model has: every search of the collection is then refused.
    SetVecOtherDimension([i8; 3]),
}

/// Filters of `read` queries over records `{_id, n, tag?, meta?}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFilter {
    All,
    NGte(i64),
    TagIn(Tag),
    TagMissingOr(Tag),
    NotN(i64),
    TagLike,
    MetaLt(i64),
}

impl RecordFilter {
    pub fn to_json(self) -> Option<Value> {
        use serde_json::json;
        Some(match self {
            RecordFilter::All => return None,
            RecordFilter::NGte(v) => json!({"n": {"$gte": v}}),
            RecordFilter::TagIn(t) => json!({"tag": {"$in": [t.as_str(), "green"]}}),
            RecordFilter::TagMissingOr(t) => {
                json!({"$or": [{"tag": {"$exists": false}}, {"tag": t.as_str()}]})
            }
            RecordFilter::NotN(v) => json!({"$not": {"n": v}}),
            RecordFilter::TagLike => json!({"tag": {"$ilike": "R%"}}),
            RecordFilter::MetaLt(v) => json!({"meta.v": {"$lt": v}}),
        })
    }
}

/// Filters of `watch` subscriptions over change events as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFilter {
    All,
    Operations {
        insert: bool,
        update: bool,
        delete: bool,
    },
    FullDocumentNGte(i64),
    UpdatesN,
}

impl EventFilter {
    pub fn to_json(self) -> Option<Value> {
        use serde_json::json;
        Some(match self {
            EventFilter::All => return None,
            EventFilter::Operations {
                insert,
                update,
                delete,
            } => {
                let ops: Vec<&str> = [(insert, "insert"), (update, "update"), (delete, "delete")]
                    .into_iter()
                    .filter_map(|(on, name)| on.then_some(name))
                    .collect();
                json!({"operation_type": {"$in": ops}})
            }
            EventFilter::FullDocumentNGte(v) => json!({"full_document.n": {"$gte": v}}),
            EventFilter::UpdatesN => {
                json!({"update_description.updated_fields.n": {"$exists": true}})
            }
        })
    }
}

const COLLECTIONS: u8 = 2;
const KEYS: u8 = 4;
const TOPICS: u8 = 2;
const ROOMS: u8 = 2;
/// Distinct display names joins draw from, so that a rejoin often changes its name.
const DISPLAY_NAMES: u8 = 3;

/// A room for a post, typing or a history page: mostly the first, which the
/// rooms group's sequences start by joining, so that these meet members and
/// messages; the other for what a non-member is told.
fn busy_room() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(0u8), 1 => Just(1u8)]
}

fn small() -> impl Strategy<Value = i64> {
    -3i64..=3
}

fn tag() -> impl Strategy<Value = Tag> {
    prop_oneof![Just(Tag::Red), Just(Tag::Blue)]
}

fn create() -> BoxedStrategy<Op> {
    (
        0..COLLECTIONS,
        0..KEYS,
        small(),
        proptest::option::of(tag()),
    )
        .prop_map(|(coll, key, n, tag)| Op::Create { coll, key, n, tag })
        .boxed()
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        small().prop_map(Change::SetN),
        tag().prop_map(Change::SetTag),
        Just(Change::UnsetTag),
        small().prop_map(Change::SetNested),
    ]
}

fn update() -> BoxedStrategy<Op> {
    (0..COLLECTIONS, 0..KEYS, change())
        .prop_map(|(coll, key, change)| Op::Update { coll, key, change })
        .boxed()
}

fn delete() -> BoxedStrategy<Op> {
    (0..COLLECTIONS, 0..KEYS)
        .prop_map(|(coll, key)| Op::Delete { coll, key })
        .boxed()
}

fn publish() -> BoxedStrategy<Op> {
    (0..TOPICS, small())
        .prop_map(|(topic, n)| Op::Publish { topic, n })
        .boxed()
}

fn post() -> BoxedStrategy<Op> {
    (busy_room(), small())
        .prop_map(|(room, n)| Op::Post { room, n })
        .boxed()
}

fn edit() -> BoxedStrategy<Op> {
    (
        0..ROOMS,
        proptest::bool::weighted(0.3),
        prop::char::range('a', 'e'),
    )
        .prop_map(|(room, stale, text)| Op::Edit { room, stale, text })
        .boxed()
}

fn record_ops() -> Vec<(u32, BoxedStrategy<Op>)> {
    let filter = prop_oneof![
        Just(RecordFilter::All),
        small().prop_map(RecordFilter::NGte),
        tag().prop_map(RecordFilter::TagIn),
        tag().prop_map(RecordFilter::TagMissingOr),
        small().prop_map(RecordFilter::NotN),
        Just(RecordFilter::TagLike),
        small().prop_map(RecordFilter::MetaLt),
    ];
    vec![
        (6, create()),
        (5, update()),
        (2, delete()),
        (
            2,
            (0..COLLECTIONS, 0..KEYS)
                .prop_map(|(coll, key)| Op::Get { coll, key })
                .boxed(),
        ),
        (
            3,
            (
                0..COLLECTIONS,
                filter,
                any::<bool>(),
                proptest::option::of(1u32..4),
            )
                .prop_map(|(coll, filter, desc, limit)| Op::Query {
                    coll,
                    filter,
                    desc,
                    limit,
                })
                .boxed(),
        ),
        (1, Just(Op::WrongFieldType).boxed()),
        (
            1,
            (0..COLLECTIONS)
                .prop_map(|coll| Op::UnknownOperator { coll })
                .boxed(),
        ),
    ]
}

fn watch_ops() -> Vec<(u32, BoxedStrategy<Op>)> {
    let filter = prop_oneof![
        2 => Just(EventFilter::All),
        1 => (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(insert, update, delete)| {
            EventFilter::Operations { insert, update, delete }
        }),
        1 => small().prop_map(EventFilter::FullDocumentNGte),
        1 => Just(EventFilter::UpdatesN),
    ];
    vec![
        (
            3,
            (
                proptest::option::of(0..COLLECTIONS),
                filter.clone(),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(coll, filter, pipeline, full_document)| Op::Watch {
                    coll,
                    filter,
                    pipeline,
                    full_document,
                })
                .boxed(),
        ),
        (
            2,
            (proptest::option::of(0..COLLECTIONS), filter)
                .prop_map(|(coll, filter)| Op::View { coll, filter })
                .boxed(),
        ),
    ]
}

/// Components small enough that distinct scores never tie within the
/// tolerance of section 24.2, so that rankings are predictable; exact ties
/// (equal integer scores) still occur, and the model allows their freedom.
fn vector_component() -> impl Strategy<Value = i8> {
    -3i8..=3
}

fn vector_ops() -> Vec<(u32, BoxedStrategy<Op>)> {
    let metric = prop_oneof![
        Just(tidewire_protocol::Metric::Cosine),
        Just(tidewire_protocol::Metric::Dot),
        Just(tidewire_protocol::Metric::Euclidean),
    ];
    // Weighted up: a search shows a ranking only after vectors were set on
    // records that exist, which a sparse mix rarely brings together.
    vec![
        (
            6,
            (
                0..COLLECTIONS,
                0..KEYS,
                [vector_component(), vector_component()],
            )
                .prop_map(|(coll, key, v)| Op::Update {
                    coll,
                    key,
                    change: Change::SetVec(v),
                })
                .boxed(),
        ),
        (
            4,
            (
                0..COLLECTIONS,
                [vector_component(), vector_component()],
                1u8..5,
                metric,
                proptest::option::of(tag()),
            )
                .prop_map(|(coll, vector, k, metric, tag)| Op::Search {
                    coll,
                    vector,
                    k,
                    metric,
                    tag,
                })
                .boxed(),
        ),
        (
            1,
            (
                0..COLLECTIONS,
                0..KEYS,
                [vector_component(), vector_component(), vector_component()],
            )
                .prop_map(|(coll, key, v)| Op::Update {
                    coll,
                    key,
                    change: Change::SetVecOtherDimension(v),
                })
                .boxed(),
        ),
    ]
}

fn topic_ops() -> Vec<(u32, BoxedStrategy<Op>)> {
    vec![
        (
            2,
            (0..TOPICS, proptest::option::of(small()))
                .prop_map(|(topic, min)| Op::Subscribe { topic, min })
                .boxed(),
        ),
        (3, publish()),
    ]
}

fn room_ops() -> Vec<(u32, BoxedStrategy<Op>)> {
    vec![
        (
            4,
            (
                0..ROOMS,
                proptest::bool::weighted(0.25),
                proptest::option::weighted(0.5, 0..DISPLAY_NAMES),
            )
                .prop_map(|(room, observer, display_name)| Op::Join {
                    room,
                    observer,
                    display_name,
                })
                .boxed(),
        ),
        (1, (0..ROOMS).prop_map(|room| Op::Leave { room }).boxed()),
        (3, post()),
        // As often as posts: typing is relayed to every member but the
        // typist, a rule only a room of two members acting shows.
        (
            3,
            (busy_room(), any::<bool>())
                .prop_map(|(room, active)| Op::Typing { room, active })
                .boxed(),
        ),
        // Small limits mostly: a page shorter than the room's messages is
        // where `has_more`, the cursor and the page's order show.
        (
            4,
            (
                busy_room(),
                proptest::option::of(any::<u8>()),
                prop_oneof![
                    2 => Just(None),
                    1 => Just(Some(0u32)),
                    3 => Just(Some(1u32)),
                    4 => Just(Some(2u32)),
                ],
            )
                .prop_map(|(room, before, limit)| Op::History {
                    room,
                    before,
                    limit,
                })
                .boxed(),
        ),
    ]
}

fn collab_ops() -> Vec<(u32, BoxedStrategy<Op>)> {
    vec![
        (3, edit()),
        (
            1,
            (0..ROOMS).prop_map(|room| Op::GetDocument { room }).boxed(),
        ),
    ]
}

/// Writes that hide and reveal records between reads and watches of two
/// principals. Three keys, so that writes keep meeting the same records;
/// most records are created hidden or get hidden, where the rules show.
fn hidden_records() -> BoxedStrategy<Op> {
    const HIDDEN_KEYS: u8 = 3;
    let privacy = prop_oneof![
        2 => Just(Privacy::Public),
        1 => Just(Privacy::Mine),
        2 => Just(Privacy::Nobody),
    ];
    let hidden = prop_oneof![Just(Privacy::Mine), Just(Privacy::Nobody)];
    let step = prop_oneof![
        4 => (0..HIDDEN_KEYS, small(), privacy)
            .prop_map(|(key, n, privacy)| HiddenStep::Create { key, n, privacy }),
        1 => (0..HIDDEN_KEYS, small()).prop_map(|(key, n)| HiddenStep::Renumber { key, n }),
        3 => (0..HIDDEN_KEYS, hidden).prop_map(|(key, privacy)| HiddenStep::Hide { key, privacy }),
        3 => (0..HIDDEN_KEYS).prop_map(|key| HiddenStep::Reveal { key }),
        1 => (0..HIDDEN_KEYS).prop_map(|key| HiddenStep::Delete { key }),
        3 => (any::<bool>(), proptest::option::of(small()))
            .prop_map(|(by_owner, min)| HiddenStep::Query { by_owner, min }),
        3 => (any::<bool>(), 0..HIDDEN_KEYS)
            .prop_map(|(by_owner, key)| HiddenStep::Get { by_owner, key }),
    ];
    let filter = prop_oneof![
        3 => Just(EventFilter::All),
        1 => (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(insert, update, delete)| {
            EventFilter::Operations { insert, update, delete }
        }),
        1 => small().prop_map(EventFilter::FullDocumentNGte),
    ];
    (filter, proptest::collection::vec(step, 2..12))
        .prop_map(|(filter, steps)| Op::HiddenRecords { filter, steps })
        .boxed()
}

fn spelled_read() -> BoxedStrategy<Op> {
    let spelling = prop_oneof![
        2 => Just(ReadSpelling::NullMembers),
        3 => (1u8..4, 0..INTEGER_FORMS.len() as u8)
            .prop_map(|(limit, form)| ReadSpelling::Limit { limit, form }),
        1 => Just(ReadSpelling::NegativeZeroOffset),
        1 => any::<bool>().prop_map(|offset| ReadSpelling::AtBound { offset }),
        2 => any::<bool>().prop_map(|offset| ReadSpelling::BeyondBound { offset }),
    ];
    (0..COLLECTIONS, spelling)
        .prop_map(|(coll, spelling)| Op::SpelledRead { coll, spelling })
        .boxed()
}

fn search_batch() -> BoxedStrategy<Op> {
    let metric = prop_oneof![
        Just(tidewire_protocol::Metric::Cosine),
        Just(tidewire_protocol::Metric::Dot),
        Just(tidewire_protocol::Metric::Euclidean),
    ];
    let vectors = proptest::collection::vec(
        (
            [vector_component(), vector_component()],
            proptest::option::of(tag()),
        ),
        2..=KEYS as usize,
    );
    let search = (
        [vector_component(), vector_component()],
        1u8..4,
        metric,
        proptest::option::weighted(0.3, tag()),
    )
        .prop_map(|(vector, k, metric, tag)| Op::Search {
            coll: 0,
            vector,
            k,
            metric,
            tag,
        });
    let other_dimension = proptest::option::weighted(
        0.15,
        [vector_component(), vector_component(), vector_component()],
    );
    (
        vectors,
        other_dimension,
        proptest::collection::vec(search, 1..4),
    )
        .prop_map(|(vectors, other_dimension, searches)| Op::SearchBatch {
            vectors,
            other_dimension,
            searches,
        })
        .boxed()
}

fn search_out_of_range() -> BoxedStrategy<Op> {
    let bound = prop_oneof![
        Just(SearchBound::KZero),
        Just(SearchBound::KOverMax),
        (0u8..2, any::<bool>()).prop_map(|(at, negative)| SearchBound::Component { at, negative }),
    ];
    (0..COLLECTIONS, bound)
        .prop_map(|(coll, bound)| Op::SearchOutOfRange { coll, bound })
        .boxed()
}

/// A watcher that disconnects between writes and resumes. Most resume from
/// what they received, by token or by position; the rest from points the
/// journal cannot honour. The writes are weighted toward the watched
/// collection's few keys, so that the missed changes meet the filter.
fn resume_watch() -> BoxedStrategy<Op> {
    let write = prop_oneof![3 => create(), 3 => update(), 1 => delete()];
    let writes = |max: usize| proptest::collection::vec(write.clone(), 0..=max);
    let filter = prop_oneof![
        2 => Just(EventFilter::All),
        1 => (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(insert, update, delete)| {
            EventFilter::Operations { insert, update, delete }
        }),
        1 => small().prop_map(EventFilter::FullDocumentNGte),
        1 => Just(EventFilter::UpdatesN),
    ];
    let from = prop_oneof![
        3 => Just(ResumeFrom::Token),
        3 => Just(ResumeFrom::Position),
        1 => Just(ResumeFrom::BeyondHead),
        1 => Just(ResumeFrom::OtherEpoch),
        1 => Just(ResumeFrom::BothForms),
    ];
    (
        proptest::option::weighted(0.8, 0..COLLECTIONS),
        filter,
        writes(3),
        writes(4),
        writes(1),
        from,
    )
        .prop_map(
            |(coll, filter, before, after, live, from)| Op::ResumeWatch {
                coll,
                filter,
                before,
                after,
                live,
                from,
            },
        )
        .boxed()
}

/// Bursts of two writes. Most write twice to one target, so that both
/// events reach the same subscriptions and their order is checked; the rest
/// pair any two writes.
fn bursts(profiles: &[Profile]) -> Vec<(u32, BoxedStrategy<Op>)> {
    let has = |p: Profile| profiles.contains(&p);
    fn pair((first, second): (Op, Op)) -> Op {
        Op::Burst(vec![first, second])
    }
    let mut any_write: Vec<(u32, BoxedStrategy<Op>)> = Vec::new();
    let mut ops: Vec<(u32, BoxedStrategy<Op>)> = Vec::new();
    if has(Profile::Records) {
        any_write.extend([(3, create()), (3, update()), (1, delete())]);
        ops.push((
            2,
            (create(), change())
                .prop_map(|(create, change)| {
                    let Op::Create { coll, key, .. } = create else {
                        unreachable!("create() makes creates")
                    };
                    (create, Op::Update { coll, key, change })
                })
                .prop_map(pair)
                .boxed(),
        ));
    }
    if has(Profile::Topics) {
        any_write.push((3, publish()));
        ops.push((
            2,
            (0..TOPICS, small(), small())
                .prop_map(|(topic, a, b)| {
                    pair((Op::Publish { topic, n: a }, Op::Publish { topic, n: b }))
                })
                .boxed(),
        ));
    }
    if has(Profile::Rooms) {
        any_write.push((1, post()));
        ops.push((
            1,
            (0..ROOMS, small(), small())
                .prop_map(|(room, a, b)| pair((Op::Post { room, n: a }, Op::Post { room, n: b })))
                .boxed(),
        ));
        if has(Profile::Collab) {
            any_write.push((1, edit()));
        }
    }
    if !any_write.is_empty() {
        let write = Union::new_weighted(any_write);
        ops.push((1, (write.clone(), write).prop_map(pair).boxed()));
    }
    ops
}

/// The largest announced topic retention a case publishes past: each
/// publication it keeps costs a frame each way.
const TOPIC_RETENTION_MAX: u64 = 20;

/// The most posts a room's rate may allow for a case to reach it, and the
/// shortest window in which a case's posts surely all fall.
const ROOM_RATE_MAX_POSTS: u32 = 10;
const ROOM_RATE_MIN_WINDOW_MS: u64 = 10_000;

fn room_rate_reachable(rate: &RateLimit) -> bool {
    rate.messages <= ROOM_RATE_MAX_POSTS && rate.window_ms >= ROOM_RATE_MIN_WINDOW_MS
}

/// Topic operations on streams of their own: on the `retention_url`
/// server, and on two runs of the server.
fn topic_stream_ops(profiles: &[Profile], announced: Announced) -> Vec<(u32, BoxedStrategy<Op>)> {
    let mut ops: Vec<(u32, BoxedStrategy<Op>)> = Vec::new();
    if !profiles.contains(&Profile::Resume) {
        return ops;
    }
    if let Some(retention) = announced
        .topic_retention
        .filter(|r| (1..=TOPIC_RETENTION_MAX).contains(r))
    {
        ops.push((1, Just(Op::TopicRetention { retention }).boxed()));
    }
    if announced.second_run {
        ops.push((1, Just(Op::SecondRun).boxed()));
    }
    ops
}

/// Room operations beyond the model's members: joins over the bounds of
/// member info, joins after positions a room cannot honour, and the post
/// rate of the `room_rate_url` server.
fn room_stream_ops(profiles: &[Profile], announced: Announced) -> Vec<(u32, BoxedStrategy<Op>)> {
    let excess = prop_oneof![
        Just(MemberInfoExcess::LongName),
        Just(MemberInfoExcess::ControlInName),
        Just(MemberInfoExcess::ManyMembers),
        Just(MemberInfoExcess::LongValue),
        Just(MemberInfoExcess::BadName),
    ];
    let mut ops: Vec<(u32, BoxedStrategy<Op>)> = vec![(
        1,
        (0..ROOMS, excess)
            .prop_map(|(room, excess)| Op::OversizedJoin { room, excess })
            .boxed(),
    )];
    if profiles.contains(&Profile::Resume) {
        ops.push((
            1,
            any::<bool>()
                .prop_map(|beyond_head| Op::RoomLost { beyond_head })
                .boxed(),
        ));
    }
    if let Some(rate) = announced.room_post_rate.filter(room_rate_reachable) {
        ops.push((
            1,
            Just(Op::RoomPostRate {
                messages: rate.messages,
            })
            .boxed(),
        ));
    }
    ops
}

/// The most frames a flood sends, and the shortest window it tries to fill:
/// beyond them, sending one more frame than the limit may take longer than
/// the window, and the last frame would rightly be processed.
const FLOOD_MAX_MESSAGES: u32 = 1000;
const FLOOD_MIN_WINDOW_MS: u64 = 500;

/// Operations a server claiming `profiles` must serve, given what it
/// `announced` in its `welcome`. Profiles that generate nothing on their
/// own (watch without records to change) are left out with their
/// dependants, as a server may not claim them alone.
pub fn operations(profiles: &[Profile], announced: Announced) -> BoxedStrategy<Op> {
    let has = |p: Profile| profiles.contains(&p);
    let mut ops: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (1, small().prop_map(|payload| Op::Ping { payload }).boxed()),
        (1, Just(Op::UnknownType).boxed()),
        (1, Just(Op::Reconnect).boxed()),
    ];
    if has(Profile::Records) {
        ops.extend(record_ops());
        if has(Profile::Watch) {
            ops.extend(watch_ops());
            // Weighted up: each of its rules needs a record hidden or
            // revealed and then watched or read, within one operation.
            if announced.hidden_records {
                ops.push((4, hidden_records()));
            }
            ops.push((
                2,
                (
                    0..COLLECTIONS,
                    small(),
                    proptest::collection::vec(
                        (0..KEYS, proptest::option::weighted(0.85, small())),
                        1..6,
                    ),
                )
                    .prop_map(|(coll, threshold, writes)| Op::ViewChurn {
                        coll,
                        threshold,
                        writes,
                    })
                    .boxed(),
            ));
            if announced.narrow_token && has(Profile::Auth) {
                ops.push((
                    1,
                    (0..COLLECTIONS)
                        .prop_map(|coll| Op::NarrowedWatch { coll })
                        .boxed(),
                ));
            }
            ops.push((
                1,
                (
                    proptest::option::of(0..COLLECTIONS),
                    0..UNMATCHABLE_PATHS.len() as u8,
                    any::<bool>(),
                )
                    .prop_map(|(coll, path, pipeline)| Op::UnmatchableWatch {
                        coll,
                        path,
                        pipeline,
                    })
                    .boxed(),
            ));
        }
        ops.push((2, spelled_read()));
        ops.extend(endpoint_ops(announced));
    }
    if has(Profile::Topics) {
        ops.extend(topic_ops());
        if has(Profile::Resume) {
            ops.push((
                1,
                (
                    0..TOPICS,
                    proptest::option::of(small()),
                    proptest::collection::vec(small(), 0..3),
                )
                    .prop_map(|(topic, min, ns)| Op::ResumeTopic { topic, min, ns })
                    .boxed(),
            ));
        }
        ops.extend(topic_stream_ops(profiles, announced));
    }
    if has(Profile::Vector) && has(Profile::Records) {
        ops.extend(vector_ops());
        ops.push((2, search_out_of_range()));
        ops.push((2, search_batch()));
    }
    if has(Profile::Records) && has(Profile::Watch) && has(Profile::Resume) {
        ops.push((2, resume_watch()));
        ops.push((
            1,
            (0..COLLECTIONS, 0..KEYS, small(), any::<bool>())
                .prop_map(|(coll, key, n, whole_database)| Op::ReadThenWatch {
                    coll,
                    key,
                    n,
                    whole_database,
                })
                .boxed(),
        ));
        if let Some(heartbeat_ms) = announced
            .quiet_heartbeat_ms
            .filter(|ms| (1..=QUIET_HEARTBEAT_MAX_MS).contains(ms))
        {
            ops.push((
                1,
                (0..COLLECTIONS)
                    .prop_map(move |coll| Op::QuietProgress { coll, heartbeat_ms })
                    .boxed(),
            ));
        }
    }
    if has(Profile::Watch) || has(Profile::Topics) {
        ops.push((
            1,
            any::<u8>().prop_map(|nth| Op::Unsubscribe { nth }).boxed(),
        ));
    }
    if has(Profile::Rooms) {
        ops.extend(room_ops());
        if has(Profile::Resume) {
            // As often as backward pages: a forward page shows its bounds
            // only where more messages follow its cursor than its limit.
            ops.push((
                4,
                (
                    busy_room(),
                    proptest::option::of(any::<u8>()),
                    // Mostly pages shorter than what follows the cursor,
                    // where `has_more` and the page's end show.
                    prop_oneof![
                        1 => Just(None),
                        3 => Just(Some(1u32)),
                        2 => Just(Some(2u32)),
                    ],
                )
                    .prop_map(|(room, after, limit)| Op::HistoryForward { room, after, limit })
                    .boxed(),
            ));
        }
        if has(Profile::Resume) {
            let posts = |max: usize| proptest::collection::vec(small(), 0..=max);
            ops.push((
                1,
                (posts(2), posts(3), posts(1))
                    .prop_map(|(before, after, live)| Op::RejoinRoom {
                        before,
                        after,
                        live,
                    })
                    .boxed(),
            ));
        }
        if has(Profile::Collab) {
            ops.extend(collab_ops());
            ops.push((
                1,
                (0..ROOMS, any::<bool>())
                    .prop_map(|(room, stale)| Op::EmptyEdit { room, stale })
                    .boxed(),
            ));
            let positions = has(Profile::Resume);
            // Two texts and two keys, so that an edit is often repeated under its key.
            let key = if announced.idempotency_window_ms.is_some() {
                proptest::option::weighted(0.6, 0..2u8).boxed()
            } else {
                Just(None).boxed()
            };
            let edit = (
                proptest::option::weighted(0.85, prop::char::range('a', 'b')),
                key,
            )
                .prop_map(|(text, key)| DocEdit { text, key });
            ops.push((
                2,
                proptest::collection::vec(edit, 1..6)
                    .prop_map(move |edits| Op::DocumentEdits { edits, positions })
                    .boxed(),
            ));
        }
        ops.extend(room_stream_ops(profiles, announced));
        if announced.named_token && has(Profile::Auth) {
            ops.push((1, Just(Op::TokenDisplayName).boxed()));
        }
    }
    ops.extend(bursts(profiles));
    if let Some(rate) = announced.rate.filter(|r| floodable(*r)) {
        ops.push((
            1,
            Just(Op::Flood {
                messages: rate.messages,
            })
            .boxed(),
        ));
    }
    if announced.idempotency_window_ms.is_some() && has(Profile::Records) {
        ops.push((
            2,
            (0..COLLECTIONS, 0..KEYS, 0..3i64, 0..3u8)
                .prop_map(|(coll, key, n, idem)| Op::KeyedCreate { coll, key, n, idem })
                .boxed(),
        ));
    }
    if announced.idempotency_window_ms.is_some() && has(Profile::Rooms) {
        ops.push((
            2,
            (0..ROOMS, 0..3i64, 0..3u8)
                .prop_map(|(room, n, idem)| Op::KeyedPost { room, n, idem })
                .boxed(),
        ));
        if has(Profile::Collab) {
            // Two keys and two texts: a repeat needs the same edit under the
            // same key from a participant, so the choices are kept few.
            ops.push((
                3,
                (0..ROOMS, prop::char::range('a', 'b'), 0..2u8)
                    .prop_map(|(room, text, idem)| Op::KeyedEdit { room, text, idem })
                    .boxed(),
            ));
        }
    }
    if announced.auth_tokens && reauth_profiles(profiles) {
        ops.push((2, reauth()));
        ops.push((1, Just(Op::InvalidHandshake).boxed()));
    }
    if announced.narrow_token && has(Profile::Auth) && has(Profile::Records) {
        ops.push((
            1,
            (0..COLLECTIONS)
                .prop_map(|coll| Op::OutOfScope { coll })
                .boxed(),
        ));
    }
    ops.extend(bad_input_ops(announced));
    ops.extend(session_ops(profiles, announced));
    if has(Profile::Stats) {
        ops.push((2, Just(Op::Stats).boxed()));
        if announced.stats_server {
            let subscriptions = if has(Profile::Topics) { 0..3u8 } else { 0..1 };
            let rooms = if has(Profile::Rooms) { 0..3u8 } else { 0..1 };
            ops.push((
                1,
                (subscriptions, rooms)
                    .prop_map(|(subscriptions, rooms)| Op::ServerGauges {
                        subscriptions,
                        rooms,
                    })
                    .boxed(),
            ));
        }
    }
    if has(Profile::Topics) {
        if let Some((endpoint, max)) = subscription_cap(announced) {
            ops.push((1, Just(Op::SubscriptionCap { endpoint, max }).boxed()));
        }
    }
    if let Some((endpoint, rate)) = rate_abuse(announced) {
        ops.push((
            1,
            Just(Op::RateAbuse {
                endpoint,
                messages: rate.messages,
                window_ms: rate.window_ms,
            })
            .boxed(),
        ));
    }
    Union::new_weighted(ops).boxed()
}

/// Close codes RFC 6455 allows in a client's close frame, and some it does
/// not (section 18.3), from both ends of each range.
const ALLOWED_CLOSE_CODES: [u16; 8] = [1000, 1001, 1003, 1008, 1011, 1013, 3000, 4999];
const FORBIDDEN_CLOSE_CODES: [u16; 8] = [999, 1004, 1005, 1006, 1014, 1015, 2999, 5000];

/// The deepest announced nesting a generated frame reaches: deeper frames
/// would cost more to send than the boundary they test is worth.
const NESTING_MAX_DEPTH: u32 = 10_000;

fn bad_input_ops(announced: Announced) -> Vec<(u32, BoxedStrategy<Op>)> {
    let undecodable = prop_oneof![
        Just(Undecodable::NotJson),
        Just(Undecodable::NotObject),
        Just(Undecodable::MissingType),
        Just(Undecodable::NumericType),
    ];
    let ending = prop_oneof![
        2 => Just(EndingFrame::Binary),
        2 => Just(EndingFrame::InvalidUtf8),
        1 => Just(EndingFrame::Oversize),
        1 => Just(EndingFrame::ReservedBit),
        1 => Just(EndingFrame::ReservedOpcode),
        2 => proptest::sample::select(&ALLOWED_CLOSE_CODES[..]).prop_map(EndingFrame::Close),
        2 => proptest::sample::select(&FORBIDDEN_CLOSE_CODES[..])
            .prop_map(EndingFrame::ForbiddenCloseCode),
    ];
    let mut ops = vec![
        (
            2,
            undecodable
                .prop_map(|kind| Op::Undecodable { kind })
                .boxed(),
        ),
        (2, ending.prop_map(|kind| Op::EndingFrame { kind }).boxed()),
    ];
    if let Some(depth) = announced
        .max_nesting_depth
        .filter(|d| (2..=NESTING_MAX_DEPTH).contains(d))
    {
        ops.push((
            1,
            any::<bool>()
                .prop_map(move |object| Op::Nesting { depth, object })
                .boxed(),
        ));
    }
    ops
}

/// Fresh connections about the handshake and the session rather than a
/// stream: what the handshake states, what the `welcome` says of the
/// connection, and errors of an application's own.
fn session_ops(profiles: &[Profile], announced: Announced) -> Vec<(u32, BoxedStrategy<Op>)> {
    let has = |p: Profile| profiles.contains(&p);
    let bad_parameter = prop_oneof![
        Just(BadParameter::BoundTooSmall),
        Just(BadParameter::BoundNotDecimal),
        Just(BadParameter::FeatureNotAName),
        Just(BadParameter::EmptyClient),
    ];
    let check = prop_oneof![
        2 => Just(HandshakeCheck::Session),
        2 => Just(HandshakeCheck::Parts),
        2 => bad_parameter.prop_map(HandshakeCheck::BadParameter),
        1 => Just(HandshakeCheck::Deflate),
    ];
    let mut ops = vec![(2, check.prop_map(|check| Op::Handshake { check }).boxed())];
    if has(Profile::Auth) && announced.auth_required_url && announced.auth_tokens {
        ops.push((1, Just(Op::RequiredMode).boxed()));
    }
    if has(Profile::Records) && announced.xerr_url {
        ops.push((1, Just(Op::ApplicationError).boxed()));
    }
    ops
}

/// Requests that name no database or collection: refused on the main
/// endpoint, read as the bound names on a bound one.
fn endpoint_ops(announced: Announced) -> Vec<(u32, BoxedStrategy<Op>)> {
    let omit = prop_oneof![
        Just(Omitted::Database),
        Just(Omitted::Collection),
        Just(Omitted::Both),
    ];
    let mut ops = vec![(
        1,
        (0..COLLECTIONS, omit)
            .prop_map(|(coll, omit)| Op::UnnamedCreate { coll, omit })
            .boxed(),
    )];
    if announced.libraries_url {
        ops.push((1, Just(Op::BoundEndpoint).boxed()));
    }
    ops
}

/// The most subscriptions a generated case fills before the one over the cap.
const SUBSCRIPTION_CAP_MAX: u32 = 16;

/// Where the subscription cap can be reached within one case: on the limits
/// server if there is one, else on the run's; the frames it takes (the cap,
/// one over, an unsubscribe and one more) must stay within the message rate.
fn subscription_cap(announced: Announced) -> Option<(Endpoint, u32)> {
    let reachable = |max: u32, rate: Option<RateLimit>| {
        max <= SUBSCRIPTION_CAP_MAX && rate.is_none_or(|r| max + 3 <= r.messages)
    };
    match announced.limits_server {
        Some(limits) if reachable(limits.max_subscriptions, limits.rate) => {
            Some((Endpoint::Limits, limits.max_subscriptions))
        }
        _ => announced
            .max_subscriptions
            .filter(|max| reachable(*max, announced.rate))
            .map(|max| (Endpoint::Run, max)),
    }
}

/// Where more than twice the message rate can be sent within one window, as
/// for [`floodable`] with twice the frames.
fn rate_abuse(announced: Announced) -> Option<(Endpoint, RateLimit)> {
    let abusable = |r: &RateLimit| r.messages * 2 < FLOOD_MAX_MESSAGES && floodable(*r);
    announced
        .limits_server
        .and_then(|l| l.rate)
        .filter(abusable)
        .map(|r| (Endpoint::Limits, r))
        .or_else(|| announced.rate.filter(abusable).map(|r| (Endpoint::Run, r)))
}
/// Whether a server claiming `profiles` serves everything a [`Op::Reauth`] does.
fn reauth_profiles(profiles: &[Profile]) -> bool {
    [
        Profile::Auth,
        Profile::Records,
        Profile::Watch,
        Profile::Topics,
        Profile::Rooms,
    ]
    .iter()
    .all(|p| profiles.contains(p))
}

fn reauth() -> BoxedStrategy<Op> {
    let step = prop_oneof![
        3 => Just(AuthStep::Reader),
        2 => Just(AuthStep::Admin),
        1 => Just(AuthStep::Expired),
        2 => (0..KEYS).prop_map(|key| AuthStep::Write { key }),
        2 => small().prop_map(|n| AuthStep::Publish { n }),
        1 => Just(AuthStep::Join),
    ];
    (
        proptest::bool::weighted(0.3),
        proptest::collection::vec(step, 1..6),
    )
        .prop_map(|(handshake, steps)| Op::Reauth { handshake, steps })
        .boxed()
}

/// The longest heartbeat interval of the `quiet_url` server a case waits
/// for: a [`Op::QuietProgress`] waits one interval.
const QUIET_HEARTBEAT_MAX_MS: u64 = 1000;

/// The share of scenarios that wait for a token to expire or an
/// unauthenticated connection to be closed: each costs the server's bound
/// (a few seconds, half a second on the embedded servers), so they are rare.
/// Expiries come three times as often as timeouts: an expiry is the only
/// way to see the `token_expiring` notice and the ends of a close, where a
/// timeout's close code is also shown by rate abuse.
const SLOW_AUTH_SHARE: f64 = 0.035;

/// The share of scenarios that wait out a connection-rate window: as long
/// as the window, a second at most, so they are rare.
const CONNECT_BURST_SHARE: f64 = 0.02;

/// The connection rates a case can reach: few attempts, and a window short
/// to wait out yet long beside the time a few handshakes take, so that all
/// of them surely fall within one window.
const CONNECT_BURST_MAX_ATTEMPTS: u32 = 10;
const CONNECT_BURST_MIN_WINDOW_MS: u64 = 500;
const CONNECT_BURST_MAX_WINDOW_MS: u64 = 2000;

fn connect_burst(announced: Announced) -> Option<ConnectRate> {
    announced.connect_burst.filter(|rate| {
        (1..=CONNECT_BURST_MAX_ATTEMPTS).contains(&rate.attempts)
            && (CONNECT_BURST_MIN_WINDOW_MS..=CONNECT_BURST_MAX_WINDOW_MS).contains(&rate.window_ms)
    })
}

/// The share of scenarios that wait out a liveness bound twice: on the
/// embedded `liveness_url` server under a second, each, so they are rare.
const LIVENESS_SHARE: f64 = 0.02;

/// The share of scenarios that wait for a heartbeat, and the longest
/// interval worth waiting for: each wait costs a whole interval, so it is
/// rare, and not made for servers announcing long ones (a skipped check,
/// reported by [`skipped_checks`]). One in fifty still meets a heartbeat in
/// all but about 2% of 200-case runs.
const HEARTBEAT_SHARE: f64 = 0.02;
pub const HEARTBEAT_MAX_MS: u64 = 5000;

/// A check this run cannot make against this server, and why; the run
/// reports each of them, so that a pass never hides what was not looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCheck {
    pub check: &'static str,
    pub requirements: &'static [&'static str],
    pub reason: String,
}

/// Rules no operation of the model exercises yet, whatever the server.
const NOT_GENERATED: [(&str, &[&str], &str, &str); 2] = [
    (
        "GET /stats",
        &["TW-STATS-2"],
        "stats",
        "generated cases speak WebSocket only; stats.http.get-stats of fixtures/ checks it",
    ),
    (
        "connection capacity",
        &["TW-LIMIT-5"],
        "limits",
        "it needs a server at its capacity, which a case sharing the server with others cannot arrange; limits.capacity.full of fixtures/ checks it",
    ),
];

/// Every check a run for `profiles` skips, given what the server `announced`.
pub fn skipped_checks(profiles: &[Profile], announced: Announced) -> Vec<SkippedCheck> {
    let has = |p: Profile| profiles.contains(&p);
    let mut skipped = Vec::new();
    match announced.heartbeat_ms {
        Some(ms) if ms > HEARTBEAT_MAX_MS => skipped.push(SkippedCheck {
            check: "heartbeat timing",
            requirements: &["TW-CORE-28"],
            reason: format!(
                "the welcome announces heartbeat_ms {ms}, longer than the {HEARTBEAT_MAX_MS} ms prop waits on one connection"
            ),
        }),
        Some(_) => {}
        None => skipped.push(SkippedCheck {
            check: "heartbeat timing",
            requirements: &["TW-CORE-28"],
            reason: "the welcome announces no heartbeat_ms".into(),
        }),
    }
    match announced.rate {
        None => skipped.push(SkippedCheck {
            check: "message-rate flood",
            requirements: &["TW-LIMIT-2"],
            reason: "the welcome announces no limits.rate".into(),
        }),
        Some(rate) if !floodable(rate) => skipped.push(SkippedCheck {
            check: "message-rate flood",
            requirements: &["TW-LIMIT-2"],
            reason: format!(
                "the announced rate ({} frames per {} ms) is over {FLOOD_MAX_MESSAGES} frames or under a {FLOOD_MIN_WINDOW_MS} ms window",
                rate.messages, rate.window_ms
            ),
        }),
        Some(_) => {}
    }
    if has(Profile::Records) && announced.idempotency_window_ms.is_none() {
        skipped.push(SkippedCheck {
            check: "repeated writes with an idempotency key",
            requirements: &["TW-IDEM-1", "TW-IDEM-2"],
            reason: "the welcome announces no idempotency_window_ms".into(),
        });
    }
    if has(Profile::Auth) && has(Profile::Records) && !announced.narrow_token {
        skipped.push(SkippedCheck {
            check: "a write outside the token's scopes",
            requirements: &["TW-AUTH-11"],
            reason: "no --var token_narrow was given".into(),
        });
    }
    if has(Profile::Topics) && subscription_cap(announced).is_none() {
        skipped.push(SkippedCheck {
            check: "subscription cap",
            requirements: &["TW-LIMIT-6"],
            reason: format!(
                "neither the server nor a --var limits_url server announces max_subscriptions of at most {SUBSCRIPTION_CAP_MAX} with a rate that lets a case reach it"
            ),
        });
    }
    if rate_abuse(announced).is_none() {
        skipped.push(SkippedCheck {
            check: "rate abuse close (twice the rate)",
            requirements: &["TW-LIMIT-3", "TW-CLOSE-2"],
            reason: format!(
                "neither the server nor a --var limits_url server announces a rate of under {} frames in a window of at least {FLOOD_MIN_WINDOW_MS} ms",
                FLOOD_MAX_MESSAGES / 2
            ),
        });
    }
    if has(Profile::Stats) && !announced.stats_server {
        skipped.push(SkippedCheck {
            check: "server-wide stats gauges, exactly",
            requirements: &["TW-STATS-1"],
            reason: "no --var stats_url names a server no other client uses; get_stats is checked exactly for its connection and as bounds for the server".into(),
        });
    }
    match announced.max_nesting_depth {
        Some(depth) if (2..=NESTING_MAX_DEPTH).contains(&depth) => {}
        depth => skipped.push(SkippedCheck {
            check: "nesting depth",
            requirements: &["TW-CORE-14"],
            reason: match depth {
                Some(depth) => format!(
                    "the welcome announces max_nesting_depth {depth}, outside 2 to {NESTING_MAX_DEPTH}"
                ),
                None => "the welcome announces no limits.max_nesting_depth".into(),
            },
        }),
    }
    if has(Profile::Auth) {
        if !announced.auth_tokens {
            skipped.push(SkippedCheck {
                check: "re-authentication, scopes after it, invalid tokens",
                requirements: &[
                    "TW-AUTH-2",
                    "TW-AUTH-3",
                    "TW-AUTH-6",
                    "TW-AUTH-7",
                    "TW-AUTH-14",
                    "TW-AUTH-15",
                    "TW-END-6",
                ],
                reason: "no --var token_reader, token_admin and jwt_expired were given".into(),
            });
        } else if !reauth_profiles(profiles) {
            skipped.push(SkippedCheck {
                check: "re-authentication, scopes after it, invalid tokens",
                requirements: &["TW-AUTH-2", "TW-AUTH-6", "TW-AUTH-14", "TW-AUTH-15"],
                reason: "it needs the profiles records, watch, topics and rooms too".into(),
            });
        }
        if !announced.expiring_token {
            skipped.push(SkippedCheck {
                check: "token expiry",
                requirements: &["TW-AUTH-16", "TW-AUTH-17"],
                reason: "no jwt_expiring is minted for each case (only --embedded does)".into(),
            });
        } else if !has(Profile::Topics) {
            skipped.push(SkippedCheck {
                check: "token expiry",
                requirements: &["TW-AUTH-16", "TW-AUTH-17"],
                reason: "it needs the profile topics too".into(),
            });
        }
        if !announced.auth_required_url {
            skipped.push(SkippedCheck {
                check: "the authentication timeout of required mode",
                requirements: &["TW-AUTH-10"],
                reason: "no --var auth_required_url was given".into(),
            });
        }
    }
    if has(Profile::Records) && has(Profile::Watch) && !announced.hidden_records {
        skipped.push(SkippedCheck {
            check: "row-level authorization of reads and watches",
            requirements: &[
                "TW-AUTHZ-1",
                "TW-AUTHZ-2",
                "TW-AUTHZ-3",
                "TW-AUTHZ-4",
                "TW-AUTHZ-5",
            ],
            reason:
                "no --var authz_url, authz_owner, authz_owner_token and token_reader were given"
                    .into(),
        });
    }
    if has(Profile::Records) && has(Profile::Watch) && has(Profile::Resume) {
        match announced.quiet_heartbeat_ms {
            Some(ms) if (1..=QUIET_HEARTBEAT_MAX_MS).contains(&ms) => {}
            ms => skipped.push(SkippedCheck {
                check: "progress in the heartbeats of a quiet watch",
                requirements: &["TW-POS-8"],
                reason: match ms {
                    Some(ms) => format!(
                        "the quiet_url server announces heartbeat_ms {ms}, outside 1 to {QUIET_HEARTBEAT_MAX_MS}"
                    ),
                    None => "no --var quiet_url names a server that answers with a welcome".into(),
                },
            }),
        }
    }
    if connect_burst(announced).is_none() {
        skipped.push(SkippedCheck {
            check: "connection attempts per client address",
            requirements: &["TW-QUOTA-2"],
            reason: format!(
                "no --var connect_burst_url names a server announcing a connect_rate of at most {CONNECT_BURST_MAX_ATTEMPTS} attempts in a window of {CONNECT_BURST_MIN_WINDOW_MS} to {CONNECT_BURST_MAX_WINDOW_MS} ms: every handshake counts, so a case must first wait out the window"
            ),
        });
    }
    if !announced.liveness_url {
        skipped.push(SkippedCheck {
            check: "liveness pings and the close of a silent peer",
            requirements: &["TW-LIVE-2", "TW-LIVE-3", "TW-LIVE-4"],
            reason:
                "no --var liveness_url names a server with liveness bounds short enough to wait out"
                    .into(),
        });
    }
    if has(Profile::Records) && !announced.libraries_url {
        skipped.push(SkippedCheck {
            check: "endpoints that bind a collection",
            requirements: &["TW-ENDPOINT-1", "TW-ENDPOINT-2", "TW-ENDPOINT-3"],
            reason: "no --var libraries_url was given".into(),
        });
    }
    if has(Profile::Records) && !announced.xerr_url {
        skipped.push(SkippedCheck {
            check: "an application's own error codes",
            requirements: &["TW-XERR-2"],
            reason: "no --var xerr_url names a server whose application refuses some creates"
                .into(),
        });
    }
    if has(Profile::Auth) && has(Profile::Rooms) && !announced.named_token {
        skipped.push(SkippedCheck {
            check: "the display name a token names",
            requirements: &["TW-PRESENCE-2"],
            reason: "no --var token_named and token_named_display_name were given".into(),
        });
    }
    if has(Profile::Auth) && !(announced.auth_required_url && announced.auth_tokens) {
        skipped.push(SkippedCheck {
            check: "auth served in required mode",
            requirements: &["TW-SESSION-10"],
            reason: "no --var auth_required_url and token_admin were given".into(),
        });
    }
    if !announced.shutdown_url {
        skipped.push(SkippedCheck {
            check: "graceful shutdown",
            requirements: &["TW-CORE-33", "TW-END-2"],
            reason: "no --var shutdown_url was given (a server that shuts down once a case has two connections open to it)".into(),
        });
    }
    for (check, requirements, profile, reason) in NOT_GENERATED {
        if Profile::parse(profile).is_some_and(has) {
            skipped.push(SkippedCheck {
                check,
                requirements,
                reason: reason.into(),
            });
        }
    }
    if has(Profile::Topics) && has(Profile::Resume) {
        match announced.topic_retention {
            Some(r) if (1..=TOPIC_RETENTION_MAX).contains(&r) => {}
            retention => skipped.push(SkippedCheck {
                check: "topic recovery at and past the announced retention",
                requirements: &["TW-RECOVER-5", "TW-RECOVER-6"],
                reason: match retention {
                    Some(r) => format!(
                        "the retention_url server announces a topic retention of {r}, outside 1 to {TOPIC_RETENTION_MAX}"
                    ),
                    None => "no --var retention_url names a server announcing welcome.retention.topic".into(),
                },
            }),
        }
        if !announced.second_run {
            skipped.push(SkippedCheck {
                check: "epochs and publication ids across runs",
                requirements: &["TW-POS-6"],
                reason: "no --var second_run_url names another run of the server".into(),
            });
        }
    }
    if has(Profile::Rooms)
        && !announced
            .room_post_rate
            .is_some_and(|r| room_rate_reachable(&r))
    {
        skipped.push(SkippedCheck {
            check: "posts per room",
            requirements: &["TW-QUOTA-3", "TW-QUOTA-4"],
            reason: format!(
                "no --var room_rate_url names a server announcing limits.room_post_rate of at most {ROOM_RATE_MAX_POSTS} posts in a window of at least {ROOM_RATE_MIN_WINDOW_MS} ms"
            ),
        });
    }
    skipped
}

fn floodable(rate: RateLimit) -> bool {
    rate.messages <= FLOOD_MAX_MESSAGES && rate.window_ms >= FLOOD_MIN_WINDOW_MS
}

/// Groups of profiles whose operations meet each other; `core` and `auth`
/// ride along with each, and `resume` with each stream it recovers.
const FOCUS: [&[Profile]; 3] = [
    &[Profile::Records, Profile::Watch, Profile::Resume],
    &[Profile::Topics, Profile::Resume],
    &[Profile::Rooms, Profile::Collab, Profile::Resume],
];

type Sequences = BoxedStrategy<Vec<(usize, Op)>>;

/// Sequences of `(connection, operation)`. Half mix every claimed profile;
/// the other half keep to one group of profiles, so that two members act in
/// one room, or a subscriber meets several writes, within 30 operations
/// instead of spreading them over every profile.
fn focused_sequences(profiles: &[Profile], max_len: usize, announced: Announced) -> Sequences {
    let sequence = |profiles: &[Profile]| {
        proptest::collection::vec((0usize..3, operations(profiles, announced)), 0..=max_len).boxed()
    };
    let focused: Vec<Sequences> = FOCUS
        .iter()
        .filter(|group| profiles.contains(&group[0]))
        .map(|group| {
            let subset: Vec<Profile> = profiles
                .iter()
                .copied()
                .filter(|p| matches!(p, Profile::Core | Profile::Auth) || group.contains(p))
                .collect();
            with_prelude(group, sequence(&subset))
        })
        .collect();
    let mut mixes: Vec<(u32, Sequences)> = vec![(
        u32::try_from(focused.len().max(1)).unwrap_or(1),
        sequence(profiles),
    )];
    mixes.extend(focused.into_iter().map(|s| (1, s)));
    Union::new_weighted(mixes).boxed()
}

/// A focus group's sequence after operations that make the rest meet at
/// once: the connections first join a room or subscribe to a topic, so that
/// posts, typing, history and departures have members to reach, and
/// publications subscribers. The prelude shrinks away like any operation.
fn with_prelude(group: &[Profile], sequence: Sequences) -> Sequences {
    let prelude = match group[0] {
        Profile::Rooms => room_prelude(),
        Profile::Topics => topic_prelude(),
        _ => return sequence,
    };
    (prelude, sequence)
        .prop_map(|(mut actions, rest)| {
            actions.extend(rest);
            actions
        })
        .boxed()
}

/// Mostly two or three members of a room, then a few posts and typing among
/// them: history pages have something to page through, and pushes someone
/// to reach. Each member is optional, so that shrinking drops those a
/// failure does not need.
fn room_prelude() -> Sequences {
    let member = (
        proptest::bool::weighted(0.15),
        proptest::option::weighted(0.5, 0..DISPLAY_NAMES),
    );
    let members = proptest::array::uniform3(proptest::option::weighted(PRELUDE_SHARE, member));
    let act = prop_oneof![
        3 => small().prop_map(|n| Op::Post { room: 0, n }),
        1 => any::<bool>().prop_map(|active| Op::Typing { room: 0, active }),
    ];
    (members, proptest::collection::vec((0usize..3, act), 0..=4))
        .prop_map(|(members, acts)| {
            let joins = members
                .into_iter()
                .enumerate()
                .filter_map(|(conn, member)| {
                    let (observer, display_name) = member?;
                    let join = Op::Join {
                        room: 0,
                        observer,
                        display_name,
                    };
                    Some((conn, join))
                });
            joins.chain(acts).collect()
        })
        .boxed()
}

/// Mostly two or three subscribers of a topic, so that a publication
/// reaches another connection than its publisher's; each optional, as the
/// members of [`room_prelude`].
fn topic_prelude() -> Sequences {
    let filter = proptest::option::weighted(0.3, -3i64..=3);
    proptest::array::uniform3(proptest::option::weighted(PRELUDE_SHARE, filter))
        .prop_map(|subscribers| {
            subscribers
                .into_iter()
                .enumerate()
                .filter_map(|(conn, filter)| {
                    Some((
                        conn,
                        Op::Subscribe {
                            topic: 0,
                            min: filter?,
                        },
                    ))
                })
                .collect()
        })
        .boxed()
}

/// How often each connection starts a focused sequence as a member or a
/// subscriber: two or three of them in nine sequences out of ten.
const PRELUDE_SHARE: f64 = 0.85;

/// Scenarios of one to three connections and one to `max_len` operations
/// (plus, rarely, a wait for a heartbeat).
pub fn scenario(
    profiles: &[Profile],
    max_len: usize,
    announced: Announced,
) -> BoxedStrategy<Scenario> {
    let max_len = max_len.max(1);
    let heartbeat = announced
        .heartbeat_ms
        .filter(|ms| *ms <= HEARTBEAT_MAX_MS)
        .map_or(0.0, |_| HEARTBEAT_SHARE);
    let mut slow_auth: Vec<(u32, Just<Op>)> = Vec::new();
    if profiles.contains(&Profile::Auth) {
        if announced.expiring_token && profiles.contains(&Profile::Topics) {
            slow_auth.push((3, Just(Op::Expiry)));
        }
        if announced.auth_required_url {
            slow_auth.push((1, Just(Op::AuthTimeout)));
        }
    }
    let slow_auth: BoxedStrategy<Option<Op>> = if slow_auth.is_empty() {
        Just(None).boxed()
    } else {
        proptest::option::weighted(SLOW_AUTH_SHARE, Union::new_weighted(slow_auth)).boxed()
    };
    let liveness = if announced.liveness_url {
        LIVENESS_SHARE
    } else {
        0.0
    };
    let connect_rate: BoxedStrategy<Option<Op>> = match connect_burst(announced) {
        Some(rate) => proptest::option::weighted(
            CONNECT_BURST_SHARE,
            Just(Op::ConnectRate {
                attempts: rate.attempts,
                window_ms: rate.window_ms,
            }),
        )
        .boxed(),
        None => Just(None).boxed(),
    };
    (
        proptest::bool::weighted(heartbeat),
        1usize..=3,
        focused_sequences(profiles, max_len, announced),
        slow_auth,
        (proptest::bool::weighted(liveness), connect_rate),
    )
        .prop_map(
            move |(wait, connections, actions, slow_auth, (liveness, connect_rate))| {
                let mut actions: Vec<Action> = actions
                    .into_iter()
                    .map(|(conn, op)| Action {
                        conn: conn % connections,
                        op,
                    })
                    .collect();
                // Only a heartbeat wait may stand alone: the other operations can
                // then shrink away, where every shrinking step costs an interval.
                if actions.is_empty() && !wait {
                    actions.push(Action {
                        conn: 0,
                        op: Op::Ping { payload: 0 },
                    });
                }
                if liveness {
                    actions.insert(
                        0,
                        Action {
                            conn: 0,
                            op: Op::Liveness,
                        },
                    );
                }
                if let Some(op) = connect_rate {
                    actions.insert(0, Action { conn: 0, op });
                }
                // First, as its connection meets no other: where it stands would
                // only give shrinking another dimension.
                if let (true, Some(heartbeat_ms)) = (wait, announced.heartbeat_ms) {
                    actions.insert(
                        0,
                        Action {
                            conn: 0,
                            op: Op::AwaitHeartbeat { heartbeat_ms },
                        },
                    );
                }
                // Before every wait: `jwt_expiring` expires a fixed time after
                // the case starts, and the waits above take seconds together.
                if let Some(op) = slow_auth {
                    actions.insert(0, Action { conn: 0, op });
                }
                Scenario {
                    connections,
                    actions,
                }
            },
        )
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

    /// The first `n` scenarios a runner seeded with `seed` generates for a
    /// server that announces everything a scenario can use.
    fn scenarios(seed: u8, n: usize) -> Vec<Scenario> {
        let announced = Announced {
            heartbeat_ms: Some(1000),
            rate: Some(RateLimit {
                messages: 20,
                window_ms: 1000,
            }),
            narrow_token: true,
            idempotency_window_ms: Some(60_000),
            max_nesting_depth: Some(32),
            max_subscriptions: Some(100),
            limits_server: Some(LimitsServer {
                max_subscriptions: 2,
                rate: Some(RateLimit {
                    messages: 10,
                    window_ms: 1000,
                }),
            }),
            stats_server: true,
            auth_tokens: true,
            expiring_token: true,
            auth_required_url: true,
            hidden_records: true,
            quiet_heartbeat_ms: Some(100),
            topic_retention: Some(3),
            room_post_rate: Some(RateLimit {
                messages: 3,
                window_ms: 60_000,
            }),
            second_run: true,
            liveness_url: true,
            libraries_url: true,
            xerr_url: true,
            named_token: true,
            connect_burst: Some(ConnectRate {
                attempts: 3,
                window_ms: 1000,
            }),
            shutdown_url: true,
        };
        let strategy = scenario(&Profile::ALL, 30, announced);
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
        let mut runner = TestRunner::new_with_rng(Default::default(), rng);
        (0..n)
            .map(|_| {
                strategy
                    .new_tree(&mut runner)
                    .expect("scenarios generate")
                    .current()
            })
            .collect()
    }

    /// The suites of the first `n` scenarios a runner seeded with `seed` generates.
    fn generated(seed: u8, n: usize) -> Vec<Value> {
        scenarios(seed, n)
            .iter()
            .enumerate()
            .map(|(i, scenario)| to_suite(scenario, &format!("t{i}"), "t", "s.json"))
            .collect()
    }

    #[test]
    fn an_expiring_token_is_used_before_any_wait_of_its_case() {
        let waits = |op: &Op| {
            matches!(
                op,
                Op::AwaitHeartbeat { .. } | Op::Liveness | Op::ConnectRate { .. }
            )
        };
        let mut met_waits = 0;
        for scenario in scenarios(5, 400) {
            let ops: Vec<&Op> = scenario.actions.iter().map(|action| &action.op).collect();
            if let Some(expiry) = ops.iter().position(|op| matches!(op, Op::Expiry)) {
                met_waits += ops.iter().filter(|op| waits(op)).count();
                assert!(
                    !ops[..expiry].iter().any(|op| waits(op)),
                    "a wait comes before the expiring token is used: {ops:?}"
                );
            }
        }
        assert!(met_waits > 0, "no case had an expiry and a wait together");
    }

    #[test]
    fn one_seed_generates_one_sequence_of_cases() {
        assert_eq!(generated(7, 20), generated(7, 20));
        assert_ne!(generated(7, 20), generated(8, 20));
    }

    #[test]
    fn a_server_announcing_long_heartbeats_has_the_check_reported_skipped() {
        let announced = Announced {
            heartbeat_ms: Some(30_000),
            ..Announced::default()
        };
        let skipped = skipped_checks(&[Profile::Core], announced);
        let heartbeat = skipped
            .iter()
            .find(|s| s.check == "heartbeat timing")
            .expect("the heartbeat check is skipped");
        assert!(heartbeat.reason.contains("30000"), "{}", heartbeat.reason);
        assert!(skipped.iter().any(|s| s.requirements == ["TW-LIMIT-2"]));
    }

    #[test]
    fn the_shutdown_is_skipped_without_a_server_to_shut_down_and_holds_what_the_profiles_can() {
        let shutdown_skipped = |announced: Announced| {
            skipped_checks(&[Profile::Core], announced)
                .iter()
                .any(|s| s.check == "graceful shutdown")
        };
        assert!(shutdown_skipped(Announced::default()));
        assert!(!shutdown_skipped(Announced {
            shutdown_url: true,
            ..Announced::default()
        }));
        let mut runner = TestRunner::new_with_rng(
            proptest::test_runner::Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &[3; 32]),
        );
        for _ in 0..50 {
            let scenario = shutdown(&[Profile::Core, Profile::Topics])
                .new_tree(&mut runner)
                .expect("shutdowns generate")
                .current();
            let [Action {
                op: Op::Shutdown { held },
                ..
            }] = scenario.actions.as_slice()
            else {
                panic!("one shutdown: {scenario:?}");
            };
            assert_eq!((held.watches, held.rooms), (0, 0), "{held:?}");
        }
    }
}
