//! A catalogue of named, deterministic faults, for showing that a client or a
//! conformance suite notices a broken server.
//!
//! Each [`InjectedFault`] has a stable kebab-case name (`drop-event`, ...)
//! used by `tidewire-server --fault NAME` and `tidewire-conform run --embedded
//! --inject-fault NAME`. Faults that only change what is written go through an
//! [`OutboundFilter`]; faults that need the server to decide differently set a
//! switch in [`Faults`]. Every fault applies to every connection and involves
//! no randomness, so a run with a fault is reproducible.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use tidewire_protocol::{
    decode_client_message, ClientMessage, DecodeError, ErrorCode, RequestId, ServerMessage,
    MAX_INTEGER, MAX_VECTOR_COMPONENT,
};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::config::{Config, Faults};
use crate::hooks::{OutboundFilter, Outgoing};
use crate::http::Upgrade;

/// One deliberate misbehaviour of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InjectedFault {
    /// The second event (`change` or `publication`) of every subscription is never sent.
    DropEvent,
    /// The first event of every subscription is sent twice.
    DuplicateEvent,
    /// The first two events of every subscription are sent in swapped order.
    ReorderEvents,
    /// Every reply after a connection's first carries the id of the request before it.
    WrongReplyId,
    /// `created` replies lack `record`, which the schema requires.
    OmitRequiredField,
    /// Error replies carry the registry code after the right one.
    WrongErrorCode,
    /// No `heartbeat` is ever sent.
    SkipHeartbeat,
    /// The rate limit is announced in `welcome` but not enforced.
    IgnoreRateLimit,
    /// Watch and topic subscriptions ignore their `filter` (and `pipeline`).
    LeakAcrossFilter,
    /// Requests are checked against no scopes: everything is allowed.
    LeakAcrossScope,
    /// An `edit` naming a stale version is applied to the current document.
    AcceptStaleEdit,
    /// A member whose connection drops stays in its rooms, with no `presence` left.
    KeepDroppedMember,
    /// Only every third `heartbeat` is sent: an idle connection hears one
    /// every three announced intervals.
    LateHeartbeat,
    /// `publication.message_id` differs from the publisher's `published`.
    PublicationIdMismatch,
    /// `publication.published_at` differs from the publisher's `published`.
    PublicationTimeMismatch,
    /// `room_message.message.message_id` differs from the author's `posted`.
    RoomMessageIdMismatch,
    /// `room_message.message.sent_at` differs from the author's `posted`.
    SentAtMismatch,
    /// Timestamps are written without their `Z`, so they name no instant.
    ZonelessTimestamps,
    /// A member whose connection dropped is reported with reason `left`.
    WrongLeaveReason,
    /// `history_page.has_more` is always false.
    HistoryNeverHasMore,
    /// Every `history_page` lacks its oldest message.
    HistoryDropsOldest,
    /// Every message of every room is written with one and the same `message_id`.
    ConstantMessageIds,
    /// `typing` pushes carry the opposite of the typist's `active`.
    InvertedTyping,
    /// `history_page.has_more` is always true.
    HistoryAlwaysHasMore,
    /// `history_page` lists its messages newest first.
    HistoryNewestFirst,
    /// A `presence` of a member that left carries no `reason`.
    PresenceWithoutReason,
    /// Observers are listed and announced with the role `participant`.
    ObserverAsParticipant,
    /// Member objects lack the `display_name` and `metadata` of the member's `join`.
    DropMemberInfo,
    /// A `join` without `display_name` does not take the token's display name.
    IgnoreTokenName,
    /// A `join` whose display name or metadata exceeds its bound joins without them.
    AcceptOversizedMemberInfo,
    /// Pushes carry no `server_time`.
    PushWithoutTime,
    /// `stats.server.connections_total` reports the open connections.
    TotalIsCurrent,
    /// `stats.server.limits` announces one more subscription than the welcome.
    StatsLimitsDiffer,
    /// The connection rate per client address is announced but not enforced.
    IgnoreConnectRate,
    /// The post rate per room is announced but not enforced.
    IgnoreRoomPostRate,
    /// Errors carry no `retry`.
    ErrorWithoutRetry,
    /// Application error codes lose their `x-` prefix.
    UnprefixedExtensionCode,
    /// Integer members written `10.0`, `1E1` or `-0` are refused with `invalid_message`.
    StrictIntegers,
    /// `null` for an optional member that is not a plain option (`read.sort`,
    /// `update.set`, `watch.full_document`, `join.role`, ...) is refused.
    NullNotAbsent,
    /// `read.limit` and `read.offset` above 2^53 - 1 are read as 2^53 - 1 instead of refused.
    UnboundedIntegers,
    /// An `edit` with no operations is applied, as an edit that changes nothing.
    EmptyEditApplied,
    /// `welcome` announces `heartbeat_ms` 0 and `limits.max_subscriptions` 0.
    ZeroAnnounced,
    /// `error.details.path` is written as an array of segments instead of a string.
    UntypedErrorDetails,
    /// A request carrying an extension (`x-`) member, at the top or in a sort key,
    /// is refused with `invalid_message`.
    RefuseExtensionMembers,
    /// An offer of `permessage-deflate` without `client_max_window_bits` is answered
    /// with `client_max_window_bits=10`, which RFC 7692 forbids.
    UnofferedDeflateParameter,
    /// `search` results come worst first.
    SearchUnranked,
    /// A `cosine` search is scored by the dot product.
    SearchCosineAsDot,
    /// A `search` ranks every record with a vector, whatever its filter.
    SearchIgnoresFilter,
    /// A `search` whose `k` is out of range is answered instead of refused.
    SearchAcceptsAnyK,
    /// A `search` passes over stored vectors of another dimension instead of refusing.
    SearchSkipsOtherDimensions,
    /// Every `search` leaves out the nearest record.
    SearchMissesNearest,
    /// Watch filters on paths no change event has are accepted and match nothing.
    AcceptUnmatchablePaths,
    /// A `welcome` on a bound endpoint does not say what it binds.
    WelcomeWithoutBound,
    /// Requests on a bound endpoint may name another database or collection.
    BoundNamesUnchecked,
    /// Requests on a bound endpoint must name the bound database and collection anyway.
    BoundNamesRequired,
    /// On the main endpoint, an omitted database or collection reads as `default`.
    UnboundNamesDefaulted,
    /// A `view` watch hears nothing of records that leave its selection.
    ViewDropsLeaves,
    /// An update that brings a record into a `view` is labelled `stay`.
    ViewMislabelsEntry,
    /// `leave` events of a `view` lack the record before the change.
    ViewWithoutPreImage,
    /// Changes of watches without `view` are labelled as if they had it.
    ViewLabelsPlainWatch,
    /// Re-authentication with narrower scopes keeps every stream and says nothing.
    EndSilentlyOnNarrowing,
    /// An `ended` stream goes on: pushes continue and `unsubscribe` succeeds.
    EndedKeepsSubscription,
    /// A close for shutdown, expiry or a slow consumer sends no `ended`.
    EndSilentlyOnClose,
    /// `ended` pushes of watches lack `resume_token` and `position`.
    EndedWithoutPosition,
    /// Streams that narrower scopes no longer allow end without an `ended`.
    EndsWithoutTelling,
    /// Idempotency keys are ignored: a repeated write applies again.
    IgnoreIdempotencyKeys,
    /// A key used for another request is applied as a new write instead of a conflict.
    AcceptReusedKeys,
    /// Change events lack `origin`.
    OmitOrigin,
    /// An auth timeout, a refused origin and rate abuse all close with 1008, as one policy code.
    SharedPolicyClose,
    /// The rate-abuse close reason states no `retry_after_ms`.
    CloseWithoutDelay,
    /// A frame that breaks RFC 6455 drops the TCP connection without a close frame.
    DropOnProtocolError,
    /// A client's close frame is not answered: the socket is dropped at once.
    NoCloseReply,
    /// No liveness ping is sent and no silent peer is closed.
    NeverPing,
    /// Messages are sent whole, longer than the `max_message_bytes` the client stated.
    IgnoreClientMax,
    /// A server in `required` mode does not list (or serve) `auth`.
    RequiredWithoutAuth,
    /// `welcome.auth` lacks the connection's scopes and expiry.
    BareWelcomeAuth,
    /// No `token_expiring` notice precedes a token's expiry.
    SilentExpiry,
    /// Only data frames count as signs of life: Pong answers to the liveness Ping are not.
    DeafToPongs,
    /// Malformed session parameters are ignored instead of refused.
    LaxSessionParams,
    /// `welcome.session.features` lists every feature the client stated, supported or not.
    SessionEchoesAllFeatures,
    /// Every message to a client that stated `max_message_bytes` is sent in parts, short ones too.
    PartsAlways,
    /// `welcome.features` is left out.
    NoFeatures,
    /// `welcome.auth.expiry_notice_ms` is left out.
    UnannouncedNoticeLead,
    /// `records.position` names the commit before the one the read reflects, so a watch from it repeats a change.
    ReadPositionBehind,
    /// A `watch` with both `resume_after` and `start_after` is accepted, by its token.
    BothResumeForms,
    /// Journal positions of any epoch are honoured as if they were of the current one.
    IgnorePositionEpoch,
    /// Every run starts its streams in one fixed epoch: positions and message ids repeat across runs.
    FixedEpoch,
    /// Heartbeats carry no `progress`.
    NoHeartbeatProgress,
    /// Every position is written with `seq` 0.
    ConstantPositions,
    /// `publication.position` differs from the publisher's `published`.
    PublicationPositionMismatch,
    /// A resumed topic subscription replays from the publication at `start_after`, not after it.
    TopicReplayFromPosition,
    /// Topic positions followed by publications no longer kept are honoured, leaving a gap.
    TopicRecoverBeyondRetention,
    /// `welcome.retention` announces one entry more of each stream than is kept.
    RetentionOverstated,
    /// `room_message.message.position` differs from the author's `posted`.
    RoomMessagePositionMismatch,
    /// A resumed room membership replays from the message at `start_after`, not after it.
    RoomReplayFromPosition,
    /// Room positions of any epoch, beyond the head or aged out are honoured.
    RoomAcceptsAnyPosition,
    /// `history` with `after_position` includes the message at the position.
    HistoryAfterInclusive,
    /// Forward `history` pages (after a position or time) always say `has_more` false.
    ForwardHistoryNeverHasMore,
    /// `document.position` names the version before the one read.
    DocumentPositionBehind,
    /// `records.total` counts the matching records hidden from the principal too.
    CountHiddenRecords,
    /// Watches deliver the changes of records hidden from their principal.
    LeakHiddenChange,
    /// An update that hides a record from a watch's principal is not reported.
    HideWithoutDelete,
    /// An update that reveals a record to a watch's principal is an update event.
    RevealAsUpdate,
    /// `read` by `record_id` returns a record hidden from the principal.
    ReadHiddenById,
    /// A repeated `post` with its idempotency key posts again.
    IgnorePostKeys,
    /// A repeated `edit` with its idempotency key is treated as a new edit.
    IgnoreEditKeys,
    /// Room messages lack `origin`.
    OmitPostOrigin,
    /// `document_edit` pushes lack `origin`.
    OmitEditOrigin,
    /// The `welcome` lacks `liveness`.
    OmitLiveness,
    /// A `search` vector component beyond the bound is clamped to it instead of refused.
    ClampVectorComponents,
    /// A binary frame closes the connection with 1007, the code of invalid UTF-8.
    BinaryClosesInvalidPayload,
    /// `stats` counts `messages_in` without the `get_stats` frame it answers.
    StatsOmitOwnRequest,
    /// A frame one level deeper than `max_nesting_depth` is still decoded.
    NestingOneDeeper,
    /// An error for a missing or non-string `type` leaves out the frame's readable `id`.
    TypeErrorWithoutId,
    /// A connection is granted one subscription more than `max_subscriptions`.
    SubscriptionCapOneOver,
    /// Rate abuse closes a connection only beyond three times the rate, not twice.
    AbuseAtThreeTimes,
    /// `stats.server.subscriptions` counts watches only, not topic subscriptions.
    StatsForgetTopicSubscriptions,
    /// Re-authentication reports the new token's scopes but keeps acting with the old ones.
    ReauthKeepsScopes,
    /// A resumed watch leaves out the first change it should replay.
    ResumeSkipsFirst,
}

