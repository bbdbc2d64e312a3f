//! The Tidewire suites in fixtures/ must bite: they pass against the clean
//! embedded reference server, and every fault of the server's catalogue,
//! injected alone, makes the case `CATCHERS` names for it fail.
//!
//! Prints a table "fault -> its case" (see it with
//! `cargo test -p tidewire-conform --test it faults -- --nocapture`). A fault
//! without a case, or whose case passes, fails the test: it is a gap in the
//! suites. Which other cases a fault breaks is one `run --embedded
//! --inject-fault NAME` away.
//!
//! The runs drive the built binary, as a user would. The clean run of every
//! case goes first and alone; then each fault's case runs by itself against a
//! server with the fault, a few such runs at a time: one case keeps the load
//! low enough that a timing-sensitive case fails only for the fault, not for
//! the load, which would hide a gap.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tidewire_server::InjectedFault;

/// Every fault of the catalogue and the case of fixtures/ meant to catch it.
const CATCHERS: &[(InjectedFault, &str)] = &[
    (InjectedFault::DropEvent, "watch.target.collection"),
    (InjectedFault::DuplicateEvent, "watch.target.collection"),
    (InjectedFault::ReorderEvents, "topics.order.publish-order"),
    (
        InjectedFault::WrongReplyId,
        "core.reply.one-per-request-in-order",
    ),
    (
        InjectedFault::OmitRequiredField,
        "records.filter.eq-deep-equality",
    ),
    (InjectedFault::WrongErrorCode, "bad.type.unknown"),
    (InjectedFault::SkipHeartbeat, "core.heartbeat.idle"),
    (
        InjectedFault::IgnoreRateLimit,
        "limits.rate.limited-unprocessed",
    ),
    (
        InjectedFault::LeakAcrossFilter,
        "watch.filter.operation-type-in",
    ),
    (InjectedFault::LeakAcrossScope, "auth.scopes.reader"),
    (InjectedFault::AcceptStaleEdit, "collab.edit.stale-conflict"),
    (
        InjectedFault::KeepDroppedMember,
        "rooms.disconnect.client-close",
    ),
    (InjectedFault::LateHeartbeat, "core.heartbeat.interval"),
    (
        InjectedFault::PublicationIdMismatch,
        "topics.publication.fields",
    ),
    (
        InjectedFault::PublicationTimeMismatch,
        "topics.publication.fields",
    ),
    (InjectedFault::RoomMessageIdMismatch, "rooms.post.broadcast"),
    (InjectedFault::SentAtMismatch, "rooms.post.broadcast"),
    (InjectedFault::ZonelessTimestamps, "core.heartbeat.interval"),
    (
        InjectedFault::WrongLeaveReason,
        "rooms.disconnect.client-close",
    ),
    (InjectedFault::HistoryNeverHasMore, "rooms.history.paging"),
    (InjectedFault::HistoryDropsOldest, "rooms.history.paging"),
    (InjectedFault::ConstantMessageIds, "rooms.history.paging"),
    (InjectedFault::InvertedTyping, "rooms.typing.relay"),
    (InjectedFault::HistoryAlwaysHasMore, "rooms.history.paging"),
    (InjectedFault::HistoryNewestFirst, "rooms.history.paging"),
    (
        InjectedFault::PresenceWithoutReason,
        "rooms.leave.presence-left",
    ),
    (
        InjectedFault::ObserverAsParticipant,
        "rooms.join.members-and-role",
    ),
    (
        InjectedFault::DropMemberInfo,
        "rooms.presence.display-name-and-metadata",
    ),
    (
        InjectedFault::IgnoreTokenName,
        "rooms.presence.token-display-name",
    ),
    (
        InjectedFault::AcceptOversizedMemberInfo,
        "rooms.presence.bounds",
    ),
    (InjectedFault::PushWithoutTime, "core.time.push-server-time"),
    (
        InjectedFault::TotalIsCurrent,
        "stats.metrics.connections-total",
    ),
    (
        InjectedFault::StatsLimitsDiffer,
        "stats.metrics.effective-limits",
    ),
    (
        InjectedFault::IgnoreConnectRate,
        "limits.quota.connect-rate",
    ),
    (
        InjectedFault::IgnoreRoomPostRate,
        "limits.quota.room-post-rate",
    ),
    (InjectedFault::ErrorWithoutRetry, "core.xerr.retry-class"),
    (
        InjectedFault::UnprefixedExtensionCode,
        "core.xerr.application-code",
    ),
    (InjectedFault::StrictIntegers, "decode.integer.spellings"),
    (InjectedFault::NullNotAbsent, "decode.null.records"),
    (InjectedFault::UnboundedIntegers, "decode.integer.bound"),
    (
        InjectedFault::EmptyEditApplied,
        "decode.collab.spellings-and-empty-ops",
    ),
    (InjectedFault::ZeroAnnounced, "core.welcome.first"),
    (InjectedFault::UntypedErrorDetails, "decode.integer.bound"),
    (
        InjectedFault::RefuseExtensionMembers,
        "decode.extension.members-ignored",
    ),
    (
        InjectedFault::UnofferedDeflateParameter,
        "compress.offer.answer-valid",
    ),
    (InjectedFault::SearchUnranked, "vector.search.ranked"),
    (InjectedFault::SearchCosineAsDot, "vector.search.ranked"),
    (
        InjectedFault::SearchIgnoresFilter,
        "vector.search.filter-and-projection",
    ),
    (
        InjectedFault::SearchAcceptsAnyK,
        "vector.search.invalid-request",
    ),
    (
        InjectedFault::SearchSkipsOtherDimensions,
        "vector.search.wrong-dimension",
    ),
    (InjectedFault::SearchMissesNearest, "vector.search.ranked"),
    (
        InjectedFault::AcceptUnmatchablePaths,
        "watch.filter.unmatchable-path",
    ),
    (InjectedFault::WelcomeWithoutBound, "endpoint.bound.welcome"),
    (
        InjectedFault::BoundNamesUnchecked,
        "endpoint.bound.other-names-refused",
    ),
    (
        InjectedFault::BoundNamesRequired,
        "endpoint.bound.omitted-names",
    ),
    (
        InjectedFault::UnboundNamesDefaulted,
        "endpoint.unbound.names-required",
    ),
    (InjectedFault::ViewDropsLeaves, "watch.view.transitions"),
    (InjectedFault::ViewMislabelsEntry, "watch.view.transitions"),
    (InjectedFault::ViewWithoutPreImage, "watch.view.transitions"),
    (
        InjectedFault::ViewLabelsPlainWatch,
        "watch.view.transitions",
    ),
    (
        InjectedFault::EndSilentlyOnNarrowing,
        "auth.scopes.narrowed-watch-and-topic-pushes",
    ),
    (
        InjectedFault::EndedKeepsSubscription,
        "auth.scopes.narrowed-watch-and-topic-pushes",
    ),
    (
        InjectedFault::EndSilentlyOnClose,
        "core.shutdown.notice-then-1001",
    ),
    (
        InjectedFault::EndedWithoutPosition,
        "auth.scopes.narrowed-watch-and-topic-pushes",
    ),
    (
        InjectedFault::EndsWithoutTelling,
        "auth.scopes.narrowed-watch-and-topic-pushes",
    ),
    (
        InjectedFault::IgnoreIdempotencyKeys,
        "records.idempotency.repeat",
    ),
    (
        InjectedFault::AcceptReusedKeys,
        "records.idempotency.repeat",
    ),
    (InjectedFault::OmitOrigin, "records.idempotency.repeat"),
    (
        InjectedFault::SharedPolicyClose,
        "auth.required.timeout-close",
    ),
    (InjectedFault::CloseWithoutDelay, "limits.rate.abuse-closes"),
    (
        InjectedFault::DropOnProtocolError,
        "bad.frame.protocol-error-closes-1002",
    ),
    (
        InjectedFault::NoCloseReply,
        "core.close.answers-client-close",
    ),
    (
        InjectedFault::NeverPing,
        "core.liveness.unresponsive-closed",
    ),
    (InjectedFault::IgnoreClientMax, "core.session.parts"),
    (
        InjectedFault::RequiredWithoutAuth,
        "auth.required.welcome-timeout",
    ),
    (
        InjectedFault::BareWelcomeAuth,
        "auth.expiry.notice-before-expiry",
    ),
    (
        InjectedFault::SilentExpiry,
        "auth.expiry.notice-before-expiry",
    ),
    (
        InjectedFault::DeafToPongs,
        "core.liveness.unresponsive-closed",
    ),
    (
        InjectedFault::LaxSessionParams,
        "core.session.bad-parameters-refused",
    ),
    (
        InjectedFault::SessionEchoesAllFeatures,
        "core.session.parts",
    ),
    (InjectedFault::PartsAlways, "core.session.parts"),
    (
        InjectedFault::NoFeatures,
        "core.session.absent-without-parameters",
    ),
    (
        InjectedFault::UnannouncedNoticeLead,
        "auth.required.welcome-timeout",
    ),
    (
        InjectedFault::ReadPositionBehind,
        "resume.pos.read-then-watch",
    ),
    (InjectedFault::BothResumeForms, "resume.pos.one-resume-form"),
    (
        InjectedFault::IgnorePositionEpoch,
        "resume.pos.malformed-or-lost",
    ),
    (InjectedFault::FixedEpoch, "resume.pos.runs-never-repeat"),
    (
        InjectedFault::NoHeartbeatProgress,
        "resume.progress.quiet-watch-resumes",
    ),
    (
        InjectedFault::ConstantPositions,
        "resume.pos.read-then-watch",
    ),
    (
        InjectedFault::PublicationPositionMismatch,
        "resume.recover.topic-resumes",
    ),
    (
        InjectedFault::TopicReplayFromPosition,
        "resume.recover.topic-resumes",
    ),
    (
        InjectedFault::TopicRecoverBeyondRetention,
        "resume.recover.topic-retention",
    ),
    (
        InjectedFault::RetentionOverstated,
        "resume.recover.topic-retention",
    ),
    (
        InjectedFault::RoomMessagePositionMismatch,
        "resume.recover.room-resumes",
    ),
    (
        InjectedFault::RoomReplayFromPosition,
        "resume.recover.room-resumes",
    ),
    (
        InjectedFault::RoomAcceptsAnyPosition,
        "resume.recover.room-lost",
    ),
    (
        InjectedFault::HistoryAfterInclusive,
        "resume.recover.history-by-position",
    ),
    (
        InjectedFault::ForwardHistoryNeverHasMore,
        "resume.recover.history-by-position",
    ),
    (
        InjectedFault::DocumentPositionBehind,
        "resume.recover.document-positions",
    ),
    (
        InjectedFault::CountHiddenRecords,
        "records.authz.read-narrowed",
    ),
    (
        InjectedFault::LeakHiddenChange,
        "watch.authz.unseen-changes",
    ),
    (
        InjectedFault::HideWithoutDelete,
        "watch.authz.hide-and-reveal",
    ),
    (InjectedFault::RevealAsUpdate, "watch.authz.hide-and-reveal"),
    (InjectedFault::ReadHiddenById, "records.authz.read-narrowed"),
    (InjectedFault::IgnorePostKeys, "rooms.idempotency.repeat"),
    (InjectedFault::IgnoreEditKeys, "collab.idempotency.repeat"),
    (InjectedFault::OmitPostOrigin, "rooms.idempotency.repeat"),
    (InjectedFault::OmitEditOrigin, "collab.idempotency.repeat"),
    (
        InjectedFault::OmitLiveness,
        "core.session.absent-without-parameters",
    ),
    (
        InjectedFault::ClampVectorComponents,
        "vector.search.invalid-request",
    ),
    (
        InjectedFault::BinaryClosesInvalidPayload,
        "bad.frame.binary",
    ),
    (
        InjectedFault::StatsOmitOwnRequest,
        "stats.get.fresh-connection",
    ),
    (InjectedFault::NestingOneDeeper, "bad.nesting.boundary"),
    (
        InjectedFault::TypeErrorWithoutId,
        "bad.type.missing-or-not-string",
    ),
    (
        InjectedFault::SubscriptionCapOneOver,
        "limits.subscriptions.cap",
    ),
    (InjectedFault::AbuseAtThreeTimes, "limits.rate.abuse-closes"),
    (
        InjectedFault::StatsForgetTopicSubscriptions,
        "stats.get.server-totals-subscriptions-rooms",
    ),
    (
        InjectedFault::ReauthKeepsScopes,
        "auth.scopes.pushes-follow-current-scopes",
    ),
    (
        InjectedFault::ResumeSkipsFirst,
        "resume.resume.replays-missed-then-live",
    ),
];

