//! `tidewire-conform prop` against the embedded reference server: clean, it
//! passes; with a fault injected, it finds the fault, shrinks the sequence to
//! a handful of operations, and the suite file it writes fails under `run`
//! with the fault and passes without it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn conform() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidewire-conform"))
}

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/schema/schema-set.json")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tidewire-prop-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn prop_passes_against_the_reference_server() {
    let output = conform()
        .args([
            "prop",
            "--embedded",
            "--seed",
            "11",
            "--cases",
            "60",
            "--max-len",
            "30",
        ])
        .arg("--schemas")
        .arg(schemas())
        .output()
        .expect("tidewire-conform runs");
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("prop: 60 cases and the shutdown passed"),
        "{printed}"
    );
    assert!(printed.contains("--seed 11"), "{printed}");
}

/// The operations of a written case: its sends on the scenario's
/// connections (`c0`..), less the closing ping fences, its reconnects, and
/// the operations that open side connections for themselves (a flood, a
/// wait for a heartbeat), once each however many they open (their names
/// start with the operation's id, `q3-...`). A burst counts its requests.
fn operations(suite: &Value) -> usize {
    let scenario_conn = |step: &Value| {
        step["conn"]
            .as_str()
            .and_then(|c| c.strip_prefix('c'))
            .is_some_and(|n| n.parse::<u8>().is_ok())
    };
    let steps = suite["cases"][0]["steps"].as_array().expect("steps");
    let sends = steps
        .iter()
        .filter(|step| match step["step"].as_str() {
            Some("send") => {
                scenario_conn(step)
                    && !step["json"]["id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with("fence"))
            }
            Some("reconnect") => true,
            _ => false,
        })
        .count();
    let side_operations: std::collections::BTreeSet<&str> = steps
        .iter()
        .filter(|step| step["step"] == "open" && !scenario_conn(step))
        .filter_map(|step| step["conn"].as_str())
        .map(|conn| {
            conn.split_once('-')
                .map_or(conn, |(operation, _)| operation)
        })
        .collect();
    sends + side_operations.len()
}

/// Searches with the suite's usual settings, which find most faults.
fn finds_and_shrinks(fault: &str) {
    finds_and_shrinks_with(fault, 3, 300, 30);
}

/// Faults that only rare operations meet are searched with shorter
/// sequences and a seed that meets them early, to keep the test quick. The
/// search moves on to the next seeds when one finds nothing, so that a new
/// operation, which changes every seed's sequences, does not make the test
/// depend on one seed; the fault must still be found within a few.
fn finds_and_shrinks_with(fault: &str, first_seed: u64, cases: u32, max_len: usize) {
    const SEEDS_TRIED: u64 = 4;
    let dir = scratch(fault);
    let (cases, max_len) = (cases.to_string(), max_len.to_string());
    let out = dir.join("failure.json");
    let mut misses = Vec::new();
    for seed in first_seed..first_seed + SEEDS_TRIED {
        let seed = seed.to_string();
        let output = conform()
            .args([
                "prop",
                "--embedded",
                "--seed",
                &seed,
                "--cases",
                &cases,
                "--max-len",
                &max_len,
            ])
            .args(["--inject-fault", fault])
            .arg("--schemas")
            .arg(schemas())
            .arg("--out")
            .arg(&out)
            .output()
            .expect("tidewire-conform runs");
        let printed = text(&output);
        if output.status.code() == Some(0) {
            misses.push(seed);
            continue;
        }
        assert_eq!(output.status.code(), Some(1), "{fault}: {printed}");
        assert!(printed.contains("prop: FAILED"), "{fault}: {printed}");
        assert!(
            printed.contains(&format!("--seed {seed}")),
            "{fault}: {printed}"
        );
        break;
    }
    assert!(
        (misses.len() as u64) < SEEDS_TRIED,
        "{fault}: no sequence of seeds {misses:?} found it"
    );

    let suite: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("written"))
        .expect("the written suite is JSON");
    let ops = operations(&suite);
    assert!(
        (1..=4).contains(&ops),
        "{fault}: shrunk to {ops} operations, expected a handful:\n{suite:#}"
    );

    let replay = |with_fault: bool| {
        let mut command = conform();
        command.args(["run", "--embedded", "--suite"]).arg(&out);
        if with_fault {
            command.args(["--inject-fault", fault]);
        }
        command.output().expect("tidewire-conform runs")
    };
    let broken = replay(true);
    assert_eq!(
        broken.status.code(),
        Some(1),
        "{fault}: the written suite must fail on its own:\n{}",
        text(&broken)
    );
    let clean = replay(false);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{fault}: the written suite must pass against a correct server:\n{}",
        text(&clean)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn prop_finds_a_duplicated_change_event() {
    finds_and_shrinks("duplicate-event");
}

#[test]
fn prop_finds_an_accepted_stale_edit() {
    finds_and_shrinks("accept-stale-edit");
}

#[test]
fn prop_finds_a_member_kept_after_its_connection_dropped() {
    finds_and_shrinks_with("keep-dropped-member", 4, 300, 30);
}

#[test]
fn prop_finds_an_event_leaked_across_a_filter() {
    finds_and_shrinks("leak-across-filter");
}

#[test]
fn prop_finds_events_of_one_subscription_out_of_order() {
    finds_and_shrinks_with("reorder-events", 2, 200, 30);
}

#[test]
fn prop_finds_a_missing_heartbeat() {
    finds_and_shrinks_with("skip-heartbeat", 3, 100, 2);
}

#[test]
fn prop_finds_an_unenforced_rate_limit() {
    finds_and_shrinks("ignore-rate-limit");
}

#[test]
fn prop_finds_requests_allowed_beyond_the_scopes() {
    finds_and_shrinks("leak-across-scope");
}

#[test]
fn prop_finds_a_heartbeat_later_than_announced() {
    finds_and_shrinks_with("late-heartbeat", 3, 100, 2);
}

#[test]
fn prop_finds_a_forward_history_page_that_repeats_its_cursor() {
    finds_and_shrinks_with("history-after-inclusive", 16, 300, 30);
}

#[test]
fn prop_finds_a_resumed_topic_subscription_that_repeats_its_start() {
    finds_and_shrinks_with("topic-replay-from-position", 3, 300, 30);
}

#[test]
fn prop_finds_a_publication_whose_id_is_not_the_published_one() {
    finds_and_shrinks("publication-id-mismatch");
}

#[test]
fn prop_finds_a_room_message_whose_time_is_not_the_posted_one() {
    finds_and_shrinks("sent-at-mismatch");
}

#[test]
fn prop_finds_timestamps_without_their_zone() {
    finds_and_shrinks("zoneless-timestamps");
}

#[test]
fn prop_finds_a_history_page_missing_its_oldest_message() {
    finds_and_shrinks("history-drops-oldest");
}

#[test]
fn prop_finds_a_dropped_member_reported_as_having_left() {
    finds_and_shrinks_with("wrong-leave-reason", 4, 300, 30);
}

/// A rule that relates frames to each other (ids increasing) is checked on
/// the received frames, not by a pattern: prop names the rule, and says that
/// the written suite cannot state it.
#[test]
fn prop_finds_room_message_ids_that_do_not_increase() {
    let dir = scratch("constant-message-ids");
    let out = dir.join("failure.json");
    // A seed whose first failure is the rule, not a history page whose
    // cursor the constant id misplaces.
    let output = conform()
        .args(["prop", "--embedded", "--seed", "1", "--cases", "300"])
        .args(["--max-len", "30", "--inject-fault", "constant-message-ids"])
        .arg("--schemas")
        .arg(schemas())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("tidewire-conform runs");
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(printed.contains("prop: FAILED at case"), "{printed}");
    assert!(printed.contains("TW-ROOM-10"), "{printed}");
    let suite: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("written"))
        .expect("the written suite is JSON");
    assert!((1..=4).contains(&operations(&suite)), "{suite:#}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn prop_reports_the_checks_it_skips() {
    let output = conform()
        .args(["prop", "--embedded", "--seed", "2", "--cases", "5"])
        .args([
            "--max-len",
            "5",
            "--profile",
            "core",
            "--profile",
            "records",
            "--profile",
            "stats",
        ])
        .arg("--schemas")
        .arg(schemas())
        .output()
        .expect("tidewire-conform runs");
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    // The embedded server announces a rate and short heartbeats, and gives
    // prop `token_narrow`: what is skipped is what no operation generates.
    assert!(printed.contains("check(s) skipped"), "{printed}");
    assert!(
        printed.contains("skipped GET /stats (TW-STATS-2)"),
        "{printed}"
    );
    assert!(!printed.contains("skipped graceful shutdown"), "{printed}");
    assert!(!printed.contains("skipped heartbeat timing"), "{printed}");
}

/// `shutdown_url` serves one case, so its shutdown is checked once, after
/// the sequences, and neither repeated nor shrunk.
#[test]
fn prop_finds_a_shutdown_that_ends_nothing_after_the_sequences() {
    let dir = scratch("shutdown");
    let out = dir.join("failure.json");
    let output = conform()
        .args([
            "prop",
            "--embedded",
            "--inject-fault",
            "end-silently-on-close",
        ])
        .args(["--seed", "1", "--cases", "2", "--max-len", "2", "--out"])
        .arg(&out)
        .arg("--schemas")
        .arg(schemas())
        .output()
        .expect("tidewire-conform runs");
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("prop: FAILED the graceful shutdown on shutdown_url"),
        "{printed}"
    );
    assert!(!printed.contains("FAILED at case"), "{printed}");
    let suite: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("written"))
        .expect("the written suite is JSON");
    assert!(suite.to_string().contains("${shutdown_url}"), "{suite:#}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn prop_finds_a_binary_frame_closed_with_another_code() {
    finds_and_shrinks("binary-closes-invalid-payload");
}