/// A name that is no fault of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {name:?} (known: {})", InjectedFault::names().join(", "))]
pub struct UnknownFault {
    pub name: String,
}

impl InjectedFault {
    /// Every fault of the catalogue, in a fixed order.
    pub const ALL: &'static [InjectedFault] = &[
        InjectedFault::DropEvent,
        InjectedFault::DuplicateEvent,
        InjectedFault::ReorderEvents,
        InjectedFault::WrongReplyId,
        InjectedFault::OmitRequiredField,
        InjectedFault::WrongErrorCode,
        InjectedFault::SkipHeartbeat,
        InjectedFault::IgnoreRateLimit,
        InjectedFault::LeakAcrossFilter,
        InjectedFault::LeakAcrossScope,
        InjectedFault::AcceptStaleEdit,
        InjectedFault::KeepDroppedMember,
        InjectedFault::LateHeartbeat,
        InjectedFault::PublicationIdMismatch,
        InjectedFault::PublicationTimeMismatch,
        InjectedFault::RoomMessageIdMismatch,
        InjectedFault::SentAtMismatch,
        InjectedFault::ZonelessTimestamps,
        InjectedFault::WrongLeaveReason,
        InjectedFault::HistoryNeverHasMore,
        InjectedFault::HistoryDropsOldest,
        InjectedFault::ConstantMessageIds,
        InjectedFault::InvertedTyping,
        InjectedFault::HistoryAlwaysHasMore,
        InjectedFault::HistoryNewestFirst,
        InjectedFault::PresenceWithoutReason,
        InjectedFault::ObserverAsParticipant,
        InjectedFault::DropMemberInfo,
        InjectedFault::IgnoreTokenName,
        InjectedFault::AcceptOversizedMemberInfo,
        InjectedFault::PushWithoutTime,
        InjectedFault::TotalIsCurrent,
        InjectedFault::StatsLimitsDiffer,
        InjectedFault::IgnoreConnectRate,
        InjectedFault::IgnoreRoomPostRate,
        InjectedFault::ErrorWithoutRetry,
        InjectedFault::UnprefixedExtensionCode,
        InjectedFault::StrictIntegers,
        InjectedFault::NullNotAbsent,
        InjectedFault::UnboundedIntegers,
        InjectedFault::EmptyEditApplied,
        InjectedFault::ZeroAnnounced,
        InjectedFault::UntypedErrorDetails,
        InjectedFault::RefuseExtensionMembers,
        InjectedFault::UnofferedDeflateParameter,
        InjectedFault::SearchUnranked,
        InjectedFault::SearchCosineAsDot,
        InjectedFault::SearchIgnoresFilter,
        InjectedFault::SearchAcceptsAnyK,
        InjectedFault::SearchSkipsOtherDimensions,
        InjectedFault::SearchMissesNearest,
        InjectedFault::AcceptUnmatchablePaths,
        InjectedFault::WelcomeWithoutBound,
        InjectedFault::BoundNamesUnchecked,
        InjectedFault::BoundNamesRequired,
        InjectedFault::UnboundNamesDefaulted,
        InjectedFault::ViewDropsLeaves,
        InjectedFault::ViewMislabelsEntry,
        InjectedFault::ViewWithoutPreImage,
        InjectedFault::ViewLabelsPlainWatch,
        InjectedFault::EndSilentlyOnNarrowing,
        InjectedFault::EndedKeepsSubscription,
        InjectedFault::EndSilentlyOnClose,
        InjectedFault::EndedWithoutPosition,
        InjectedFault::EndsWithoutTelling,
        InjectedFault::IgnoreIdempotencyKeys,
        InjectedFault::AcceptReusedKeys,
        InjectedFault::OmitOrigin,
        InjectedFault::SharedPolicyClose,
        InjectedFault::CloseWithoutDelay,
        InjectedFault::DropOnProtocolError,
        InjectedFault::NoCloseReply,
        InjectedFault::NeverPing,
        InjectedFault::IgnoreClientMax,
        InjectedFault::RequiredWithoutAuth,
        InjectedFault::BareWelcomeAuth,
        InjectedFault::SilentExpiry,
        InjectedFault::DeafToPongs,
        InjectedFault::LaxSessionParams,
        InjectedFault::SessionEchoesAllFeatures,
        InjectedFault::PartsAlways,
        InjectedFault::NoFeatures,
        InjectedFault::UnannouncedNoticeLead,
        InjectedFault::ReadPositionBehind,
        InjectedFault::BothResumeForms,
        InjectedFault::IgnorePositionEpoch,
        InjectedFault::FixedEpoch,
        InjectedFault::NoHeartbeatProgress,
        InjectedFault::ConstantPositions,
        InjectedFault::PublicationPositionMismatch,
        InjectedFault::TopicReplayFromPosition,
        InjectedFault::TopicRecoverBeyondRetention,
        InjectedFault::RetentionOverstated,
        InjectedFault::RoomMessagePositionMismatch,
        InjectedFault::RoomReplayFromPosition,
        InjectedFault::RoomAcceptsAnyPosition,
        InjectedFault::HistoryAfterInclusive,
        InjectedFault::ForwardHistoryNeverHasMore,
        InjectedFault::DocumentPositionBehind,
        InjectedFault::CountHiddenRecords,
        InjectedFault::LeakHiddenChange,
        InjectedFault::HideWithoutDelete,
        InjectedFault::RevealAsUpdate,
        InjectedFault::ReadHiddenById,
        InjectedFault::IgnorePostKeys,
        InjectedFault::IgnoreEditKeys,
        InjectedFault::OmitPostOrigin,
        InjectedFault::OmitEditOrigin,
        InjectedFault::OmitLiveness,
        InjectedFault::ClampVectorComponents,
        InjectedFault::BinaryClosesInvalidPayload,
        InjectedFault::StatsOmitOwnRequest,
        InjectedFault::NestingOneDeeper,
        InjectedFault::TypeErrorWithoutId,
        InjectedFault::SubscriptionCapOneOver,
        InjectedFault::AbuseAtThreeTimes,
        InjectedFault::StatsForgetTopicSubscriptions,
        InjectedFault::ReauthKeepsScopes,
        InjectedFault::ResumeSkipsFirst,
    ];

    /// The stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            InjectedFault::DropEvent => "drop-event",
            InjectedFault::DuplicateEvent => "duplicate-event",
            InjectedFault::ReorderEvents => "reorder-events",
            InjectedFault::WrongReplyId => "wrong-reply-id",
            InjectedFault::OmitRequiredField => "omit-required-field",
            InjectedFault::WrongErrorCode => "wrong-error-code",
            InjectedFault::SkipHeartbeat => "skip-heartbeat",
            InjectedFault::IgnoreRateLimit => "ignore-rate-limit",
            InjectedFault::LeakAcrossFilter => "leak-across-filter",
            InjectedFault::LeakAcrossScope => "leak-across-scope",
            InjectedFault::AcceptStaleEdit => "accept-stale-edit",
            InjectedFault::KeepDroppedMember => "keep-dropped-member",
            InjectedFault::LateHeartbeat => "late-heartbeat",
            InjectedFault::PublicationIdMismatch => "publication-id-mismatch",
            InjectedFault::PublicationTimeMismatch => "publication-time-mismatch",
            InjectedFault::RoomMessageIdMismatch => "room-message-id-mismatch",
            InjectedFault::SentAtMismatch => "sent-at-mismatch",
            InjectedFault::ZonelessTimestamps => "zoneless-timestamps",
            InjectedFault::WrongLeaveReason => "wrong-leave-reason",
            InjectedFault::HistoryNeverHasMore => "history-never-has-more",
            InjectedFault::HistoryDropsOldest => "history-drops-oldest",
            InjectedFault::ConstantMessageIds => "constant-message-ids",
            InjectedFault::InvertedTyping => "inverted-typing",
            InjectedFault::HistoryAlwaysHasMore => "history-always-has-more",
            InjectedFault::HistoryNewestFirst => "history-newest-first",
            InjectedFault::PresenceWithoutReason => "presence-without-reason",
            InjectedFault::ObserverAsParticipant => "observer-as-participant",
            InjectedFault::DropMemberInfo => "drop-member-info",
            InjectedFault::IgnoreTokenName => "ignore-token-name",
            InjectedFault::AcceptOversizedMemberInfo => "accept-oversized-member-info",
            InjectedFault::PushWithoutTime => "push-without-time",
            InjectedFault::TotalIsCurrent => "total-is-current",
            InjectedFault::StatsLimitsDiffer => "stats-limits-differ",
            InjectedFault::IgnoreConnectRate => "ignore-connect-rate",
            InjectedFault::IgnoreRoomPostRate => "ignore-room-post-rate",
            InjectedFault::ErrorWithoutRetry => "error-without-retry",
            InjectedFault::UnprefixedExtensionCode => "unprefixed-extension-code",
            InjectedFault::StrictIntegers => "strict-integers",
            InjectedFault::NullNotAbsent => "null-not-absent",
            InjectedFault::UnboundedIntegers => "unbounded-integers",
            InjectedFault::EmptyEditApplied => "empty-edit-applied",
            InjectedFault::ZeroAnnounced => "zero-announced",
            InjectedFault::UntypedErrorDetails => "untyped-error-details",
            InjectedFault::RefuseExtensionMembers => "refuse-extension-members",
            InjectedFault::UnofferedDeflateParameter => "unoffered-deflate-parameter",
            InjectedFault::SearchUnranked => "search-unranked",
            InjectedFault::SearchCosineAsDot => "search-cosine-as-dot",
            InjectedFault::SearchIgnoresFilter => "search-ignores-filter",
            InjectedFault::SearchAcceptsAnyK => "search-accepts-any-k",
            InjectedFault::SearchSkipsOtherDimensions => "search-skips-other-dimensions",
            InjectedFault::SearchMissesNearest => "search-misses-nearest",
            InjectedFault::AcceptUnmatchablePaths => "accept-unmatchable-paths",
            InjectedFault::WelcomeWithoutBound => "welcome-without-bound",
            InjectedFault::BoundNamesUnchecked => "bound-names-unchecked",
            InjectedFault::BoundNamesRequired => "bound-names-required",
            InjectedFault::UnboundNamesDefaulted => "unbound-names-defaulted",
            InjectedFault::ViewDropsLeaves => "view-drops-leaves",
            InjectedFault::ViewMislabelsEntry => "view-mislabels-entry",
            InjectedFault::ViewWithoutPreImage => "view-without-pre-image",
            InjectedFault::ViewLabelsPlainWatch => "view-labels-plain-watch",
            InjectedFault::EndSilentlyOnNarrowing => "end-silently-on-narrowing",
            InjectedFault::EndedKeepsSubscription => "ended-keeps-subscription",
            InjectedFault::EndSilentlyOnClose => "end-silently-on-close",
            InjectedFault::EndedWithoutPosition => "ended-without-position",
            InjectedFault::EndsWithoutTelling => "ends-without-telling",
            InjectedFault::IgnoreIdempotencyKeys => "ignore-idempotency-keys",
            InjectedFault::AcceptReusedKeys => "accept-reused-keys",
            InjectedFault::OmitOrigin => "omit-origin",
            InjectedFault::SharedPolicyClose => "shared-policy-close",
            InjectedFault::CloseWithoutDelay => "close-without-delay",
            InjectedFault::DropOnProtocolError => "drop-on-protocol-error",
            InjectedFault::NoCloseReply => "no-close-reply",
            InjectedFault::NeverPing => "never-ping",
            InjectedFault::IgnoreClientMax => "ignore-client-max",
            InjectedFault::RequiredWithoutAuth => "required-without-auth",
            InjectedFault::BareWelcomeAuth => "bare-welcome-auth",
            InjectedFault::SilentExpiry => "silent-expiry",
            InjectedFault::DeafToPongs => "deaf-to-pongs",
            InjectedFault::LaxSessionParams => "lax-session-params",
            InjectedFault::SessionEchoesAllFeatures => "session-echoes-all-features",
            InjectedFault::PartsAlways => "parts-always",
            InjectedFault::NoFeatures => "no-features",
            InjectedFault::UnannouncedNoticeLead => "unannounced-notice-lead",
            InjectedFault::ReadPositionBehind => "read-position-behind",
            InjectedFault::BothResumeForms => "both-resume-forms",
            InjectedFault::IgnorePositionEpoch => "ignore-position-epoch",
            InjectedFault::FixedEpoch => "fixed-epoch",
            InjectedFault::NoHeartbeatProgress => "no-heartbeat-progress",
            InjectedFault::ConstantPositions => "constant-positions",
            InjectedFault::PublicationPositionMismatch => "publication-position-mismatch",
            InjectedFault::TopicReplayFromPosition => "topic-replay-from-position",
            InjectedFault::TopicRecoverBeyondRetention => "topic-recover-beyond-retention",
            InjectedFault::RetentionOverstated => "retention-overstated",
            InjectedFault::RoomMessagePositionMismatch => "room-message-position-mismatch",
            InjectedFault::RoomReplayFromPosition => "room-replay-from-position",
            InjectedFault::RoomAcceptsAnyPosition => "room-accepts-any-position",
            InjectedFault::HistoryAfterInclusive => "history-after-inclusive",
            InjectedFault::ForwardHistoryNeverHasMore => "forward-history-never-has-more",
            InjectedFault::DocumentPositionBehind => "document-position-behind",
            InjectedFault::CountHiddenRecords => "count-hidden-records",
            InjectedFault::LeakHiddenChange => "leak-hidden-change",
            InjectedFault::HideWithoutDelete => "hide-without-delete",
            InjectedFault::RevealAsUpdate => "reveal-as-update",
            InjectedFault::ReadHiddenById => "read-hidden-by-id",
            InjectedFault::IgnorePostKeys => "ignore-post-keys",
            InjectedFault::IgnoreEditKeys => "ignore-edit-keys",
            InjectedFault::OmitPostOrigin => "omit-post-origin",
            InjectedFault::OmitEditOrigin => "omit-edit-origin",
            InjectedFault::OmitLiveness => "omit-liveness",
            InjectedFault::ClampVectorComponents => "clamp-vector-components",
            InjectedFault::BinaryClosesInvalidPayload => "binary-closes-invalid-payload",
            InjectedFault::StatsOmitOwnRequest => "stats-omit-own-request",
            InjectedFault::NestingOneDeeper => "nesting-one-deeper",
            InjectedFault::TypeErrorWithoutId => "type-error-without-id",
            InjectedFault::SubscriptionCapOneOver => "subscription-cap-one-over",
            InjectedFault::AbuseAtThreeTimes => "abuse-at-three-times",
            InjectedFault::StatsForgetTopicSubscriptions => "stats-forget-topic-subscriptions",
            InjectedFault::ReauthKeepsScopes => "reauth-keeps-scopes",
            InjectedFault::ResumeSkipsFirst => "resume-skips-first",
        }
    }

    /// One line saying what the server does wrong.
    pub fn description(self) -> &'static str {
        match self {
            InjectedFault::DropEvent => {
                "the second change/publication of every subscription is not sent"
            }
            InjectedFault::DuplicateEvent => {
                "the first change/publication of every subscription is sent twice"
            }
            InjectedFault::ReorderEvents => {
                "the first two changes/publications of every subscription arrive swapped"
            }
            InjectedFault::WrongReplyId => {
                "each reply after a connection's first carries the previous request's id"
            }
            InjectedFault::OmitRequiredField => "`created` replies lack the required `record`",
            InjectedFault::WrongErrorCode => {
                "error replies carry the next registry code instead of the right one"
            }
            InjectedFault::SkipHeartbeat => "no heartbeat is ever sent",
            InjectedFault::IgnoreRateLimit => "the announced rate limit is not enforced",
            InjectedFault::LeakAcrossFilter => {
                "watch and topic subscriptions receive events their filter excludes"
            }
            InjectedFault::LeakAcrossScope => "requests are allowed whatever the scopes say",
            InjectedFault::AcceptStaleEdit => {
                "an edit against a stale version is applied instead of a conflict"
            }
            InjectedFault::KeepDroppedMember => {
                "a member whose connection drops stays listed, with no presence left"
            }
            InjectedFault::LateHeartbeat => {
                "an idle connection hears a heartbeat every third interval"
            }
            InjectedFault::PublicationIdMismatch => {
                "publications carry another message_id than the publisher's published"
            }
            InjectedFault::PublicationTimeMismatch => {
                "publications carry another published_at than the publisher's published"
            }
            InjectedFault::RoomMessageIdMismatch => {
                "room messages carry another message_id than the author's posted"
            }
            InjectedFault::SentAtMismatch => {
                "room messages carry another sent_at than the author's posted"
            }
            InjectedFault::ZonelessTimestamps => "timestamps lack their Z (UTC) designator",
            InjectedFault::WrongLeaveReason => {
                "a member whose connection dropped is reported as having left"
            }
            InjectedFault::HistoryNeverHasMore => "history pages always say has_more false",
            InjectedFault::HistoryDropsOldest => "history pages lack their oldest message",
            InjectedFault::ConstantMessageIds => "every room message has the same message_id",
            InjectedFault::InvertedTyping => "typing pushes carry the opposite active",
            InjectedFault::HistoryAlwaysHasMore => "history pages always say has_more true",
            InjectedFault::HistoryNewestFirst => "history pages list their messages newest first",
            InjectedFault::PresenceWithoutReason => {
                "presence of a departed member lacks its reason"
            }
            InjectedFault::ObserverAsParticipant => "observers are listed as participants",
            InjectedFault::DropMemberInfo => {
                "members are shown without their display name and metadata"
            }
            InjectedFault::IgnoreTokenName => "a join without display_name ignores the token's",
            InjectedFault::AcceptOversizedMemberInfo => {
                "a join over the display name or metadata bound joins without them"
            }
            InjectedFault::PushWithoutTime => "pushes carry no server_time",
            InjectedFault::TotalIsCurrent => "stats report the open connections as the total",
            InjectedFault::StatsLimitsDiffer => {
                "stats report another max_subscriptions than the welcome"
            }
            InjectedFault::IgnoreConnectRate => {
                "the connection rate per address is announced but not enforced"
            }
            InjectedFault::IgnoreRoomPostRate => {
                "the post rate per room is announced but not enforced"
            }
            InjectedFault::ErrorWithoutRetry => "errors carry no retry class",
            InjectedFault::UnprefixedExtensionCode => {
                "application error codes are sent without their x- prefix"
            }
            InjectedFault::StrictIntegers => "integers written 10.0, 1E1 or -0 are refused",
            InjectedFault::NullNotAbsent => {
                "null for sort, set, unset, full_document or role is refused"
            }
            InjectedFault::UnboundedIntegers => {
                "read limits and offsets past 2^53-1 are clamped instead of refused"
            }
            InjectedFault::EmptyEditApplied => "an edit with no operations is applied",
            InjectedFault::ZeroAnnounced => {
                "welcome announces heartbeat_ms 0 and max_subscriptions 0"
            }
            InjectedFault::UntypedErrorDetails => "error details.path is an array, not a string",
            InjectedFault::RefuseExtensionMembers => "requests with x- members are refused",
            InjectedFault::UnofferedDeflateParameter => {
                "a permessage-deflate offer is answered with a parameter it did not offer"
            }
            InjectedFault::SearchUnranked => "search results come worst first",
            InjectedFault::SearchCosineAsDot => "cosine searches are scored by the dot product",
            InjectedFault::SearchIgnoresFilter => "searches rank records their filter excludes",
            InjectedFault::SearchAcceptsAnyK => "a search with k out of range is answered",
            InjectedFault::SearchSkipsOtherDimensions => {
                "vectors of another dimension are passed over instead of refused"
            }
            InjectedFault::SearchMissesNearest => "searches leave out the nearest record",
            InjectedFault::AcceptUnmatchablePaths => {
                "watch filters on paths no change event has are accepted"
            }
            InjectedFault::WelcomeWithoutBound => "welcome on a bound endpoint lacks `bound`",
            InjectedFault::BoundNamesUnchecked => {
                "requests on a bound endpoint may name other databases and collections"
            }
            InjectedFault::BoundNamesRequired => {
                "requests on a bound endpoint must name the bound database and collection"
            }
            InjectedFault::UnboundNamesDefaulted => {
                "an omitted database or collection on the main endpoint reads as `default`"
            }
            InjectedFault::ViewDropsLeaves => "records leaving a live view are not reported",
            InjectedFault::ViewMislabelsEntry => {
                "an update bringing a record into a live view is labelled stay"
            }
            InjectedFault::ViewWithoutPreImage => {
                "leave events of a live view lack the record before the change"
            }
            InjectedFault::ViewLabelsPlainWatch => {
                "changes of watches without view carry a view label"
            }
            InjectedFault::EndSilentlyOnNarrowing => {
                "narrower scopes keep every subscription and membership, silently"
            }
            InjectedFault::EndedKeepsSubscription => {
                "an ended subscription or membership goes on as if it were live"
            }
            InjectedFault::EndSilentlyOnClose => {
                "closes for shutdown, expiry or a slow consumer send no ended"
            }
            InjectedFault::EndedWithoutPosition => "ended watches carry no position",
            InjectedFault::EndsWithoutTelling => {
                "narrower scopes end subscriptions and memberships without an ended"
            }
            InjectedFault::IgnoreIdempotencyKeys => "a repeated write with its key applies again",
            InjectedFault::AcceptReusedKeys => {
                "a key reused for another request is applied instead of a conflict"
            }
            InjectedFault::OmitOrigin => "change events lack their origin",
            InjectedFault::SharedPolicyClose => {
                "auth timeouts, refused origins and rate abuse all close with 1008"
            }
            InjectedFault::CloseWithoutDelay => "the rate-abuse close reason lacks retry_after_ms",
            InjectedFault::DropOnProtocolError => {
                "a frame that breaks RFC 6455 drops TCP without a close frame"
            }
            InjectedFault::NoCloseReply => "a client's close frame is never answered",
            InjectedFault::NeverPing => "silent peers are never pinged nor closed",
            InjectedFault::IgnoreClientMax => {
                "messages longer than the client's max_message_bytes are sent whole"
            }
            InjectedFault::RequiredWithoutAuth => "a required-mode server does not list auth",
            InjectedFault::BareWelcomeAuth => "welcome.auth lacks scopes and expiry",
            InjectedFault::SilentExpiry => "no token_expiring notice is sent",
            InjectedFault::DeafToPongs => "pong answers do not count as signs of life",
            InjectedFault::LaxSessionParams => "malformed session parameters are accepted",
            InjectedFault::SessionEchoesAllFeatures => {
                "welcome.session lists features the server does not support"
            }
            InjectedFault::PartsAlways => "short messages are sent in parts as well",
            InjectedFault::NoFeatures => "welcome.features is left out",
            InjectedFault::UnannouncedNoticeLead => "welcome.auth lacks expiry_notice_ms",
            InjectedFault::ReadPositionBehind => {
                "`records.position` names the commit before the last one the read reflects"
            }
            InjectedFault::BothResumeForms => {
                "`watch` with both `resume_after` and `start_after` is accepted"
            }
            InjectedFault::IgnorePositionEpoch => "journal positions of another epoch are honoured",
            InjectedFault::FixedEpoch => {
                "every run starts in the same epoch, so ids and positions repeat across runs"
            }
            InjectedFault::NoHeartbeatProgress => "heartbeats carry no progress",
            InjectedFault::ConstantPositions => "every `seq` of a position is written as 0",
            InjectedFault::PublicationPositionMismatch => {
                "publications carry another position than the publisher's published"
            }
            InjectedFault::TopicReplayFromPosition => {
                "a resumed topic subscription replays the publication at its position again"
            }
            InjectedFault::TopicRecoverBeyondRetention => {
                "topic positions whose publications are gone still recover, with a gap"
            }
            InjectedFault::RetentionOverstated => {
                "welcome announces one more entry of retention than is kept"
            }
            InjectedFault::RoomMessagePositionMismatch => {
                "room messages carry another position than the author's posted"
            }
            InjectedFault::RoomReplayFromPosition => {
                "a resumed membership replays the message at its position again"
            }
            InjectedFault::RoomAcceptsAnyPosition => {
                "room positions of another epoch or beyond the head are honoured"
            }
            InjectedFault::HistoryAfterInclusive => {
                "history after a position includes the message at it"
            }
            InjectedFault::ForwardHistoryNeverHasMore => {
                "forward history pages always say has_more false"
            }
            InjectedFault::DocumentPositionBehind => {
                "`document` carries the position of the version before"
            }
            InjectedFault::CountHiddenRecords => {
                "records.total counts matching records hidden from the principal"
            }
            InjectedFault::LeakHiddenChange => {
                "watches deliver changes of records hidden from their principal"
            }
            InjectedFault::HideWithoutDelete => {
                "an update that hides a record from a watch's principal is not reported"
            }
            InjectedFault::RevealAsUpdate => {
                "an update that reveals a record to a watch's principal is sent as an update"
            }
            InjectedFault::ReadHiddenById => {
                "read by record_id returns a record hidden from the principal"
            }
            InjectedFault::IgnorePostKeys => "a repeated post with its key posts again",
            InjectedFault::IgnoreEditKeys => "a repeated edit with its key is a new edit",
            InjectedFault::OmitPostOrigin => "room messages lack their origin",
            InjectedFault::OmitEditOrigin => "document edits lack their origin",
            InjectedFault::OmitLiveness => "the welcome lacks liveness",
            InjectedFault::ClampVectorComponents => {
                "a search vector component beyond the bound is clamped, not refused"
            }
            InjectedFault::BinaryClosesInvalidPayload => {
                "a binary frame closes with 1007, not 1003"
            }
            InjectedFault::StatsOmitOwnRequest => {
                "stats count messages_in without the get_stats frame they answer"
            }
            InjectedFault::NestingOneDeeper => "frames one level over max_nesting_depth are served",
            InjectedFault::TypeErrorWithoutId => {
                "the error for a missing or non-string type lacks the readable id"
            }
            InjectedFault::SubscriptionCapOneOver => {
                "a connection gets one subscription more than max_subscriptions"
            }
            InjectedFault::AbuseAtThreeTimes => {
                "rate abuse closes only beyond three times the rate"
            }
            InjectedFault::StatsForgetTopicSubscriptions => {
                "stats count watches but not topic subscriptions among the server's subscriptions"
            }
            InjectedFault::ReauthKeepsScopes => {
                "re-authentication reports the new scopes but keeps the old ones"
            }
            InjectedFault::ResumeSkipsFirst => {
                "a resumed watch leaves out the first change it should replay"
            }
        }
    }

    /// The names of every fault, in catalogue order.
    pub fn names() -> Vec<&'static str> {
        InjectedFault::ALL.iter().map(|f| f.name()).collect()
    }

    /// Returns `config` with this fault switched on. Faults compose: an
    /// outbound fault runs before any filter already installed, which then
    /// sees what the fault let through.
    pub fn apply(self, mut config: Config) -> Config {
        let faults = &mut config.faults;
        match self {
            InjectedFault::SkipHeartbeat => faults.skip_heartbeats = true,
            InjectedFault::IgnoreRateLimit => faults.ignore_rate_limit = true,
            InjectedFault::OmitRequiredField => faults.omit_required_field = true,
            InjectedFault::LeakAcrossFilter => faults.leak_across_filter = true,
            InjectedFault::LeakAcrossScope => faults.leak_across_scope = true,
            InjectedFault::AcceptStaleEdit => faults.accept_stale_edit = true,
            InjectedFault::KeepDroppedMember => faults.keep_dropped_member = true,
            InjectedFault::PushWithoutTime => faults.push_without_time = true,
            InjectedFault::IgnoreTokenName => faults.ignore_token_name = true,
            InjectedFault::AcceptOversizedMemberInfo => faults.accept_oversized_member_info = true,
            InjectedFault::IgnoreConnectRate => faults.ignore_connect_rate = true,
            InjectedFault::IgnoreRoomPostRate => faults.ignore_room_post_rate = true,
            InjectedFault::UnprefixedExtensionCode => faults.unprefixed_extension_codes = true,
            InjectedFault::StrictIntegers => faults.strict_integers = true,
            InjectedFault::NullNotAbsent => faults.null_not_absent = true,
            InjectedFault::UnboundedIntegers => faults.unbounded_integers = true,
            InjectedFault::EmptyEditApplied => faults.empty_edit_applied = true,
            InjectedFault::RefuseExtensionMembers => faults.refuse_extension_members = true,
            InjectedFault::UnofferedDeflateParameter => faults.unoffered_deflate_parameter = true,
            InjectedFault::SearchCosineAsDot => faults.cosine_as_dot = true,
            InjectedFault::SearchIgnoresFilter => faults.search_ignores_filter = true,
            InjectedFault::SearchAcceptsAnyK => faults.search_accepts_any_k = true,
            InjectedFault::SearchSkipsOtherDimensions => {
                faults.search_skips_other_dimensions = true
            }
            InjectedFault::SearchMissesNearest => faults.search_misses_nearest = true,
            InjectedFault::AcceptUnmatchablePaths => faults.accept_unmatchable_paths = true,
            InjectedFault::BoundNamesUnchecked => faults.bound_names_unchecked = true,
            InjectedFault::BoundNamesRequired => faults.bound_names_required = true,
            InjectedFault::UnboundNamesDefaulted => faults.unbound_names_defaulted = true,
            InjectedFault::ViewDropsLeaves => faults.view_drops_leaves = true,
            InjectedFault::EndSilentlyOnNarrowing => faults.end_silently_on_narrowing = true,
            InjectedFault::EndedKeepsSubscription => faults.ended_keeps_subscription = true,
            InjectedFault::EndSilentlyOnClose => faults.end_silently_on_close = true,
            InjectedFault::EndsWithoutTelling => faults.ends_without_telling = true,
            InjectedFault::IgnoreIdempotencyKeys => faults.ignore_idempotency_keys = true,
            InjectedFault::AcceptReusedKeys => faults.accept_reused_keys = true,
            InjectedFault::OmitOrigin => faults.omit_origin = true,
            InjectedFault::SharedPolicyClose => faults.shared_policy_close = true,
            InjectedFault::CloseWithoutDelay => faults.close_without_delay = true,
            InjectedFault::DropOnProtocolError => faults.drop_on_protocol_error = true,
            InjectedFault::NoCloseReply => faults.no_close_reply = true,
            InjectedFault::NeverPing => faults.never_ping = true,
            InjectedFault::IgnoreClientMax => faults.ignore_client_max = true,
            InjectedFault::RequiredWithoutAuth => faults.required_without_auth = true,
            InjectedFault::BareWelcomeAuth => faults.bare_welcome_auth = true,
            InjectedFault::SilentExpiry => faults.silent_expiry = true,
            InjectedFault::DeafToPongs => faults.deaf_to_pongs = true,
            InjectedFault::LaxSessionParams => faults.lax_session_params = true,
            InjectedFault::SessionEchoesAllFeatures => faults.session_echoes_all_features = true,
            InjectedFault::PartsAlways => faults.parts_always = true,
            InjectedFault::NoFeatures => faults.no_features = true,
            InjectedFault::UnannouncedNoticeLead => faults.unannounced_notice_lead = true,
            InjectedFault::ReadPositionBehind => faults.read_position_behind = true,
            InjectedFault::BothResumeForms => faults.both_resume_forms = true,
            InjectedFault::IgnorePositionEpoch => faults.ignore_position_epoch = true,
            InjectedFault::FixedEpoch => faults.fixed_epoch = true,
            InjectedFault::NoHeartbeatProgress => faults.no_heartbeat_progress = true,
            InjectedFault::TopicReplayFromPosition => faults.topic_replay_from_position = true,
            InjectedFault::TopicRecoverBeyondRetention => {
                faults.topic_recover_beyond_retention = true
            }
            InjectedFault::RetentionOverstated => faults.retention_overstated = true,
            InjectedFault::RoomReplayFromPosition => faults.room_replay_from_position = true,
            InjectedFault::RoomAcceptsAnyPosition => faults.room_accepts_any_position = true,
            InjectedFault::HistoryAfterInclusive => faults.history_after_inclusive = true,
            InjectedFault::ForwardHistoryNeverHasMore => {
                faults.forward_history_never_has_more = true
            }
            InjectedFault::DocumentPositionBehind => faults.document_position_behind = true,
            InjectedFault::CountHiddenRecords => faults.count_hidden_records = true,
            InjectedFault::LeakHiddenChange => faults.leak_hidden_change = true,
            InjectedFault::HideWithoutDelete => faults.hide_without_delete = true,
            InjectedFault::RevealAsUpdate => faults.reveal_as_update = true,
            InjectedFault::ReadHiddenById => faults.read_hidden_by_id = true,
            InjectedFault::IgnorePostKeys => faults.ignore_post_keys = true,
            InjectedFault::IgnoreEditKeys => faults.ignore_edit_keys = true,
            InjectedFault::ClampVectorComponents => faults.clamp_vector_components = true,
            InjectedFault::OmitPostOrigin
            | InjectedFault::OmitEditOrigin
            | InjectedFault::OmitLiveness => {
                let inner = config.outbound_filter.take();
                config.outbound_filter = Some(Arc::new(FaultFilter {
                    fault: self,
                    connections: Mutex::new(HashMap::new()),
                    inner,
                }));
            }
            InjectedFault::BinaryClosesInvalidPayload => {
                faults.binary_closes_invalid_payload = true
            }
            InjectedFault::NestingOneDeeper => faults.nesting_one_deeper = true,
            InjectedFault::SubscriptionCapOneOver => faults.subscription_cap_one_over = true,
            InjectedFault::AbuseAtThreeTimes => faults.abuse_at_three_times = true,
            InjectedFault::StatsForgetTopicSubscriptions => {
                faults.stats_forget_topic_subscriptions = true
            }
            InjectedFault::ReauthKeepsScopes => faults.reauth_keeps_scopes = true,
            InjectedFault::ResumeSkipsFirst => faults.resume_skips_first = true,
            InjectedFault::DropEvent
            | InjectedFault::DuplicateEvent
            | InjectedFault::ReorderEvents
            | InjectedFault::WrongReplyId
            | InjectedFault::WrongErrorCode
            | InjectedFault::LateHeartbeat
            | InjectedFault::PublicationIdMismatch
            | InjectedFault::PublicationTimeMismatch
            | InjectedFault::RoomMessageIdMismatch
            | InjectedFault::SentAtMismatch
            | InjectedFault::ZonelessTimestamps
            | InjectedFault::WrongLeaveReason
            | InjectedFault::HistoryNeverHasMore
            | InjectedFault::HistoryDropsOldest
            | InjectedFault::ConstantMessageIds
            | InjectedFault::InvertedTyping
            | InjectedFault::HistoryAlwaysHasMore
            | InjectedFault::HistoryNewestFirst
            | InjectedFault::PresenceWithoutReason
            | InjectedFault::ObserverAsParticipant
            | InjectedFault::DropMemberInfo
            | InjectedFault::TotalIsCurrent
            | InjectedFault::StatsLimitsDiffer
            | InjectedFault::ErrorWithoutRetry
            | InjectedFault::ZeroAnnounced
            | InjectedFault::UntypedErrorDetails
            | InjectedFault::StatsOmitOwnRequest
            | InjectedFault::TypeErrorWithoutId => {
                let inner = config.outbound_filter.take();
                config.outbound_filter = Some(Arc::new(FaultFilter {
                    fault: self,
                    connections: Mutex::new(HashMap::new()),
                    inner,
                }));
            }
            InjectedFault::SearchUnranked | InjectedFault::WelcomeWithoutBound => {
                let inner = config.outbound_filter.take();
                config.outbound_filter = Some(Arc::new(FaultFilter {
                    fault: self,
                    connections: Mutex::new(HashMap::new()),
                    inner,
                }));
            }
            InjectedFault::ViewMislabelsEntry
            | InjectedFault::ViewWithoutPreImage
            | InjectedFault::ViewLabelsPlainWatch
            | InjectedFault::EndedWithoutPosition => {
                let inner = config.outbound_filter.take();
                config.outbound_filter = Some(Arc::new(FaultFilter {
                    fault: self,
                    connections: Mutex::new(HashMap::new()),
                    inner,
                }));
            }
            InjectedFault::ConstantPositions
            | InjectedFault::PublicationPositionMismatch
            | InjectedFault::RoomMessagePositionMismatch => {
                let inner = config.outbound_filter.take();
                config.outbound_filter = Some(Arc::new(FaultFilter {
                    fault: self,
                    connections: Mutex::new(HashMap::new()),
                    inner,
                }));
            }
        }
        config
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InjectedFault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<InjectedFault, UnknownFault> {
        InjectedFault::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFault {
                name: s.to_string(),
            })
    }
}

