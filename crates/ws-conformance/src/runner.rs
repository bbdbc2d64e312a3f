//! Case selection and scheduling.

use crate::conn::{Conn, ConnectError, End, Limits, Next, Payload, Received};
use crate::engine;
use crate::expr::Count;
use crate::fixture::{LoadedCase, Step, Suite};
use crate::report::{
    Baseline, CaseReport, Coverage, Report, Requirements, Status, Transcript, FAILURE_STRING_LIMIT,
};
use crate::schema_set::{Claims, ClaimsError};
use crate::target::{Target, TargetError};
use crate::tls::TlsConfig;
use futures_util::stream::{FuturesUnordered, StreamExt};
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Query parameters or headers, in order.
pub(crate) type Pairs = Vec<(String, String)>;

/// How `--token` is presented in each handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Added as the query parameter `param`.
    Query { param: String, token: String },
    /// Sent as `Authorization: Bearer <token>`.
    Bearer(String),
}

/// Which cases run. Empty lists select everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Case id globs; a case must match one.
    pub cases: Vec<String>,
    /// Case id globs; a case matching one is left out.
    pub exclude: Vec<String>,
    /// A case must carry one of these tags.
    pub tags: Vec<String>,
    /// Cases of other profiles are reported as skipped.
    pub profiles: Vec<String>,
    /// Only this shard of the selection (`--partition K/N`).
    pub partition: Option<Partition>,
}

/// Shard K of N (1-based): the K-th, (K+N)-th, ... selected case, so that
/// N CI jobs given 1/N .. N/N run every selected case exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub shard: usize,
    pub of: usize,
}

impl std::str::FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Partition, String> {
        let bad = || format!("{s:?} is not a partition like 1/3 (shard K of N, 1 <= K <= N)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let shard: usize = k.trim().parse().map_err(|_| bad())?;
        let of: usize = n.trim().parse().map_err(|_| bad())?;
        if shard == 0 || of == 0 || shard > of {
            return Err(bad());
        }
        Ok(Partition { shard, of })
    }
}

impl Partition {
    /// Whether the `index`-th selected case (0-based) is in this shard.
    pub fn contains(&self, index: usize) -> bool {
        index % self.of == self.shard - 1
    }
}

/// Bytes of received frames not yet consumed, counted across every
/// connection of a run (clones share the count), with a limit.
#[derive(Debug, Clone)]
pub struct BufferBudget {
    limit: usize,
    used: Arc<AtomicUsize>,
}

