//! `prop`: property-based conformance. Generated request sequences, with the
//! replies and pushes the Tidewire model predicts for them, run as ordinary
//! cases; a failing sequence is shrunk to a minimal one and written out as a
//! suite file that fails on its own under `run`.
//!
//! The model (`tidewire-model`) knows the protocol; this module only drives
//! proptest, the engine and the output.

use std::cell::RefCell;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{
    Config as ProptestConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use serde::Deserialize;
use tidewire_protocol::Profile;
use tidewire_server::{InjectedFault, ServerError, Variant};
use ws_conformance::render::{self, Style};
use ws_conformance::report::Direction;
use ws_conformance::target::{Target, TargetError};
use ws_conformance::{
    parse_suite, ClaimsError, Filter, FirstFrameError, Report, RunOptions, Runner, SchemaSet,
    SchemaSetError, SetupError, Status,
};

use crate::embedded::Embedded;
use crate::exit_codes;

/// What `prop` was asked to do, resolved from the command line.
pub struct PropSettings {
    pub url: Option<String>,
    pub faults: Vec<InjectedFault>,
    pub variant: Variant,
    pub seed: Option<u64>,
    pub cases: u32,
    pub max_len: usize,
    pub profiles: Vec<String>,
    pub schemas: PathBuf,
    pub out: Option<PathBuf>,
    pub options: RunOptions,
    pub color: bool,
}

/// Why a property run could not judge the server.
#[derive(Debug, thiserror::Error)]
pub enum PropError {
    #[error(transparent)]
    SchemaSet(#[from] SchemaSetError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot start the reference server")]
    Embedded(#[source] ServerError),
    #[error("the schema set does not say where servers claim their profiles: pass --profile")]
    NoClaims,
    #[error("none of the profiles {0:?} is a Tidewire profile")]
    NoTidewireProfile(Vec<String>),
    #[error("cannot read the welcome of {url}: {reason}")]
    Welcome { url: String, reason: WelcomeError },
    /// A generated case could not be run at all; proptest only carries text.
    #[error("{0}")]
    Execution(String),
    #[error("prop run aborted: {0}")]
    Aborted(String),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why the first frame tells nothing of what sequences may rely on.
#[derive(Debug, thiserror::Error)]
pub enum WelcomeError {
    #[error(transparent)]
    FirstFrame(#[from] FirstFrameError),
    #[error("the first frame is not a Tidewire welcome: {0}")]
    NotWelcome(serde_json::Error),
}

/// A seed from the OS when none is given, printed so the run can be repeated.
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish() % 1_000_000_000
}

fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// `to` relative to the directory `from`, both absolute, for a suite file's
/// `schemas` field (relative to the file, so the pair can be moved together).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to_parts: Vec<Component> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return to.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to_parts[common..] {
        out.push(part);
    }
    out
}

/// What sequences may rely on beyond the profiles: the heartbeat interval
/// and message rate the server announces in its `welcome`, and whether the
/// run has the variable `token_narrow`.
fn announced(
    options: &RunOptions,
    welcome: &serde_json::Value,
) -> Result<tidewire_model::Announced, WelcomeError> {
    let welcome =
        tidewire_protocol::Welcome::deserialize(welcome).map_err(WelcomeError::NotWelcome)?;
    Ok(tidewire_model::Announced {
        heartbeat_ms: Some(welcome.heartbeat_ms),
        rate: welcome.limits.rate,
        narrow_token: options.vars.contains_key("token_narrow"),
        idempotency_window_ms: welcome.idempotency_window_ms,
        max_nesting_depth: Some(welcome.limits.max_nesting_depth),
        max_subscriptions: Some(welcome.limits.max_subscriptions),
        limits_server: None,
        stats_server: options.vars.contains_key("stats_url"),
        auth_tokens: ["token_reader", "token_admin", "jwt_expired"]
            .iter()
            .all(|var| options.vars.contains_key(*var)),
        expiring_token: options
            .fresh_vars
            .as_ref()
            .is_some_and(|fresh| fresh.names().iter().any(|n| n == "jwt_expiring")),
        auth_required_url: options.vars.contains_key("auth_required_url"),
        hidden_records: [
            "authz_url",
            "authz_owner",
            "authz_owner_token",
            "token_reader",
        ]
        .iter()
        .all(|var| options.vars.contains_key(*var)),
        quiet_heartbeat_ms: None,
        topic_retention: None,
        room_post_rate: None,
        second_run: options.vars.contains_key("second_run_url"),
        liveness_url: options.vars.contains_key("liveness_url"),
        libraries_url: options.vars.contains_key("libraries_url"),
        xerr_url: options.vars.contains_key("xerr_url"),
        named_token: ["token_named", "token_named_display_name"]
            .iter()
            .all(|var| options.vars.contains_key(*var)),
        connect_burst: None,
        shutdown_url: options.vars.contains_key("shutdown_url"),
    })
}

/// The `welcome` of the server a run variable names, when the run has the
/// variable and the server's first frame is a welcome.
fn side_welcome(
    options: &RunOptions,
    runtime: &tokio::runtime::Runtime,
    var: &str,
) -> Option<tidewire_protocol::Welcome> {
    let target = Target::parse(options.vars.get(var)?).ok()?;
    let welcome = runtime
        .block_on(Runner::new(options.clone()).first_frame(&target))
        .ok()?;
    tidewire_protocol::Welcome::deserialize(&welcome).ok()
}

/// Exit code 0 when every sequence passed, 1 when one failed.
pub fn run(settings: PropSettings) -> Result<ExitCode, PropError> {
    let schemas = Arc::new(SchemaSet::load(&settings.schemas)?);
    let runtime = tokio::runtime::Runtime::new().map_err(PropError::Runtime)?;
    let mut options = settings.options.clone();
    let (url, embedded) = match &settings.url {
        Some(url) => (url.clone(), None),
        None => {
            let servers = runtime
                .block_on(Embedded::start(&settings.faults, settings.variant))
                .map_err(PropError::Embedded)?;
            println!("{}", servers.describe());
            // The credentials `run --embedded` gives its cases: with
            // `token_narrow`, sequences can try what its scopes forbid.
            servers.provide_vars(&mut options);
            (servers.url.clone(), Some(servers))
        }
    };
    let code = drive(&settings, &options, &runtime, &url, schemas);
    if let Some(servers) = embedded {
        runtime.block_on(servers.shutdown());
    }
    code
}

fn drive(
    settings: &PropSettings,
    options: &RunOptions,
    runtime: &tokio::runtime::Runtime,
    url: &str,
    schemas: Arc<SchemaSet>,
) -> Result<ExitCode, PropError> {
    let target = Target::parse(url)?;
    let (profile_names, profiles, announced) =
        scope(settings, options, runtime, url, &target, &schemas)?;
    let seed = settings.seed.unwrap_or_else(fresh_seed);
    let file = CaseFile::new(settings, seed);
    let runner = Runner::new(RunOptions {
        filter: Filter {
            profiles: profile_names.clone(),
            ..Filter::default()
        },
        ..options.clone()
    });
    let execute = |scenario: &tidewire_model::Scenario| -> Result<Run, String> {
        let suite = parse_suite(&file.out, &file.text(scenario), Some(schemas.clone()))
            .map_err(|e| format!("the model wrote an invalid suite: {e}"))?;
        let before = unix_ms_now();
        let report = runtime
            .block_on(runner.run(url, &[suite]))
            .map_err(|e| e.to_string())?;
        let after = unix_ms_now();
        Ok(Run {
            report,
            before,
            after,
        })
    };
    println!(
        "prop: seed {seed}, {} cases of up to {} operations, profiles {}",
        settings.cases,
        settings.max_len,
        profile_names.join(", ")
    );
    let skipped = tidewire_model::skipped_checks(&profiles, announced);
    print_skipped(&skipped);
    let started = Instant::now();
    let setup_failure: RefCell<Option<String>> = RefCell::new(None);
    let executed = RefCell::new(0u64);
    // The generated case that failed first, before shrinking began.
    let first_failure: RefCell<Option<u64>> = RefCell::new(None);
    // The run of the last failing sequence: once shrinking ends, the shrunk one.
    let last_failed: RefCell<Option<Run>> = RefCell::new(None);
    let flaky: RefCell<Vec<Flaky>> = RefCell::new(Vec::new());
    let mut proptest = TestRunner::new_with_rng(
        ProptestConfig {
            cases: settings.cases,
            max_shrink_iters: 1000,
            failure_persistence: None,
            ..ProptestConfig::default()
        },
        rng(seed),
    );
    let strategy = tidewire_model::scenario(&profiles, settings.max_len, announced);
    let result = proptest.run(&strategy, |scenario| {
        *executed.borrow_mut() += 1;
        if setup_failure.borrow().is_some() {
            return Err(TestCaseError::reject("the run could not be set up"));
        }
        let shrinking = first_failure.borrow().is_some();
        let outcome = execute(&scenario).and_then(|first| match first.verdict() {
            Ok(()) => Ok(Ok(())),
            // While shrinking, each failing candidate counts at once (the
            // shrunk one is replayed in the end); twice the cost there
            // would double the slowest part of a run.
            Err(reason) if shrinking => {
                *last_failed.borrow_mut() = Some(first);
                Ok(Err(reason))
            }
            // A conformance tool must not call a server wrong on one run:
            // a failure counts only when the same sequence fails again.
            Err(reason) => execute(&scenario).map(|again| match again.verdict() {
                Err(_) => {
                    *last_failed.borrow_mut() = Some(again);
                    Err(reason)
                }
                Ok(()) => {
                    flaky.borrow_mut().push(Flaky {
                        scenario: scenario.clone(),
                        reason,
                        failed: first,
                        passed: again,
                    });
                    Ok(())
                }
            }),
        });
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => {
                first_failure.borrow_mut().get_or_insert(*executed.borrow());
                Err(TestCaseError::fail(reason))
            }
            Err(e) => {
                *setup_failure.borrow_mut() = Some(e.clone());
                Err(TestCaseError::reject(e))
            }
        }
    });
    let elapsed = started.elapsed();
    if let Some(e) = setup_failure.into_inner() {
        return Err(PropError::Execution(e));
    }
    report_flaky(&file, &flaky.into_inner())?;
    match result {
        Ok(()) if announced.shutdown_url => {
            let held = tidewire_model::shutdown(&profiles)
                .new_tree(&mut proptest)
                .map_err(|e| PropError::Execution(e.to_string()))?
                .current();
            if let Some(failed) = check_shutdown(settings, &file, url, &held, &execute)? {
                return Ok(failed);
            }
            println!(
                "prop: {} cases and the shutdown passed in {:.1}s; {} check(s) skipped; repeat with --seed {seed}",
                settings.cases,
                started.elapsed().as_secs_f64(),
                skipped.len(),
            );
            Ok(ExitCode::from(exit_codes::SUCCESS))
        }
        Ok(()) => {
            println!(
                "prop: {} cases passed in {:.1}s ({:.1} cases/s); {} check(s) skipped; repeat with --seed {seed}",
                settings.cases,
                elapsed.as_secs_f64(),
                f64::from(settings.cases) / elapsed.as_secs_f64().max(1e-9),
                skipped.len(),
            );
            Ok(ExitCode::from(exit_codes::SUCCESS))
        }
        Err(TestError::Abort(reason)) => Err(PropError::Aborted(reason.to_string())),
        Err(TestError::Fail(reason, minimal)) => {
            let found = Found {
                reason: reason.to_string(),
                minimal: &minimal,
                runs: executed.into_inner(),
                first_case: first_failure.into_inner().unwrap_or_default(),
                last_failed: last_failed.into_inner(),
                elapsed,
            };
            report_failure(settings, &file, url, found, &execute)
        }
    }
}

/// The profiles sequences are generated for (as named, and those of them
/// Tidewire knows) and what the server's welcome announces.
fn scope(
    settings: &PropSettings,
    options: &RunOptions,
    runtime: &tokio::runtime::Runtime,
    url: &str,
    target: &Target,
    schemas: &SchemaSet,
) -> Result<(Vec<String>, Vec<Profile>, tidewire_model::Announced), PropError> {
    // One welcome tells both the claimed profiles and what operations may
    // rely on.
    let probe = Runner::new(options.clone());
    let welcome = runtime.block_on(probe.first_frame(target));
    let profile_names = if settings.profiles.is_empty() {
        let claims = schemas.claims().ok_or(PropError::NoClaims)?;
        welcome
            .as_ref()
            .map_err(|e| ClaimsError::from(e.clone()))
            .and_then(|w| claims.profiles(w))
            .map_err(|reason| SetupError::Claims {
                url: target.as_str().to_string(),
                reason,
            })?
    } else {
        settings.profiles.clone()
    };
    let profiles: Vec<Profile> = profile_names
        .iter()
        .filter_map(|n| Profile::parse(n))
        .collect();
    if profiles.is_empty() {
        return Err(PropError::NoTidewireProfile(profile_names));
    }

    let mut announced = welcome
        .map_err(WelcomeError::from)
        .and_then(|welcome| announced(options, &welcome))
        .map_err(|reason| PropError::Welcome {
            url: url.to_string(),
            reason,
        })?;
    // Without the `limits_url` server, the limits it would show are tried on
    // the run's server where they can be reached, else skipped.
    let welcome_of = |var: &str| side_welcome(options, runtime, var);
    announced.limits_server = welcome_of("limits_url").map(|w| tidewire_model::LimitsServer {
        max_subscriptions: w.limits.max_subscriptions,
        rate: w.limits.rate,
    });
    announced.quiet_heartbeat_ms = welcome_of("quiet_url").map(|w| w.heartbeat_ms);
    announced.topic_retention = welcome_of("retention_url")
        .and_then(|w| w.retention)
        .and_then(|r| r.topic);
    announced.room_post_rate = welcome_of("room_rate_url").and_then(|w| w.limits.room_post_rate);
    announced.connect_burst = welcome_of("connect_burst_url").and_then(|w| w.limits.connect_rate);

    Ok((profile_names, profiles, announced))
}

/// Where a failing sequence is written, and the case it becomes.
struct CaseFile {
    seed: u64,
    out: PathBuf,
    case_id: String,
    title: String,
    /// The schema set, relative to `out`'s directory.
    schemas_field: String,
}

impl CaseFile {
    fn new(settings: &PropSettings, seed: u64) -> CaseFile {
        let schemas_abs =
            std::fs::canonicalize(&settings.schemas).unwrap_or(settings.schemas.clone());
        let out = settings
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("prop-failure-{seed}.json")));
        let out_dir = std::path::absolute(&out)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .map(|dir| std::fs::canonicalize(&dir).unwrap_or(dir))
            .unwrap_or_default();
        CaseFile {
            seed,
            schemas_field: relative(&out_dir, &schemas_abs).display().to_string(),
            out,
            case_id: format!("prop.seed-{seed}"),
            title: format!("generated sequence, seed {seed}"),
        }
    }

    fn suite(&self, scenario: &tidewire_model::Scenario) -> serde_json::Value {
        tidewire_model::to_suite(scenario, &self.case_id, &self.title, &self.schemas_field)
    }

    /// The suite file of `scenario`, as it is run and as it is written.
    fn text(&self, scenario: &tidewire_model::Scenario) -> String {
        let mut text =
            serde_json::to_string_pretty(&self.suite(scenario)).expect("suites serialize");
        text.push('\n');
        text
    }

    /// Writes the suite file of `scenario` to `--out`.
    fn write(&self, scenario: &tidewire_model::Scenario) -> Result<(), PropError> {
        std::fs::write(&self.out, self.text(scenario)).map_err(|source| PropError::Write {
            path: self.out.clone(),
            source,
        })
    }
}