impl Config {
    /// Switches on one fault of the catalogue (see [`InjectedFault`]).
    pub fn with_fault(self, fault: InjectedFault) -> Config {
        fault.apply(self)
    }
}

impl Faults {
    /// Whether any switch is on.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }
}

/// What the outbound faults remember about one connection.
#[derive(Default)]
struct ConnFaultState {
    /// Events seen so far per subscription.
    events: HashMap<String, u64>,
    /// Events held back by `reorder-events`, per subscription.
    held: BTreeMap<String, ServerMessage>,
    /// The id of the last reply, for `wrong-reply-id`.
    last_reply_id: Option<RequestId>,
    /// Heartbeats the server meant to send, for `late-heartbeat`.
    heartbeats: u64,
}

/// The outbound filter of the faults that only change what is written.
struct FaultFilter {
    fault: InjectedFault,
    // Entries are never removed: the filter does not learn when a connection
    // ends, and a server runs with a fault only for the length of a test.
    connections: Mutex<HashMap<String, ConnFaultState>>,
    inner: Option<Arc<dyn OutboundFilter>>,
}

fn event_subscription(message: &ServerMessage) -> Option<&str> {
    match message {
        ServerMessage::Change(change) => Some(&change.subscription),
        ServerMessage::Publication(publication) => Some(&publication.subscription),
        _ => None,
    }
}