impl BufferBudget {
    pub fn new(limit: usize) -> BufferBudget {
        BufferBudget {
            limit,
            used: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `bytes` from the budget, or says no and takes nothing.
    pub(crate) fn take(&self, bytes: usize) -> bool {
        let before = self.used.fetch_add(bytes, Ordering::AcqRel);
        if before + bytes > self.limit {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        true
    }

    pub(crate) fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Default timeout of each waiting step and handshake.
    pub step_timeout: Duration,
    /// Default deadline of a whole case.
    pub case_timeout: Duration,
    /// Largest message or frame accepted from the server, in bytes.
    pub max_frame: usize,
    /// Most unconsumed frames held per connection before the case fails.
    pub max_buffered: usize,
    /// Most bytes of unconsumed frames held per connection before the case
    /// fails as flooded.
    pub max_buffered_bytes: usize,
    /// Bytes of unconsumed frames held across all connections of the run.
    pub run_buffer: BufferBudget,
    /// Bytes of transcript kept per case (first and last entries).
    pub max_transcript_bytes: usize,
    /// Bytes of transcript kept across the whole report; once used up,
    /// later cases keep only a little of theirs.
    pub max_report_transcript_bytes: usize,
    pub auth: Option<Auth>,
    /// Headers added to every handshake (unless the step sets `inject: false`).
    pub headers: Vec<(String, String)>,
    /// Cases run concurrently.
    pub jobs: usize,
    /// Stop starting cases after the first failure.
    pub fail_fast: bool,
    /// Stop starting cases after this many failures.
    pub max_fail: Option<usize>,
    /// Abort the run when this many cases in a row fail and the target then
    /// refuses TCP connections: the server is gone.
    pub max_unreachable: usize,
    /// Run a failing case up to this many more times; one that then passes
    /// is FLAKY.
    pub retries: u32,
    /// Known failures: these cases FAIL as KNOWN.
    pub baseline: Baseline,
    /// Treat failures of `should` cases as failures, not warnings.
    pub strict: bool,
    pub filter: Filter,
    /// Values (`--var NAME=VALUE`) that every case starts with, as if
    /// captured; cases list the ones they cannot run without in `needs`.
    pub vars: BTreeMap<String, String>,
    /// Variables whose value is made afresh when each case starts, such as a
    /// token that expires seconds after it is minted.
    pub fresh_vars: Option<FreshVars>,
    /// Trust roots for `wss://` endpoints.
    pub tls: TlsConfig,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            step_timeout: Duration::from_secs(5),
            case_timeout: Duration::from_secs(60),
            max_frame: 16 * 1024 * 1024,
            max_buffered: 10_000,
            max_buffered_bytes: 8 * 1024 * 1024,
            run_buffer: BufferBudget::new(32 * 1024 * 1024),
            max_transcript_bytes: 256 * 1024,
            max_report_transcript_bytes: 4 * 1024 * 1024,
            auth: None,
            headers: Vec::new(),
            jobs: 1,
            fail_fast: false,
            max_fail: None,
            max_unreachable: 3,
            retries: 0,
            baseline: Baseline::default(),
            strict: false,
            filter: Filter::default(),
            vars: BTreeMap::new(),
            fresh_vars: None,
            tls: TlsConfig::default(),
        }
    }
}

/// Makes the values of some variables when a case starts (after `--var`
/// values, which take precedence).
#[derive(Clone)]
pub struct FreshVars {
    names: Vec<String>,
    make: Arc<dyn Fn() -> BTreeMap<String, String> + Send + Sync>,
}

impl FreshVars {
    /// `make` must return a value for each of `names`.
    pub fn new(
        names: Vec<String>,
        make: impl Fn() -> BTreeMap<String, String> + Send + Sync + 'static,
    ) -> FreshVars {
        FreshVars {
            names,
            make: Arc::new(make),
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub(crate) fn make(&self) -> BTreeMap<String, String> {
        (self.make)()
    }
}

impl std::fmt::Debug for FreshVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshVars")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// Whether every case starts with the variable `name`.
    pub(crate) fn has_var(&self, name: &str) -> bool {
        self.vars.contains_key(name)
            || self
                .fresh_vars
                .as_ref()
                .is_some_and(|f| f.names.iter().any(|n| n == name))
    }

    /// The limits of every connection a case opens.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_message: self.max_frame,
            max_buffered: self.max_buffered,
            max_buffered_bytes: self.max_buffered_bytes,
            run: self.run_buffer.clone(),
        }
    }

    /// Failures after which no new case starts.
    fn failure_limit(&self) -> Option<usize> {
        if self.fail_fast {
            Some(1)
        } else {
            self.max_fail
        }
    }

    /// Query pairs and headers that `--token` and `--header` add to a handshake.
    pub(crate) fn injected(&self) -> (Pairs, Pairs) {
        let mut query = Vec::new();
        let mut headers = Vec::new();
        match &self.auth {
            Some(Auth::Query { param, token }) => query.push((param.clone(), token.clone())),
            Some(Auth::Bearer(token)) => {
                headers.push(("Authorization".into(), format!("Bearer {token}")))
            }
            None => {}
        }
        headers.extend(self.headers.iter().cloned());
        (query, headers)
    }
}