#[test]
fn prop_finds_a_frame_breaking_rfc_6455_dropped_without_a_close() {
    finds_and_shrinks("drop-on-protocol-error");
}

#[test]
fn prop_finds_a_client_close_left_unanswered() {
    finds_and_shrinks("no-close-reply");
}

#[test]
fn prop_finds_stats_that_leave_out_their_own_request() {
    finds_and_shrinks("stats-omit-own-request");
}

#[test]
fn prop_finds_a_frame_over_the_nesting_depth_served() {
    finds_and_shrinks("nesting-one-deeper");
}

#[test]
fn prop_finds_a_type_error_without_its_readable_id() {
    finds_and_shrinks("type-error-without-id");
}

#[test]
fn prop_finds_a_subscription_granted_over_the_cap() {
    finds_and_shrinks("subscription-cap-one-over");
}

#[test]
fn prop_finds_rate_abuse_tolerated_beyond_twice_the_rate() {
    finds_and_shrinks("abuse-at-three-times");
}

#[test]
fn prop_finds_a_rate_abuse_close_without_its_delay() {
    finds_and_shrinks("close-without-delay");
}

#[test]
fn prop_finds_server_stats_that_leave_out_topic_subscriptions() {
    finds_and_shrinks("stats-forget-topic-subscriptions");
}

