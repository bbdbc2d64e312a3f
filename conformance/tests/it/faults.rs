//! The Tidewire suites in fixtures/ must bite: they pass against the clean
//! embedded reference server, and every fault of the server's catalogue,
//! injected alone, makes at least one case fail.
//!
//! Prints a table "fault -> cases that caught it" (see it with
//! `cargo test -p tidewire-conform --test it faults -- --nocapture`). A fault no
//! case catches fails the test: it is a gap in the suites.
//!
//! The runs drive the built binary, as a user would. The clean run goes
//! alone; the fault runs go a few at a time, since each spends most of its
//! time waiting on timers and timeouts rather than on the CPU. A timing-
//! sensitive case can fail under that load alone, which would hide a gap, so
//! a fault counts as caught only when some of the cases that failed fail again
//! when re-run by themselves, one fault run at a time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tidewire_server::InjectedFault;

/// For the faults added for the property model's rules and for later rules,
/// the case of fixtures/ meant to catch each: the run must fail it, besides
/// whatever else.
const CATCHERS: &[(InjectedFault, &str)] = &[
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
/// Failed cases of a fault run that are re-run alone to confirm the catch.
const CONFIRM: usize = 4;

struct Outcome {
    exit: Option<i32>,
    failed: Vec<String>,
    warned: Vec<String>,
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
        (Some(fault), false) => format!("{}-confirm", fault.name()),
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
        warned: ids_with_status(&report, "warn"),
        summary: format!(
            "{} passed, {} failed, {} warned, {} skipped",
            s["passed"], s["failed"], s["warned"], s["skipped"]
        ),
        seconds,
    }
}

/// The failed cases, shortened to the first few when many failed.
fn caught_by(failed: &[String]) -> String {
    const SHOWN: usize = 8;
    match failed.len() {
        0 => "NOT CAUGHT".to_string(),
        n if n <= SHOWN => format!("{n}: {}", failed.join(", ")),
        n => format!("{n}: {}, ...", failed[..SHOWN].join(", ")),
    }
}

#[test]
fn every_injected_fault_fails_some_case() {
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

    // Popped from the end: catalogue order, so the slow event faults start first.
    let queue = Mutex::new(InjectedFault::ALL.iter().rev().copied().collect::<Vec<_>>());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_RUNS {
            scope.spawn(|| loop {
                let Some(fault) = queue.lock().unwrap().pop() else {
                    return;
                };
                let outcome = run(Some(fault), &[]);
                done.lock().unwrap().push((fault, outcome));
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(fault, _)| *fault);

    let mut gaps = Vec::new();
    println!("\nfault -> cases that caught it");
    for (fault, outcome) in &done {
        let mut confirmed = Vec::new();
        if outcome.exit == Some(1) && !outcome.failed.is_empty() {
            let sample = &outcome.failed[..outcome.failed.len().min(CONFIRM)];
            let again = run(Some(*fault), sample);
            confirmed = again.failed;
        }
        println!(
            "{:<20} -> {} ({:.1}s; {})",
            fault.name(),
            caught_by(&outcome.failed),
            outcome.seconds,
            outcome.summary
        );
        if !outcome.failed.is_empty() {
            let tried = outcome.failed.len().min(CONFIRM);
            println!(
                "{:<20}    fail again alone: {} of {tried}{}",
                "",
                confirmed.len(),
                if !confirmed.is_empty() && confirmed.len() < tried {
                    format!(" (only {})", confirmed.join(", "))
                } else {
                    String::new()
                }
            );
        }
        if !outcome.warned.is_empty() {
            println!("{:<20}    warned only: {}", "", outcome.warned.join(", "));
        }
        if let Some((_, case)) = CATCHERS.iter().find(|(f, _)| f == fault) {
            if !outcome.failed.iter().any(|failed| failed == case) {
                gaps.push(format!("{} (not caught by {case})", fault.name()));
            }
        }
        if confirmed.is_empty() {
            gaps.push(format!(
                "{} ({}; exit {:?}, failed {:?})",
                fault.name(),
                fault.description(),
                outcome.exit,
                outcome.failed
            ));
        }
    }
    assert_eq!(done.len(), InjectedFault::ALL.len(), "every fault ran");
    println!("\ntotal {:.1}s", started.elapsed().as_secs_f64());
    assert!(
        gaps.is_empty(),
        "no case of fixtures/ fails when these faults are injected:\n  {}",
        gaps.join("\n  ")
    );
}