/// Problems that stop a run before any case can be judged (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("cannot reach {url}")]
    Unreachable {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach {url}: no TCP connection within {} ms", .within.as_millis())]
    NoConnectionInTime { url: String, within: Duration },
    #[error("invalid glob {glob:?}")]
    Glob {
        glob: String,
        #[source]
        source: globset::Error,
    },
    #[error("no cases selected ({total} loaded)")]
    NothingSelected { total: usize },
    // The reason reads inside the sentence, so it is not a separate cause.
    #[error("cannot tell which profiles {url} claims: {reason}{}", claims_hint(.reason))]
    Claims { url: String, reason: ClaimsError },
}

/// The flags that would get past a claims error, and only those: choosing
/// the profiles does not help when no handshake succeeds.
fn claims_hint(reason: &ClaimsError) -> &'static str {
    match reason {
        ClaimsError::FirstFrame(FirstFrameError::Refused { status: 401 | 403 }) => {
            " (pass --token if the endpoint needs one)"
        }
        ClaimsError::FirstFrame(FirstFrameError::NoFrame(_)) => {
            " (pass --profile to choose them, or --timeout to wait longer)"
        }
        ClaimsError::FirstFrame(
            FirstFrameError::Request(_)
            | FirstFrameError::Refused { .. }
            | FirstFrameError::NoSubprotocol
            | FirstFrameError::Handshake(_)
            | FirstFrameError::HandshakeTimeout,
        ) => "",
        _ => " (pass --profile to choose them)",
    }
}

/// Why a connection gave no first frame to read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FirstFrameError {
    #[error("{0}")]
    Request(String),
    #[error("the handshake was refused with HTTP {status}")]
    Refused { status: u16 },
    #[error("the handshake selected no subprotocol")]
    NoSubprotocol,
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("no handshake response in time")]
    HandshakeTimeout,
    #[error("the first frame is not JSON: {text}")]
    NotJson { text: String },
    #[error("the first frame is binary")]
    Binary,
    #[error("the connection ended first: {0}")]
    Ended(End),
    #[error("no frame within {} ms", .0.as_millis())]
    NoFrame(Duration),
}

/// A selected case and, if it will not run, why.
#[derive(Debug, Clone)]
pub struct Planned<'a> {
    pub case: &'a LoadedCase,
    pub skip: Option<Skip>,
}

/// Why a selected case will not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Its profile was not requested, or the server does not claim it.
    Profile(String),
    /// These variables it needs were not given.
    Needs(Vec<String>),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Profile(reason) => f.write_str(reason),
            Skip::Needs(names) => {
                f.write_str("needs")?;
                for name in names {
                    write!(f, " --var {name}=...")?;
                }
                Ok(())
            }
        }
    }
}

/// What will run, in suite order.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub cases: Vec<Planned<'a>>,
    /// Cases left out by the filter.
    pub filtered_out: usize,
}

impl Plan<'_> {
    /// Requirement coverage of the selection, before anything runs. Cases
    /// skipped for their profile cover nothing; cases that only lack
    /// variables count, since a selection is listed to see what the suites
    /// cover once given what they need.
    pub fn coverage(&self, requirements: &Requirements, profiles: Option<&[String]>) -> Coverage {
        let checked: BTreeSet<&str> = self
            .cases
            .iter()
            .filter(|p| !matches!(p.skip, Some(Skip::Profile(_))))
            .flat_map(|p| p.case.case.requirements.iter().map(String::as_str))
            .collect();
        let cited: BTreeSet<&str> = self
            .cases
            .iter()
            .flat_map(|p| p.case.case.requirements.iter().map(String::as_str))
            .collect();
        requirements.coverage(profiles, &checked, &cited)
    }
}

/// What a wait of unknown length is taken to cost when ordering cases: one
/// computed from the server's announced values (a heartbeat, a token's
/// lifetime) is typically the longest step of its case.
const COMPUTED_WAIT_MS: u64 = 1000;