#[test]
fn prop_finds_a_read_that_counts_records_hidden_from_its_principal() {
    finds_and_shrinks("count-hidden-records");
}

#[test]
fn prop_finds_a_read_position_that_a_watch_repeats_a_change_after() {
    finds_and_shrinks("read-position-behind");
}

#[test]
fn prop_finds_an_ended_watch_without_its_resume_point() {
    finds_and_shrinks("ended-without-position");
}

#[test]
fn prop_finds_a_document_read_behind_its_version() {
    finds_and_shrinks("document-position-behind");
}

#[test]
fn prop_finds_a_welcome_without_liveness() {
    finds_and_shrinks("omit-liveness");
}

#[test]
fn prop_finds_a_join_over_the_member_info_bounds_accepted() {
    finds_and_shrinks("accept-oversized-member-info");
}

#[test]
fn prop_finds_an_unenforced_room_post_rate() {
    finds_and_shrinks("ignore-room-post-rate");
}

#[test]
fn prop_finds_a_topic_recovered_with_a_gap_past_its_retention() {
    finds_and_shrinks("topic-recover-beyond-retention");
}

#[test]
fn prop_finds_a_room_joined_after_a_position_it_cannot_honour() {
    finds_and_shrinks("room-accepts-any-position");
}

#[test]
fn prop_finds_a_watch_with_both_resume_forms_accepted() {
    finds_and_shrinks("both-resume-forms");
}

#[test]
fn prop_finds_a_replayed_publication_at_another_position() {
    finds_and_shrinks("publication-position-mismatch");
}

#[test]
fn prop_finds_errors_without_their_retry_class() {
    finds_and_shrinks("error-without-retry");
}

#[test]
fn prop_finds_an_extension_member_refused() {
    finds_and_shrinks("refuse-extension-members");
}

#[test]
fn prop_finds_a_bound_endpoint_that_serves_another_collection() {
    finds_and_shrinks("bound-names-unchecked");
}

#[test]
fn prop_finds_a_request_without_names_read_as_default() {
    finds_and_shrinks("unbound-names-defaulted");
}

#[test]
fn prop_finds_a_join_that_ignores_the_token_display_name() {
    finds_and_shrinks("ignore-token-name");
}

#[test]
fn prop_finds_a_required_mode_server_that_does_not_serve_auth() {
    finds_and_shrinks("required-without-auth");
}

#[test]
fn prop_finds_a_session_echoing_unsupported_features() {
    finds_and_shrinks("session-echoes-all-features");
}

#[test]
fn prop_finds_messages_over_the_client_bound_sent_whole() {
    finds_and_shrinks("ignore-client-max");
}

#[test]
fn prop_finds_stats_limits_that_differ_from_the_welcome() {
    finds_and_shrinks("stats-limits-differ");
}

#[test]
fn prop_finds_a_connection_total_that_counts_only_open_ones() {
    finds_and_shrinks("total-is-current");
}

#[test]
fn prop_finds_a_server_that_never_pings() {
    finds_and_shrinks("never-ping");
}

#[test]
fn prop_finds_a_deflate_answer_with_a_parameter_not_offered() {
    finds_and_shrinks("unoffered-deflate-parameter");
}

#[test]
fn prop_finds_an_unenforced_connection_rate() {
    finds_and_shrinks("ignore-connect-rate");
}