/// A failing sequence the search found and shrank.
struct Found<'a> {
    reason: String,
    minimal: &'a tidewire_model::Scenario,
    runs: u64,
    /// The index (from 1) of the generated case that failed first.
    first_case: u64,
    /// How the shrunk sequence failed.
    last_failed: Option<Run>,
    elapsed: std::time::Duration,
}

/// Writes the shrunk sequence, says so, and runs it once more to show how
/// it fails.
fn report_failure(
    settings: &PropSettings,
    file: &CaseFile,
    url: &str,
    found: Found<'_>,
    execute: &dyn Fn(&tidewire_model::Scenario) -> Result<Run, String>,
) -> Result<ExitCode, PropError> {
    let Found {
        reason,
        minimal,
        runs,
        first_case,
        last_failed,
        elapsed,
    } = found;
    let seed = file.seed;
    file.write(minimal)?;
    println!(
        "prop: FAILED at case {first_case} ({} runs with shrinking, {:.1}s): {reason}",
        runs,
        elapsed.as_secs_f64()
    );
    println!(
        "prop: shrunk to {} operation(s) on {} connection(s), written to {}",
        minimal.actions.len(),
        minimal.connections,
        file.out.display()
    );
    match execute(minimal) {
        Ok(run) => {
            run.print_failures(settings.color);
            match run.verdict() {
                Ok(()) => {
                    println!(
                        "prop: the unshrunk sequence failed twice, but the shrunk one passed when run again"
                    );
                    if let Some(failed) = last_failed {
                        let flaky = Flaky {
                            scenario: minimal.clone(),
                            reason: reason.clone(),
                            failed,
                            passed: run,
                        };
                        report_flaky(file, std::slice::from_ref(&flaky))?;
                    }
                }
                Err(reason) if run.report.cases.iter().all(|c| c.status == Status::Pass) => {
                    println!(
                        "prop: every frame matched its pattern, but the frames together break a rule: {reason}"
                    );
                    println!(
                        "prop: (a suite file cannot state that rule; `run` of the written file shows the frames)"
                    );
                }
                Err(_) => {}
            }
        }
        Err(e) => println!("prop: could not run the shrunk sequence again: {e}"),
    }
    println!(
        "prop: replay with `tidewire-conform run {url} --suite {}`; repeat the search with --seed {seed}",
        file.out.display()
    );
    Ok(ExitCode::from(exit_codes::CASES_FAILED))
}