/// How long a case will spend waiting on timers rather than on replies,
/// judged from its steps alone: silences and sleeps last their whole length,
/// and a step given its own timeout or close bound awaits something the
/// server sends on a timer. A reply awaited under the default timeout costs
/// nothing here, since it comes as fast as the server answers.
fn expected_wait_ms(case: &LoadedCase) -> u64 {
    let length = |count: Option<&Count>| match count {
        None => 0,
        Some(count) => count.fixed().unwrap_or(COMPUTED_WAIT_MS),
    };
    case.case
        .steps
        .iter()
        .map(|step| match step {
            Step::ExpectSilence(s) => length(Some(&s.for_ms)),
            Step::Wait(w) => length(Some(&w.ms)),
            Step::Expect(e) => length(e.timeout_ms.as_ref()),
            Step::ExpectAll(e) => length(e.timeout_ms.as_ref()),
            Step::ExpectRepeated(e) => length(e.timeout_ms.as_ref()),
            Step::ExpectClose(e) => length(e.within_ms.as_ref()),
            _ => 0,
        })
        .fold(0, u64::saturating_add)
}

/// The plan's cases in the order to start them, with their plan index: the
/// longest waits first, as a run's wall time is bounded below by its last
/// long case to start, and many short cases fill the slots around them.
/// Cases of equal expected wait keep their order in the plan.
fn longest_first<'p, 'a>(cases: &'p [Planned<'a>]) -> Vec<(usize, &'p Planned<'a>)> {
    let mut order: Vec<(usize, &Planned)> = cases.iter().enumerate().collect();
    order.sort_by_key(|(_, planned)| std::cmp::Reverse(expected_wait_ms(planned.case)));
    order
}

/// Progress notifications, e.g. for a terminal reporter.
pub trait Observer {
    fn started(&mut self, _case: &LoadedCase, _running: usize, _done: usize, _total: usize) {}
    fn finished(&mut self, _report: &CaseReport, _done: usize, _total: usize) {}
}

impl Observer for () {}

pub struct Runner {
    options: RunOptions,
}

fn globset(globs: &[String]) -> Result<Option<GlobSet>, SetupError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for g in globs {
        builder.add(Glob::new(g).map_err(|source| SetupError::Glob {
            glob: g.clone(),
            source,
        })?);
    }
    builder
        .build()
        .map(Some)
        .map_err(|source| SetupError::Glob {
            glob: globs.join(" "),
            source,
        })
}