/// `message` with its `id` member replaced; `None` when it has none to replace.
fn with_reply_id(message: &ServerMessage, id: &RequestId) -> Option<ServerMessage> {
    let mut value = serde_json::to_value(message).ok()?;
    let slot = value.as_object_mut()?.get_mut("id")?;
    *slot = serde_json::to_value(id).ok()?;
    serde_json::from_value(value).ok()
}

fn next_code(code: ErrorCode) -> ErrorCode {
    let all = ErrorCode::ALL;
    let index = all.iter().position(|c| *c == code).unwrap_or(0);
    all[(index + 1) % all.len()]
}

impl FaultFilter {
    fn apply(&self, state: &mut ConnFaultState, message: ServerMessage) -> Vec<ServerMessage> {
        match self.fault {
            InjectedFault::DropEvent | InjectedFault::DuplicateEvent => {
                let Some(subscription) = event_subscription(&message) else {
                    return vec![message];
                };
                let seen = state.events.entry(subscription.to_string()).or_default();
                *seen += 1;
                match (self.fault, *seen) {
                    (InjectedFault::DropEvent, 2) => vec![],
                    (InjectedFault::DuplicateEvent, 1) => vec![message.clone(), message],
                    _ => vec![message],
                }
            }
            InjectedFault::ReorderEvents => reorder(state, message),
            InjectedFault::WrongReplyId => {
                let Some(id) = message.reply_to().cloned() else {
                    return vec![message];
                };
                match state.last_reply_id.replace(id) {
                    Some(previous) => vec![with_reply_id(&message, &previous).unwrap_or(message)],
                    None => vec![message],
                }
            }
            InjectedFault::WrongErrorCode => match message {
                ServerMessage::Error(mut error) if error.id.is_some() => {
                    if let Some(code) = error.error.code.registry() {
                        error.error.code = next_code(code).into();
                    }
                    vec![ServerMessage::Error(error)]
                }
                other => vec![other],
            },
            InjectedFault::LateHeartbeat => match message {
                ServerMessage::Heartbeat(_) => {
                    state.heartbeats += 1;
                    if state.heartbeats % 3 == 0 {
                        vec![message]
                    } else {
                        vec![]
                    }
                }
                other => vec![other],
            },
            fault => {
                vec![rewrite(&message, |value| rewrite_frame(fault, value)).unwrap_or(message)]
            }
        }
    }
}