/// The graceful shutdown of the `shutdown_url` server, once the sequences
/// passed. That server serves one case, so this case runs once: it is
/// neither repeated before it counts nor shrunk. `None` when it passed.
fn check_shutdown(
    settings: &PropSettings,
    file: &CaseFile,
    url: &str,
    held: &tidewire_model::Scenario,
    execute: &dyn Fn(&tidewire_model::Scenario) -> Result<Run, String>,
) -> Result<Option<ExitCode>, PropError> {
    let run = execute(held).map_err(PropError::Execution)?;
    let Err(reason) = run.verdict() else {
        return Ok(None);
    };
    file.write(held)?;
    run.print_failures(settings.color);
    println!("prop: FAILED the graceful shutdown on shutdown_url: {reason}");
    println!(
        "prop: run once (the server serves one case), written to {}; replay against a fresh one with `tidewire-conform run {url} --suite {}`",
        file.out.display(),
        file.out.display()
    );
    Ok(Some(ExitCode::from(exit_codes::CASES_FAILED)))
}

fn unix_ms_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// One run of a generated case, with the runner's clock around it.
struct Run {
    report: Report,
    /// Unix milliseconds just before and just after the run.
    before: f64,
    after: f64,
}

impl Run {
    /// Prints each case that did not pass, with the end of its transcript.
    fn print_failures(&self, color: bool) {
        for case in self
            .report
            .cases
            .iter()
            .filter(|c| c.status != Status::Pass)
        {
            print!("{}", render::failure_block(case, Style { color }, 24));
        }
    }