impl Runner {
    pub fn new(options: RunOptions) -> Runner {
        Runner { options }
    }

    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// Applies the filter to the loaded suites.
    pub fn plan<'a>(&self, suites: &'a [Suite]) -> Result<Plan<'a>, SetupError> {
        self.plan_claimed(suites, None)
    }

    /// Like [`Runner::plan`]; with `claimed`, cases of profiles the server
    /// does not claim are skipped as such.
    fn plan_claimed<'a>(
        &self,
        suites: &'a [Suite],
        claimed: Option<&[String]>,
    ) -> Result<Plan<'a>, SetupError> {
        let filter = &self.options.filter;
        let include = globset(&filter.cases)?;
        let exclude = globset(&filter.exclude)?;
        let mut plan = Plan {
            cases: Vec::new(),
            filtered_out: 0,
        };
        let mut selected_index = 0;
        for case in suites.iter().flat_map(|s| &s.cases) {
            let id = case.case.id.as_str();
            let selected = include.as_ref().is_none_or(|g| g.is_match(id))
                && !exclude.as_ref().is_some_and(|g| g.is_match(id))
                && (filter.tags.is_empty()
                    || case.case.tags.iter().any(|t| filter.tags.contains(t)));
            if !selected {
                plan.filtered_out += 1;
                continue;
            }
            let index = selected_index;
            selected_index += 1;
            if filter.partition.is_some_and(|p| !p.contains(index)) {
                plan.filtered_out += 1;
                continue;
            }
            let missing: Vec<String> = case
                .case
                .needs
                .iter()
                .filter(|name| !self.options.has_var(name))
                .cloned()
                .collect();
            let profiles = case.case.profiles();
            let unrequested = profiles
                .clone()
                .find(|p| !filter.profiles.is_empty() && !filter.profiles.contains(p));
            let unclaimed =
                claimed.and_then(|c| profiles.clone().find(|p| !c.contains(p)).map(|p| (p, c)));
            let skip = if let Some(profile) = unrequested {
                Some(Skip::Profile(format!("profile {profile:?} not requested")))
            } else if let Some((profile, claimed)) = unclaimed {
                Some(Skip::Profile(format!(
                    "profile {profile:?} not claimed by the server (it claims: {})",
                    claimed.join(", ")
                )))
            } else if !missing.is_empty() {
                Some(Skip::Needs(missing))
            } else {
                None
            };
            plan.cases.push(Planned { case, skip });
        }
        Ok(plan)
    }

    /// Runs the selected cases against `url`.
    pub async fn run(&self, url: &str, suites: &[Suite]) -> Result<Report, SetupError> {
        self.run_with(url, suites, &mut ()).await
    }

    /// Like [`Runner::run`], telling `observer` as cases start and finish.
    pub async fn run_with(
        &self,
        url: &str,
        suites: &[Suite],
        observer: &mut dyn Observer,
    ) -> Result<Report, SetupError> {
        let started = Instant::now();
        let started_at = SystemTime::now();
        let target = Target::parse(url)?;
        let selection = self.plan(suites)?;
        if selection.cases.is_empty() {
            return Err(SetupError::NothingSelected {
                total: selection.filtered_out,
            });
        }
        self.preflight(&target).await?;
        let claims = suites
            .iter()
            .flat_map(|s| &s.cases)
            .find_map(|c| c.schemas.as_ref().and_then(|s| s.claims().cloned()));
        let claimed = match claims {
            Some(claims) if self.options.filter.profiles.is_empty() => {
                Some(self.claimed_profiles(&target, &claims).await?)
            }
            _ => None,
        };
        let plan = self.plan_claimed(suites, claimed.as_deref())?;

        let mut schedule = Schedule::new(&self.options, plan.cases.len());
        let mut pending = longest_first(&plan.cases).into_iter();
        let mut running = FuturesUnordered::new();
        let jobs = self.options.jobs.max(1);
        loop {
            while schedule.stopped.is_none() && running.len() < jobs {
                let Some((index, planned)) = pending.next() else {
                    break;
                };
                if let Some(reason) = &planned.skip {
                    schedule.finish(index, skipped(planned.case, &reason.to_string()), observer);
                    continue;
                }
                observer.started(
                    planned.case,
                    running.len() + 1,
                    schedule.done,
                    schedule.total,
                );
                let target = &target;
                let runner = self;
                running.push(async move {
                    (index, runner.run_with_retries(target, planned.case).await)
                });
            }
            let Some((index, (report, unreachable))) = running.next().await else {
                break;
            };
            schedule.judge(&report, unreachable, target.as_str());
            schedule.finish(index, report, observer);
        }
        let reason = match &schedule.stopped {
            Some(Stop::Aborted(why)) => format!("not run: {why}"),
            _ => "not run: --fail-fast or --max-fail stopped the run".to_string(),
        };
        for (index, planned) in pending {
            schedule.finish(index, skipped(planned.case, &reason), observer);
        }
        let mut report = Report::new(
            url.to_string(),
            started_at,
            started.elapsed(),
            plan.filtered_out,
            schedule
                .results
                .into_iter()
                .map(|r| r.expect("every case reported"))
                .collect(),
        );
        if let Some(Stop::Aborted(why)) = schedule.stopped {
            report.aborted = Some(why);
        }
        report.profiles = claimed.or_else(|| self.requested_profiles());
        Ok(report)
    }

    /// Runs a case, again up to `retries` times while it fails; says too
    /// whether the target refused TCP connections after a failure.
    async fn run_with_retries(&self, target: &Target, case: &LoadedCase) -> (CaseReport, bool) {
        let options = &self.options;
        let known = options.baseline.ids.contains(&case.case.id);
        let mut first = engine::run_case(target, options, case).await;
        let mut attempts = 1;
        // A known failure is expected to fail: retrying it only costs time.
        while first.status == Status::Fail && !known && attempts <= options.retries {
            attempts += 1;
            let again = engine::run_case(target, options, case).await;
            if again.status == Status::Pass {
                first.status = Status::Flaky;
                break;
            }
        }
        first.attempts = attempts;
        if first.status == Status::Fail && known {
            first.status = Status::Known;
        }
        let unreachable = first.status == Status::Fail && self.probe(target).await.is_err();
        (first, unreachable)
    }

    /// The profiles given with `--profile`, or `None` (all).
    pub fn requested_profiles(&self) -> Option<Vec<String>> {
        let profiles = &self.options.filter.profiles;
        (!profiles.is_empty()).then(|| profiles.clone())
    }

    /// Opens one connection and reads the profiles the server lists in its
    /// first frame, as the schema set's `claims` describes.
    pub async fn claimed_profiles(
        &self,
        target: &Target,
        claims: &Claims,
    ) -> Result<Vec<String>, SetupError> {
        let frame = self.first_frame(target).await;
        frame
            .map_err(ClaimsError::from)
            .and_then(|frame| claims.profiles(&frame))
            .map_err(|reason| SetupError::Claims {
                url: target.as_str().to_string(),
                reason,
            })
    }

    /// Opens one connection, offering no subprotocol, and returns the first
    /// frame the server sends, parsed as JSON; the error says why there is
    /// none.
    pub async fn first_frame(&self, target: &Target) -> Result<serde_json::Value, FirstFrameError> {
        let (query, headers) = self.options.injected();
        let request = engine::build_request(&target.url_for(None, &query), &headers, None)
            .map_err(FirstFrameError::Request)?;
        let limits = Limits {
            max_buffered: 16,
            ..self.options.limits()
        };
        let deadline = tokio::time::Instant::now() + self.options.step_timeout;
        let mut conn = match tokio::time::timeout_at(
            deadline,
            Conn::connect(request, limits, &self.options.tls),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(ConnectError::Refused { status, .. })) => {
                return Err(FirstFrameError::Refused { status })
            }
            Ok(Err(ConnectError::NoSubprotocol)) => return Err(FirstFrameError::NoSubprotocol),
            Ok(Err(ConnectError::Other(e))) => return Err(FirstFrameError::Handshake(e)),
            Err(_) => return Err(FirstFrameError::HandshakeTimeout),
        };
        let first = conn.next(deadline).await;
        let _ = tokio::time::timeout(Duration::from_millis(500), conn.close(1000, "")).await;
        match first {
            Next::Frame(Received {
                payload: Payload::Text(text),
                ..
            }) => serde_json::from_str(&text).map_err(|_| FirstFrameError::NotJson { text }),
            Next::Frame(_) => Err(FirstFrameError::Binary),
            Next::End(end, _) => Err(FirstFrameError::Ended(end)),
            Next::Timeout => Err(FirstFrameError::NoFrame(self.options.step_timeout)),
        }
    }

    /// A refused TCP connection is a setup problem, not a failure of every
    /// case: it usually means a wrong URL or a server that did not start.
    async fn preflight(&self, target: &Target) -> Result<(), SetupError> {
        self.probe(target).await
    }

    /// Whether the target accepts a TCP connection within the step timeout.
    async fn probe(&self, target: &Target) -> Result<(), SetupError> {
        let addr = target.socket_addr();
        let url = target.as_str().to_string();
        match tokio::time::timeout(
            self.options.step_timeout,
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(SetupError::Unreachable { url, source }),
            Err(_) => Err(SetupError::NoConnectionInTime {
                url,
                within: self.options.step_timeout,
            }),
        }
    }
}