/// `message` as `change` leaves its JSON form; `None` when the result is no
/// server message (the fault then lets the message through unchanged).
fn rewrite(message: &ServerMessage, change: impl FnOnce(&mut Value)) -> Option<ServerMessage> {
    let mut value = serde_json::to_value(message).ok()?;
    change(&mut value);
    serde_json::from_value(value).ok()
}

/// Another well-formed timestamp than `stamp`: its last digit moved on.
fn other_timestamp(stamp: &str) -> String {
    let mut chars: Vec<char> = stamp.chars().collect();
    if let Some(digit) = chars.iter_mut().rev().find(|c| c.is_ascii_digit()) {
        let next = (digit.to_digit(10).unwrap_or(0) + 1) % 10;
        *digit = char::from_digit(next, 10).unwrap_or('0');
    }
    chars.into_iter().collect()
}

/// What the faults that alter one member of a frame do to its JSON form.
fn rewrite_frame(fault: InjectedFault, frame: &mut Value) {
    let kind = frame["type"].as_str().unwrap_or_default().to_string();
    let set = |slot: Option<&mut Value>, change: &dyn Fn(&str) -> String| {
        if let Some(slot) = slot {
            if let Some(text) = slot.as_str() {
                *slot = Value::String(change(text));
            }
        }
    };
    match (fault, kind.as_str()) {
        (InjectedFault::PublicationIdMismatch, "publication") => {
            set(frame.get_mut("message_id"), &|id| format!("{id}-copy"));
        }
        (InjectedFault::PublicationTimeMismatch, "publication") => {
            set(frame.get_mut("published_at"), &other_timestamp);
        }
        (InjectedFault::RoomMessageIdMismatch, "room_message") => {
            set(frame.pointer_mut("/message/message_id"), &|id| {
                format!("{id}-copy")
            });
        }
        (InjectedFault::SentAtMismatch, "room_message") => {
            set(frame.pointer_mut("/message/sent_at"), &other_timestamp);
        }
        (InjectedFault::ZonelessTimestamps, _) => {
            for pointer in [
                "/at",
                "/published_at",
                "/sent_at",
                "/message/sent_at",
                "/event/committed_at",
            ] {
                set(frame.pointer_mut(pointer), &|t| {
                    t.trim_end_matches('Z').to_string()
                });
            }
        }
        (InjectedFault::WrongLeaveReason, "presence") if frame["reason"] == "disconnected" => {
            frame["reason"] = Value::from("left");
        }
        (InjectedFault::HistoryNeverHasMore, "history_page") => {
            frame["has_more"] = Value::Bool(false);
        }
        (InjectedFault::HistoryDropsOldest, "history_page") => {
            if let Some(messages) = frame["messages"].as_array_mut() {
                if !messages.is_empty() {
                    messages.remove(0);
                }
            }
        }
        (InjectedFault::ConstantMessageIds, "posted") => {
            set(frame.get_mut("message_id"), &|_| CONSTANT_MESSAGE_ID.into());
        }
        (InjectedFault::ConstantMessageIds, "room_message") => {
            set(frame.pointer_mut("/message/message_id"), &|_| {
                CONSTANT_MESSAGE_ID.into()
            });
        }
        (InjectedFault::ConstantMessageIds, "history_page") => {
            for message in frame["messages"].as_array_mut().into_iter().flatten() {
                message["message_id"] = Value::from(CONSTANT_MESSAGE_ID);
            }
        }
        (InjectedFault::HistoryAlwaysHasMore, "history_page") => {
            frame["has_more"] = Value::Bool(true);
        }
        (InjectedFault::HistoryNewestFirst, "history_page") => {
            if let Some(messages) = frame["messages"].as_array_mut() {
                messages.reverse();
            }
        }
        (InjectedFault::PresenceWithoutReason, "presence") => {
            if let Some(presence) = frame.as_object_mut() {
                presence.remove("reason");
            }
        }
        (InjectedFault::ObserverAsParticipant, _) => {
            let participant = |member: &mut Value| {
                if member["role"] == "observer" {
                    member["role"] = Value::from("participant");
                }
            };
            for pointer in ["/member", "/message/author"] {
                if let Some(member) = frame.pointer_mut(pointer) {
                    participant(member);
                }
            }
            if frame["role"] == "observer" {
                frame["role"] = Value::from("participant");
            }
            let members = frame.get_mut("members").and_then(Value::as_array_mut);
            for member in members.into_iter().flatten() {
                participant(member);
            }
        }
        (InjectedFault::DropMemberInfo, _) => {
            let strip = |member: &mut Value| {
                if let Some(member) = member.as_object_mut() {
                    member.remove("display_name");
                    member.remove("metadata");
                }
            };
            for pointer in ["/member", "/author", "/message/author"] {
                if let Some(member) = frame.pointer_mut(pointer) {
                    strip(member);
                }
            }
            let members = frame.get_mut("members").and_then(Value::as_array_mut);
            for member in members.into_iter().flatten() {
                strip(member);
            }
            let messages = frame.get_mut("messages").and_then(Value::as_array_mut);
            for message in messages.into_iter().flatten() {
                if let Some(author) = message.get_mut("author") {
                    strip(author);
                }
            }
        }
        (InjectedFault::ErrorWithoutRetry, "error") => {
            if let Some(error) = frame.get_mut("error").and_then(Value::as_object_mut) {
                error.remove("retry");
            }
        }
        (InjectedFault::TotalIsCurrent, "stats") => {
            if let Some(open) = frame.pointer("/server/connections").cloned() {
                if let Some(total) = frame.pointer_mut("/server/connections_total") {
                    *total = open;
                }
            }
        }
        (InjectedFault::StatsOmitOwnRequest, "stats") => {
            for pointer in ["/server/messages_in", "/connection/messages_in"] {
                if let Some(slot) = frame.pointer_mut(pointer) {
                    if let Some(n) = slot.as_u64() {
                        *slot = Value::from(n.saturating_sub(1));
                    }
                }
            }
        }
        (InjectedFault::TypeErrorWithoutId, "error")
            if frame.pointer("/error/details/path") == Some(&Value::from("type")) =>
        {
            if let Some(error) = frame.as_object_mut() {
                error.remove("id");
            }
        }
        (InjectedFault::StatsLimitsDiffer, "stats") => {
            if let Some(slot) = frame.pointer_mut("/server/limits/max_subscriptions") {
                if let Some(n) = slot.as_u64() {
                    *slot = Value::from(n + 1);
                }
            }
        }
        (InjectedFault::ZeroAnnounced, "welcome") => {
            frame["heartbeat_ms"] = Value::from(0);
            if let Some(limits) = frame.get_mut("limits").and_then(Value::as_object_mut) {
                limits.insert("max_subscriptions".into(), Value::from(0));
            }
        }
        (InjectedFault::UntypedErrorDetails, "error") => {
            if let Some(path) = frame.pointer_mut("/error/details/path") {
                let segments: Vec<Value> = path
                    .as_str()
                    .unwrap_or_default()
                    .split('.')
                    .map(Value::from)
                    .collect();
                *path = Value::Array(segments);
            }
        }
        (InjectedFault::WelcomeWithoutBound, "welcome") => {
            if let Some(welcome) = frame.as_object_mut() {
                welcome.remove("bound");
            }
        }
        (InjectedFault::SearchUnranked, "search_results") => {
            if let Some(results) = frame["results"].as_array_mut() {
                results.reverse();
            }
        }
        (InjectedFault::ViewMislabelsEntry, "change")
            if frame["event"]["view"] == "enter"
                && frame["event"]["operation_type"] == "update" =>
        {
            frame["event"]["view"] = Value::from("stay");
        }
        (InjectedFault::ViewWithoutPreImage, "change") if frame["event"]["view"] == "leave" => {
            if let Some(event) = frame["event"].as_object_mut() {
                event.remove("full_document_before_change");
            }
        }
        (InjectedFault::ViewLabelsPlainWatch, "change") => {
            if let Some(event) = frame["event"].as_object_mut() {
                event.entry("view").or_insert_with(|| Value::from("stay"));
            }
        }
        (InjectedFault::EndedWithoutPosition, "ended") => {
            if let Some(ended) = frame.as_object_mut() {
                ended.remove("resume_token");
                ended.remove("position");
            }
        }
        (InjectedFault::ConstantPositions, _) => {
            for pointer in ["/position", "/event/position", "/message/position"] {
                if let Some(seq) = frame.pointer_mut(&format!("{pointer}/seq")) {
                    *seq = Value::from(0);
                }
            }
        }
        (InjectedFault::PublicationPositionMismatch, "publication") => {
            if let Some(seq) = frame.pointer_mut("/position/seq") {
                *seq = Value::from(seq.as_u64().unwrap_or(0) + 1);
            }
        }
        (InjectedFault::RoomMessagePositionMismatch, "room_message") => {
            if let Some(seq) = frame.pointer_mut("/message/position/seq") {
                *seq = Value::from(seq.as_u64().unwrap_or(0) + 1);
            }
        }
        (InjectedFault::OmitPostOrigin, "room_message") => {
            if let Some(message) = frame["message"].as_object_mut() {
                message.remove("origin");
            }
        }
        (InjectedFault::OmitEditOrigin, "document_edit") => {
            if let Some(edit) = frame.as_object_mut() {
                edit.remove("origin");
            }
        }
        (InjectedFault::OmitLiveness, "welcome") => {
            if let Some(welcome) = frame.as_object_mut() {
                welcome.remove("liveness");
            }
        }
        (InjectedFault::InvertedTyping, "typing") => {
            if let Some(active) = frame["active"].as_bool() {
                frame["active"] = Value::Bool(!active);
            }
        }
        _ => {}
    }
}