/// A whole embedded run takes seconds; this only stops a runner that hangs.
const RUN_DEADLINE: Duration = Duration::from_secs(300);
/// Fault runs at once.
const PARALLEL_RUNS: usize = 3;

struct Outcome {
    exit: Option<i32>,
    failed: Vec<String>,
    summary: String,
    seconds: f64,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

fn ids_with_status(report: &Value, status: &str) -> Vec<String> {
    report["cases"]
        .as_array()
        .expect("the report lists its cases")
        .iter()
        .filter(|case| case["status"] == status)
        .map(|case| case["id"].as_str().expect("a case id").to_string())
        .collect()
}

/// Runs the suites of fixtures/ against the embedded servers, with `fault`
/// injected; only the cases named in `cases` when it is not empty.
fn run(fault: Option<InjectedFault>, cases: &[String]) -> Outcome {
    let label = match (fault, cases.is_empty()) {
        (None, _) => "clean".to_string(),
        (Some(fault), true) => fault.name().to_string(),
        (Some(fault), false) => format!("{}-case", fault.name()),
    };
    let json = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faults-{}-{label}.json", std::process::id()));
    let _ = std::fs::remove_file(&json);
    // A file, not a pipe: a pipe nobody reads while the run goes on could fill and stall it.
    let stderr_path = json.with_extension("stderr");
    let stderr_file = std::fs::File::create(&stderr_path).expect("a file for the runner's stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidewire-conform"));
    command
        .current_dir(workspace())
        .args(["run", "--embedded", "-j", "4", "--no-color", "--json"])
        .arg(&json)
        .env_remove("CONFORM_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_file);
    if let Some(fault) = fault {
        command.args(["--inject-fault", fault.name()]);
    }
    for case in cases {
        command.args(["--case", case]);
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("the runner starts");
    let status = loop {
        if let Some(status) = child.try_wait().expect("the runner can be waited for") {
            break status;
        }
        if started.elapsed() > RUN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the {label} run took longer than {RUN_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seconds = started.elapsed().as_secs_f64();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stderr_path);
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "the {label} run wrote no report ({e}); exit {:?}, stderr:\n{stderr}",
            status.code()
        )
    });
    let report: Value = serde_json::from_str(&text).expect("the report is JSON");
    let _ = std::fs::remove_file(&json);
    let s = &report["summary"];
    Outcome {
        exit: status.code(),
        failed: ids_with_status(&report, "fail"),
        summary: format!(
            "{} passed, {} failed, {} warned, {} skipped",
            s["passed"], s["failed"], s["warned"], s["skipped"]
        ),
        seconds,
    }
}