/// Why no new case starts.
enum Stop {
    /// `--fail-fast` or `--max-fail`.
    Failures,
    /// The server is gone; the text says so.
    Aborted(String),
}

/// The bookkeeping of a run in progress: results in suite order, counts,
/// and whether to go on.
struct Schedule {
    results: Vec<Option<CaseReport>>,
    total: usize,
    done: usize,
    failures: usize,
    failure_limit: Option<usize>,
    unreachable_in_a_row: usize,
    max_unreachable: usize,
    transcript_room: usize,
    stopped: Option<Stop>,
}

/// What a case keeps of its transcript once the report's budget is spent.
const SPENT_TRANSCRIPT_BYTES: usize = 4 * 1024;

impl Schedule {
    fn new(options: &RunOptions, total: usize) -> Schedule {
        Schedule {
            results: vec![None; total],
            total,
            done: 0,
            failures: 0,
            failure_limit: options.failure_limit(),
            unreachable_in_a_row: 0,
            max_unreachable: options.max_unreachable.max(1),
            transcript_room: options.max_report_transcript_bytes,
            stopped: None,
        }
    }

    /// Counts a finished case toward the limits that stop a run.
    fn judge(&mut self, report: &CaseReport, unreachable: bool, url: &str) {
        if report.status == Status::Fail {
            self.failures += 1;
        }
        if self
            .failure_limit
            .is_some_and(|limit| self.failures >= limit)
        {
            self.stopped.get_or_insert(Stop::Failures);
        }
        if unreachable {
            self.unreachable_in_a_row += 1;
        } else if report.status != Status::Skip {
            self.unreachable_in_a_row = 0;
        }
        if self.unreachable_in_a_row >= self.max_unreachable
            && !matches!(self.stopped, Some(Stop::Aborted(_)))
        {
            self.stopped = Some(Stop::Aborted(format!(
                "{url} stopped answering: {} cases in a row failed and it then refused TCP connections",
                self.unreachable_in_a_row
            )));
        }
    }