/// The `unprefixed-extension-code` fault, applied to a frame about to be written.
pub(crate) fn unprefix_extension_code(text: Utf8Bytes) -> Utf8Bytes {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(&text) else {
        return text;
    };
    let Some(code) = message.get_mut("error").and_then(|e| e.get_mut("code")) else {
        return text;
    };
    match code.as_str().and_then(|c| c.strip_prefix("x-")) {
        Some(bare) => *code = Value::from(bare),
        None => return text,
    }
    Value::Object(message).to_string().into()
}

/// The `accept-oversized-member-info` fault: a `join` refused only for its
/// display name or metadata, decoded again without them.
pub(crate) fn join_without_member_info(
    text: &str,
    depth: usize,
    err: &tidewire_protocol::DecodeError,
) -> Option<tidewire_protocol::ClientMessage> {
    let path = err.path.as_deref()?;
    if path != "display_name" && path != "metadata" && !path.starts_with("metadata.") {
        return None;
    }
    let mut value: Value = serde_json::from_str(text).ok()?;
    if value.get("type")? != "join" {
        return None;
    }
    let object = value.as_object_mut()?;
    object.remove("display_name");
    object.remove("metadata");
    tidewire_protocol::decode_client_message(&value.to_string(), depth).ok()
}

/// The one id `constant-message-ids` gives every room message.
const CONSTANT_MESSAGE_ID: &str = "m-000001";