    /// Whether the case passed: every step, and the rules that relate its
    /// received frames to each other and to the runner's clock.
    fn verdict(&self) -> Result<(), String> {
        let Some(case) = self.report.cases.first() else {
            return Err("the case did not run".into());
        };
        if case.status != Status::Pass {
            return Err(case
                .failure
                .as_ref()
                .map(|f| f.message.clone())
                .unwrap_or_else(|| "the case did not pass".into()));
        }
        let frames: Vec<(f64, serde_json::Value)> = case
            .transcript
            .iter()
            .filter(|e| e.dir == Direction::In && e.kind == "text")
            .filter_map(|e| Some((e.at_ms, serde_json::from_str(e.text.as_deref()?).ok()?)))
            .collect();
        let received: Vec<tidewire_model::Received<'_>> = frames
            .iter()
            .map(|(at_ms, frame)| tidewire_model::Received {
                at_ms: *at_ms,
                frame,
            })
            .collect();
        // The case began after `before`, and `duration_ms` before `after` at the latest.
        let latest_start = (self.after - case.duration_ms).max(self.before);
        tidewire_model::check_received(&received, (self.before, latest_start))
    }
}

/// A sequence that failed once and passed when run again at once.
struct Flaky {
    scenario: tidewire_model::Scenario,
    reason: String,
    failed: Run,
    passed: Run,
}