#[test]
fn every_injected_fault_fails_its_case() {
    let started = Instant::now();
    let clean = run(None, &[]);
    assert!(
        clean.exit == Some(0) && clean.failed.is_empty(),
        "the clean reference server must pass every case first (exit {:?}, {}); failed: {:?}",
        clean.exit,
        clean.summary,
        clean.failed
    );
    println!("clean run: {} in {:.1}s", clean.summary, clean.seconds);

    let without_case: Vec<&str> = InjectedFault::ALL
        .iter()
        .filter(|fault| !CATCHERS.iter().any(|(f, _)| f == *fault))
        .map(|fault| fault.name())
        .collect();
    assert!(
        without_case.is_empty(),
        "every fault names the case that catches it in CATCHERS; these do not: {without_case:?}"
    );

    let queue = Mutex::new(CATCHERS.iter().rev().collect::<Vec<_>>());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_RUNS {
            scope.spawn(|| loop {
                let Some(&(fault, case)) = queue.lock().unwrap().pop() else {
                    return;
                };
                let outcome = run(Some(fault), &[case.to_string()]);
                done.lock().unwrap().push((fault, case, outcome));
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(fault, _, _)| *fault);

    let mut gaps = Vec::new();
    println!("\nfault -> its case");
    for (fault, case, outcome) in &done {
        let caught = outcome.exit == Some(1) && outcome.failed.iter().any(|f| f == case);
        println!(
            "{:<36} -> {case}: {} ({:.1}s)",
            fault.name(),
            if caught { "failed" } else { "NOT CAUGHT" },
            outcome.seconds,
        );
        if !caught {
            gaps.push(format!(
                "{} ({}) is not caught by {case}: exit {:?}, {}",
                fault.name(),
                fault.description(),
                outcome.exit,
                outcome.summary
            ));
        }
    }
    println!("\ntotal {:.1}s", started.elapsed().as_secs_f64());
    assert!(
        gaps.is_empty(),
        "faults whose case passes:\n  {}",
        gaps.join("\n  ")
    );
}