/// Holds the first event of each subscription until its second, then sends
/// the second before the first. A held event is let go, in its place, before
/// anything that would otherwise overtake it for good: the subscription's
/// `unsubscribed`, a `notice` (the connection may close), or a `heartbeat`
/// (the connection went idle, so no second event is on its way). Combined
/// with `skip-heartbeat`, a subscription's lone first event is never sent.
fn reorder(state: &mut ConnFaultState, message: ServerMessage) -> Vec<ServerMessage> {
    if let Some(subscription) = event_subscription(&message) {
        let seen = state.events.entry(subscription.to_string()).or_default();
        *seen += 1;
        return match *seen {
            1 => {
                state.held.insert(subscription.to_string(), message);
                vec![]
            }
            _ => match state.held.remove(subscription) {
                Some(first) => vec![message, first],
                None => vec![message],
            },
        };
    }
    let mut out: Vec<ServerMessage> = match &message {
        ServerMessage::Unsubscribed(reply) => {
            state.held.remove(&reply.subscription).into_iter().collect()
        }
        ServerMessage::Notice(_) | ServerMessage::Heartbeat(_) => {
            std::mem::take(&mut state.held).into_values().collect()
        }
        _ => Vec::new(),
    };
    out.push(message);
    out
}

impl OutboundFilter for FaultFilter {
    fn filter(&self, connection_id: &str, message: ServerMessage) -> Vec<Outgoing> {
        let produced = {
            let mut connections = self.connections.lock();
            let state = connections.entry(connection_id.to_string()).or_default();
            self.apply(state, message)
        };
        match &self.inner {
            None => produced.into_iter().map(Outgoing::now).collect(),
            Some(inner) => produced
                .into_iter()
                .flat_map(|m| inner.filter(connection_id, m))
                .collect(),
        }
    }
}

