//! Case selection and scheduling.

use crate::conn::{Conn, ConnectError, End, Limits, Next, Payload, Received};
use crate::engine;
use crate::fixture::{LoadedCase, Suite};
use crate::report::{CaseReport, Coverage, Report, Requirements, Status};
use crate::schema_set::{Claims, ClaimsError};
use crate::target::{Target, TargetError};
use crate::tls::TlsConfig;
use futures_util::stream::{FuturesUnordered, StreamExt};
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    pub auth: Option<Auth>,
    /// Headers added to every handshake (unless the step sets `inject: false`).
    pub headers: Vec<(String, String)>,
    /// Cases run concurrently.
    pub jobs: usize,
    /// Stop starting cases after the first failure.
    pub fail_fast: bool,
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
            auth: None,
            headers: Vec::new(),
            jobs: 1,
            fail_fast: false,
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
    #[error("cannot tell which profiles {url} claims: {reason} (pass --profile to choose them)")]
    Claims { url: String, reason: ClaimsError },
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
            let missing: Vec<String> = case
                .case
                .needs
                .iter()
                .filter(|name| !self.options.has_var(name))
                .cloned()
                .collect();
            let skip =
                if !filter.profiles.is_empty() && !filter.profiles.contains(&case.case.profile) {
                    Some(Skip::Profile(format!(
                        "profile {:?} not requested",
                        case.case.profile
                    )))
                } else if let Some(claimed) = claimed.filter(|c| !c.contains(&case.case.profile)) {
                    Some(Skip::Profile(format!(
                        "profile {:?} not claimed by the server (it claims: {})",
                        case.case.profile,
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

        let total = plan.cases.len();
        let mut results: Vec<Option<CaseReport>> = vec![None; total];
        let mut pending = plan.cases.iter().enumerate();
        let mut running = FuturesUnordered::new();
        let mut done = 0;
        let mut stop = false;
        let jobs = self.options.jobs.max(1);
        loop {
            while !stop && running.len() < jobs {
                let Some((index, planned)) = pending.next() else {
                    break;
                };
                if let Some(reason) = &planned.skip {
                    let report = skipped(planned.case, &reason.to_string());
                    done += 1;
                    observer.finished(&report, done, total);
                    results[index] = Some(report);
                    continue;
                }
                observer.started(planned.case, running.len() + 1, done, total);
                let target = &target;
                let options = &self.options;
                running.push(async move {
                    (index, engine::run_case(target, options, planned.case).await)
                });
            }
            let Some((index, report)) = running.next().await else {
                break;
            };
            done += 1;
            if report.status == Status::Fail && self.options.fail_fast {
                stop = true;
            }
            observer.finished(&report, done, total);
            results[index] = Some(report);
        }
        for (index, planned) in pending {
            let report = skipped(planned.case, "not run: --fail-fast stopped the run");
            done += 1;
            observer.finished(&report, done, total);
            results[index] = Some(report);
        }
        let mut report = Report::new(
            url.to_string(),
            started.elapsed(),
            plan.filtered_out,
            results
                .into_iter()
                .map(|r| r.expect("every case reported"))
                .collect(),
        );
        report.profiles = claimed.or_else(|| self.requested_profiles());
        Ok(report)
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
            max_message: self.options.max_frame,
            max_buffered: 16,
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

/// The report fields that describe the case rather than its outcome.
pub(crate) fn case_header(case: &LoadedCase) -> CaseReport {
    CaseReport {
        id: case.case.id.clone(),
        title: case.case.title.clone(),
        location: format!("{}:{}", case.file, case.position),
        file: case.file.clone(),
        requirements: case.case.requirements.clone(),
        profile: case.case.profile.clone(),
        tags: case.case.tags.clone(),
        level: case.case.level,
        status: Status::Skip,
        duration_ms: 0.0,
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