    /// Bounds the case's transcript by what is left of the report's budget,
    /// stores the case and tells the observer.
    fn finish(&mut self, index: usize, mut report: CaseReport, observer: &mut dyn Observer) {
        if let Some(failure) = &mut report.failure {
            failure.bound(FAILURE_STRING_LIMIT);
        }
        let weight = Transcript::weight(&report.transcript);
        if weight > self.transcript_room {
            let keep = self.transcript_room.max(SPENT_TRANSCRIPT_BYTES);
            report.transcript = Transcript::bounded(std::mem::take(&mut report.transcript), keep);
        }
        self.transcript_room = self
            .transcript_room
            .saturating_sub(Transcript::weight(&report.transcript));
        self.done += 1;
        observer.finished(&report, self.done, self.total);
        self.results[index] = Some(report);
    }
}

/// The report fields that describe the case rather than its outcome.
pub(crate) fn case_header(case: &LoadedCase) -> CaseReport {
    CaseReport {
        id: case.case.id.clone(),
        title: case.case.title.clone(),
        location: format!("{}:{}", case.file, case.position),
        file: case.file.clone(),
        requirements: case.case.requirements.clone(),
        profile: case.case.profile.clone().unwrap_or_default(),
        tags: case.case.tags.clone(),
        level: case.case.level,
        status: Status::Skip,
        duration_ms: 0.0,
        attempts: 0,
        skip_reason: None,
        failure: None,
        warnings: Vec::new(),
        transcript: Vec::new(),
    }
}

fn skipped(case: &LoadedCase, reason: &str) -> CaseReport {
    CaseReport {
        skip_reason: Some(reason.to_string()),
        ..case_header(case)
    }
}