/// Members that are `Option`s in no version of the decoder: `null` there was
/// refused before TW-CORE-7 was applied to them.
const NON_OPTION_MEMBERS: [&str; 5] = ["sort", "set", "unset", "full_document", "role"];

/// The top-level integer members of client messages; `ops` holds the others.
const INTEGER_MEMBERS: [&str; 3] = ["limit", "offset", "version"];

/// The decoder as the decoding faults break it; the clean decoder when none is on.
pub(crate) fn decode_with_faults(
    faults: &Faults,
    text: &str,
    depth: usize,
) -> Result<ClientMessage, DecodeError> {
    let decoding = faults.strict_integers
        || faults.clamp_vector_components
        || faults.null_not_absent
        || faults.unbounded_integers
        || faults.empty_edit_applied
        || faults.refuse_extension_members;
    if !decoding {
        return decode_client_message(text, depth);
    }
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
        return decode_client_message(text, depth);
    };
    if faults.unbounded_integers {
        for member in ["limit", "offset"] {
            let past = object
                .get(member)
                .and_then(Value::as_f64)
                .is_some_and(|n| n > MAX_INTEGER as f64);
            if past {
                object.insert(member.into(), Value::from(MAX_INTEGER));
            }
        }
    }
    if faults.clamp_vector_components
        && object.get("type").and_then(Value::as_str) == Some("search")
    {
        let components = object.get_mut("vector").and_then(Value::as_array_mut);
        for component in components.into_iter().flatten() {
            if let Some(x) = component
                .as_f64()
                .filter(|x| x.abs() > MAX_VECTOR_COMPONENT)
            {
                *component = Value::from(MAX_VECTOR_COMPONENT.copysign(x));
            }
        }
    }
    if faults.empty_edit_applied
        && object.get("type").and_then(Value::as_str) == Some("edit")
        && object.get("ops") == Some(&Value::Array(Vec::new()))
    {
        object.insert(
            "ops".into(),
            serde_json::json!([{"op": "insert", "position": 0, "text": ""}]),
        );
    }
    let message = decode_client_message(&Value::Object(object.clone()).to_string(), depth)?;
    let refuse = |path: String, what: &str| DecodeError {
        id: Some(message.id().clone()),
        code: ErrorCode::InvalidMessage,
        message: format!("`{path}` {what}"),
        path: Some(path),
    };
    if faults.refuse_extension_members {
        let sort_keys = object.get("sort").and_then(Value::as_array);
        let mut names = object.keys().map(String::as_str).chain(
            sort_keys
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|key| key.keys().map(String::as_str)),
        );
        if let Some(name) = names.find(|name| name.starts_with("x-")) {
            return Err(refuse(
                name.to_string(),
                "is an extension this server refuses",
            ));
        }
    }
    if faults.null_not_absent {
        if let Some(member) = NON_OPTION_MEMBERS
            .iter()
            .find(|m| object.get(**m) == Some(&Value::Null))
        {
            return Err(refuse(member.to_string(), "must not be null"));
        }
    }
    if faults.strict_integers {
        let mut integers: Vec<(String, &Value)> = INTEGER_MEMBERS
            .iter()
            .filter_map(|m| object.get(*m).map(|v| (m.to_string(), v)))
            .collect();
        let ops = object.get("ops").and_then(Value::as_array);
        for (index, op) in ops.into_iter().flatten().enumerate() {
            for member in ["position", "length"] {
                if let Some(value) = op.get(member) {
                    integers.push((format!("ops[{index}].{member}"), value));
                }
            }
        }
        if let Some((path, _)) = integers
            .into_iter()
            .find(|(_, v)| v.is_number() && !v.is_u64())
        {
            return Err(refuse(path, "must be written as a plain integer"));
        }
    }
    Ok(message)
}

/// The `Sec-WebSocket-Extensions` answer of the 101 response: none, since the
/// server implements no extension, unless `unoffered-deflate-parameter` is on.
pub(crate) fn extensions_answer(faults: &Faults, upgrade: &Upgrade) -> Option<&'static str> {
    let deflate_without_window_bits = upgrade.extensions_offered.iter().any(|element| {
        let mut parts = element.split(';').map(str::trim);
        parts.next() == Some("permessage-deflate")
            && !parts.any(|p| p.starts_with("client_max_window_bits"))
    });
    (faults.unoffered_deflate_parameter && deflate_without_window_bits)
        .then_some("permessage-deflate; client_max_window_bits=10")
}

/// The `omit-required-field` fault, applied to a frame about to be written.
pub(crate) fn omit_required_field(text: Utf8Bytes) -> Utf8Bytes {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(&text) else {
        return text;
    };
    if message.get("type").and_then(Value::as_str) != Some("created") {
        return text;
    }
    message.remove("record");
    Value::Object(message).to_string().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names = InjectedFault::names();
        for &fault in InjectedFault::ALL {
            assert_eq!(fault.name().parse::<InjectedFault>(), Ok(fault));
            assert_eq!(fault.to_string(), fault.name());
            assert!(fault
                .name()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-'));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), InjectedFault::ALL.len());
        let err = "drop-events".parse::<InjectedFault>().unwrap_err();
        assert!(err.to_string().contains("drop-event, duplicate-event"));
    }

    #[test]
    fn every_fault_changes_the_configuration() {
        for &fault in InjectedFault::ALL {
            let config = Config::default().with_fault(fault);
            assert!(
                config.faults.any() || config.outbound_filter.is_some(),
                "{fault} changes nothing"
            );
        }
    }

    #[test]
    fn error_codes_move_to_another_registry_code() {
        for code in ErrorCode::ALL {
            assert_ne!(next_code(code), code);
        }
    }

    fn through(fault: InjectedFault, frames: &[Value]) -> Vec<Value> {
        let config = Config::default().with_fault(fault);
        let filter = config.outbound_filter.expect("a filter fault");
        frames
            .iter()
            .flat_map(|frame| {
                let message: ServerMessage = serde_json::from_value(frame.clone()).unwrap();
                filter.filter("c-1", message)
            })
            .map(|out| serde_json::to_value(out.message).unwrap())
            .collect()
    }

    #[test]
    fn a_late_heartbeat_is_every_third_one() {
        let beat = serde_json::json!({"type": "heartbeat", "at": "2026-01-24T10:30:00.000Z"});
        let sent = through(InjectedFault::LateHeartbeat, &vec![beat; 6]);
        assert_eq!(sent.len(), 2);
    }

    #[test]
    fn a_moved_timestamp_is_another_well_formed_one() {
        assert_eq!(
            other_timestamp("2026-01-24T10:30:00.129Z"),
            "2026-01-24T10:30:00.120Z"
        );
        let posted = serde_json::json!({"type": "room_message", "room": "r", "message": {
            "message_id": "m-000002", "body": 1, "sent_at": "2026-01-24T10:30:00.000Z",
            "author": {"connection_id": "c-1", "principal": "p", "role": "observer"}}});
        let moved = &through(InjectedFault::SentAtMismatch, std::slice::from_ref(&posted))[0];
        assert_eq!(moved["message"]["sent_at"], "2026-01-24T10:30:00.001Z");
        let constant = &through(
            InjectedFault::ConstantMessageIds,
            std::slice::from_ref(&posted),
        )[0];
        assert_eq!(constant["message"]["message_id"], CONSTANT_MESSAGE_ID);
        let promoted = &through(InjectedFault::ObserverAsParticipant, &[posted])[0];
        assert_eq!(promoted["message"]["author"]["role"], "participant");
    }

    #[test]
    fn omitting_leaves_other_messages_alone() {
        let created: Utf8Bytes = r#"{"type":"created","id":"c1","record":{"_id":"a"}}"#.into();
        let omitted: Value = serde_json::from_str(&omit_required_field(created)).unwrap();
        assert_eq!(omitted, serde_json::json!({"type": "created", "id": "c1"}));
        let pong: Utf8Bytes = r#"{"type":"pong","id":"p1"}"#.into();
        assert_eq!(omit_required_field(pong.clone()), pong);
    }
}