fn print_skipped(skipped: &[tidewire_model::SkippedCheck]) {
    println!(
        "prop: {} check(s) skipped; timestamps must lie within {} ms of the runner's clock, heartbeats within {} ms of heartbeat_ms",
        skipped.len(),
        tidewire_model::CLOCK_TOLERANCE_MS,
        tidewire_model::HEARTBEAT_SLACK_MS
    );
    for check in skipped {
        println!(
            "prop:   skipped {} ({}): {}",
            check.check,
            check.requirements.join(", "),
            check.reason
        );
    }
}

/// Reports sequences that failed once and then passed: not a verdict on the
/// server, but not to be hidden either. Both transcripts go to a file next to
/// the failure file.
fn report_flaky(file: &CaseFile, flaky: &[Flaky]) -> Result<(), PropError> {
    if flaky.is_empty() {
        return Ok(());
    }
    let path = file.out.with_extension("flaky.json");
    let entries: Vec<serde_json::Value> = flaky
        .iter()
        .map(|f| {
            serde_json::json!({
                "reason": f.reason,
                "suite": file.suite(&f.scenario),
                "failed": f.failed.report,
                "passed": f.passed.report,
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&entries).expect("reports serialize");
    text.push('\n');
    std::fs::write(&path, text).map_err(|source| PropError::Write {
        path: path.clone(),
        source,
    })?;
    for f in flaky {
        println!(
            "prop: FLAKY: a sequence of {} operation(s) failed ({}) and passed when run again; not counted as a failure",
            f.scenario.actions.len(),
            f.reason
        );
    }
    println!(
        "prop: FLAKY: {} sequence(s); both transcripts of each are in {}",
        flaky.len(),
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::relative;
    use std::path::{Path, PathBuf};

    #[test]
    fn relative_paths_climb_to_the_common_directory() {
        assert_eq!(
            relative(Path::new("/w/out"), Path::new("/w/spec/schema/set.json")),
            PathBuf::from("../spec/schema/set.json")
        );
        assert_eq!(
            relative(Path::new("/w"), Path::new("/w/set.json")),
            PathBuf::from("set.json")
        );
    }
}
