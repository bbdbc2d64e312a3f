//! Results of a run, the baseline of known failures, and the JSON and JUnit
//! renderings of both.

use crate::fixture::Level;
use crate::pattern::Mismatch;
use crate::schema_set::SchemaViolation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The version of the JSON report's format (`format_version`); raised when
/// a field changes meaning or goes away, not when one is added.
pub const REPORT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// A `should` case failed and `--strict` was not given.
    Warn,
    /// Selected but not run: its profile was not requested, or `--fail-fast`
    /// stopped the run.
    Skip,
    /// Failed, and listed in the baseline of known failures.
    Known,
    /// Failed, then passed when retried (`--retries`).
    Flaky,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Skip => "SKIP",
            Status::Known => "KNOWN",
            Status::Flaky => "FLAKY",
        }
    }

    /// Whether the case found something wrong (and so shows a failure block).
    pub fn found_fault(self) -> bool {
        matches!(
            self,
            Status::Fail | Status::Warn | Status::Known | Status::Flaky
        )
    }
}

/// Which way a transcript entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client to server.
    Out,
    /// Server to client.
    In,
    /// Handshakes and connection ends.
    Event,
}

/// One line of a case transcript.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Entry {
    /// Milliseconds since the case started.
    pub at_ms: f64,
    pub conn: String,
    pub dir: Direction,
    /// `text`, `binary`, or for events `open`, `refused`, `close`, `end`,
    /// `dropped` (entries left out to bound the transcript).
    pub kind: String,
    /// Text payload (cut at 64 KiB), or a description for events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_base64: Option<String>,
    /// Payload size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    /// The frame matched an ignore rule.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_error: Option<String>,
}

impl Entry {
    /// Bytes the entry holds, as counted against transcript budgets.
    fn weight(&self) -> usize {
        64 + self.conn.len()
            + self.kind.len()
            + self.text.as_ref().map_or(0, String::len)
            + self.binary_base64.as_ref().map_or(0, String::len)
            + self.schema_error.as_ref().map_or(0, String::len)
    }
}

/// A case transcript held within a byte budget: the first entries are kept
/// until half the budget is used, then the most recent ones within the other
/// half; what falls between is counted and shown as one `dropped` entry.
#[derive(Debug, Clone)]
pub struct Transcript {
    budget: usize,
    head: Vec<Entry>,
    head_bytes: usize,
    head_closed: bool,
    tail: VecDeque<Entry>,
    tail_bytes: usize,
    dropped: usize,
    dropped_bytes: usize,
    dropped_from_ms: Option<f64>,
}

impl Transcript {
    pub fn new(budget: usize) -> Transcript {
        Transcript {
            budget,
            head: Vec::new(),
            head_bytes: 0,
            head_closed: false,
            tail: VecDeque::new(),
            tail_bytes: 0,
            dropped: 0,
            dropped_bytes: 0,
            dropped_from_ms: None,
        }
    }

    pub fn push(&mut self, entry: Entry) {
        let weight = entry.weight();
        if !self.head_closed && self.head_bytes + weight <= self.budget / 2 {
            self.head_bytes += weight;
            self.head.push(entry);
            return;
        }
        self.head_closed = true;
        self.tail_bytes += weight;
        self.tail.push_back(entry);
        while self.tail_bytes > self.budget / 2 && self.tail.len() > 1 {
            let gone = self.tail.pop_front().expect("more than one entry");
            self.tail_bytes -= gone.weight();
            self.dropped += 1;
            self.dropped_bytes += gone.weight();
            self.dropped_from_ms.get_or_insert(gone.at_ms);
        }
    }

    /// The entry pushed last.
    pub fn last_mut(&mut self) -> Option<&mut Entry> {
        match self.tail.back_mut() {
            Some(entry) => Some(entry),
            None => self.head.last_mut(),
        }
    }

    /// The kept entries in order, with one `dropped` event where entries
    /// were left out.
    pub fn into_entries(self) -> Vec<Entry> {
        let mut entries = self.head;
        if self.dropped > 0 {
            entries.push(Entry {
                at_ms: self.dropped_from_ms.unwrap_or_default(),
                conn: String::new(),
                dir: Direction::Event,
                kind: "dropped".into(),
                text: Some(format!(
                    "{} entries ({} bytes) left out here to keep the transcript within {} bytes",
                    self.dropped, self.dropped_bytes, self.budget
                )),
                binary_base64: None,
                bytes: None,
                ignored: false,
                schema_error: None,
            });
        }
        entries.extend(self.tail);
        entries
    }

    /// `entries` cut down to `budget` bytes the same way.
    pub fn bounded(entries: Vec<Entry>, budget: usize) -> Vec<Entry> {
        let mut transcript = Transcript::new(budget);
        for entry in entries {
            transcript.push(entry);
        }
        transcript.into_entries()
    }

    /// Bytes that [`Transcript::bounded`] counts for `entries`.
    pub fn weight(entries: &[Entry]) -> usize {
        entries.iter().map(Entry::weight).sum()
    }
}

/// Strings in failure values are cut to this many bytes: a frame the size
/// of a flood must not be kept whole in every failed case.
pub const FAILURE_STRING_LIMIT: usize = 4 * 1024;

/// `value` with every string longer than `limit` bytes cut, saying how
/// long it was; objects, arrays, numbers and the rest keep their types.
pub fn bound_value(value: &mut Value, limit: usize) {
    match value {
        Value::String(s) if s.len() > limit => {
            let mut end = limit;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            *s = format!("{}… ({} bytes in all)", &s[..end], s.len());
        }
        Value::Array(items) => items.iter_mut().for_each(|v| bound_value(v, limit)),
        Value::Object(map) => map.values_mut().for_each(|v| bound_value(v, limit)),
        _ => {}
    }
}

impl Failure {
    /// Cuts long strings in the values the failure carries.
    pub fn bound(&mut self, limit: usize) {
        for value in [&mut self.expected, &mut self.received]
            .into_iter()
            .flatten()
        {
            bound_value(value, limit);
        }
        for m in &mut self.mismatches {
            if let Some(actual) = &mut m.actual {
                bound_value(actual, limit);
            }
        }
    }
}

/// The shape of [`SchemaViolation`] in the report's JSON Schema.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct SchemaViolationShape {
    /// Which schema file (as named in the manifest) rejected the frame.
    schema: String,
    /// JSON pointer into the frame.
    instance_path: String,
    message: String,
}

/// The shape of one mismatch in the report's JSON Schema; see
/// [`serialize_mismatches`].
#[derive(JsonSchema)]
#[allow(dead_code)]
struct MismatchShape {
    /// JSON pointer into the received value.
    path: String,
    /// What the pattern asks for there, in words.
    expectation: String,
    /// The pattern's value at `path` when it is a plain JSON value (no
    /// matcher), with its JSON type.
    expected: Option<Value>,
    /// The received value at `path`; absent when the field is missing.
    actual: Option<Value>,
}

/// Why a case failed (or warned).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Failure {
    /// 1-based number of the failing step; `None` when the failure was found
    /// after the last step (a late frame that violates its schema).
    pub step: Option<usize>,
    pub step_kind: Option<String>,
    pub conn: Option<String>,
    /// `file:line:column` of the step (or of the case).
    pub location: String,
    pub message: String,
    /// The pattern (after interpolation) the step waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// The frame that did not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_mismatches"
    )]
    #[schemars(with = "Vec<MismatchShape>")]
    pub mismatches: Vec<Mismatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<SchemaViolationShape>")]
    pub schema_violation: Option<SchemaViolation>,
}

/// Mismatches as data: the expectation in words, and the expected and
/// actual values with their JSON types (a pattern's `2` stays a number).
fn serialize_mismatches<S: Serializer>(mismatches: &[Mismatch], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::{SerializeMap, SerializeSeq};
    let mut seq = s.serialize_seq(Some(mismatches.len()))?;
    for m in mismatches {
        struct One<'a>(&'a Mismatch);
        impl Serialize for One<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let m = self.0;
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("path", &m.path)?;
                map.serialize_entry("expectation", &m.expected)?;
                // A literal pattern value is its own description; matchers
                // (`{"$gte": 1}`) have none to give.
                if let Ok(literal) = serde_json::from_str::<Value>(&m.expected) {
                    map.serialize_entry("expected", &literal)?;
                }
                if let Some(actual) = &m.actual {
                    map.serialize_entry("actual", actual)?;
                }
                map.end()
            }
        }
        seq.serialize_element(&One(m))?;
    }
    seq.end()
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CaseReport {
    pub id: String,
    pub title: String,
    /// `file:line:column` of the case.
    pub location: String,
    /// The suite file.
    pub file: String,
    pub requirements: Vec<String>,
    pub profile: String,
    pub tags: Vec<String>,
    pub level: Level,
    pub status: Status,
    pub duration_ms: f64,
    /// Times the case ran: more than 1 when it failed and was retried.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// For FAIL, WARN, KNOWN and FLAKY (the first failing attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Non-fatal findings, e.g. a sent frame that violates the outbound schema.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub transcript: Vec<Entry>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
    /// Failed, and listed in the baseline.
    pub known: usize,
    /// Failed, then passed on a retry.
    pub flaky: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.known > 0 {
            write!(f, ", {} known", self.known)?;
        }
        if self.flaky > 0 {
            write!(f, ", {} flaky", self.flaky)?;
        }
        write!(f, ", {} warned, {} skipped", self.warned, self.skipped)
    }
}

/// The result of a run, in suite order.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Report {
    /// The version of this format ([`REPORT_FORMAT_VERSION`]); raised when
    /// a field changes meaning or goes away.
    pub format_version: u32,
    /// The version of the runner that wrote the report.
    pub runner_version: String,
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
    /// The machine the runner ran on.
    pub hostname: String,
    /// The target URL.
    pub url: String,
    pub duration_ms: f64,
    pub summary: Summary,
    /// Cases left out by `--case`, `--exclude`, `--tag` or `--partition`.
    pub filtered_out: usize,
    /// Why the run stopped before every case ran, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// The profiles the run tested: those the server claimed, or those
    /// requested; `None` when every profile was. Serialized as part of
    /// `coverage`, which is what it scopes.
    #[serde(skip)]
    pub profiles: Option<Vec<String>>,
    /// Which requirements the cases that ran cite, after [`Report::cover`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    pub cases: Vec<CaseReport>,
}

pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// `time` as RFC 3339 in UTC, to the second.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The name of this machine, for reports; `localhost` when it cannot be told.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl Report {
    pub(crate) fn new(
        url: String,
        started: SystemTime,
        duration: Duration,
        filtered_out: usize,
        cases: Vec<CaseReport>,
    ) -> Report {
        let mut summary = Summary::default();
        for case in &cases {
            match case.status {
                Status::Pass => summary.passed += 1,
                Status::Fail => summary.failed += 1,
                Status::Warn => summary.warned += 1,
                Status::Skip => summary.skipped += 1,
                Status::Known => summary.known += 1,
                Status::Flaky => summary.flaky += 1,
            }
        }
        Report {
            format_version: REPORT_FORMAT_VERSION,
            runner_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: rfc3339(started),
            hostname: hostname(),
            url,
            duration_ms: millis(duration),
            summary,
            filtered_out,
            aborted: None,
            profiles: None,
            coverage: None,
            cases,
        }
    }

    /// Fills in `coverage`: the requirements of the tested profiles that no
    /// case which ran (passed, failed or warned) cites. Skipped cases
    /// checked nothing, so their requirements count as uncovered.
    pub fn cover(&mut self, requirements: &Requirements) {
        let checked: BTreeSet<&str> = self
            .cases
            .iter()
            .filter(|c| c.status != Status::Skip)
            .flat_map(|c| c.requirements.iter().map(String::as_str))
            .collect();
        let cited: BTreeSet<&str> = self
            .cases
            .iter()
            .flat_map(|c| c.requirements.iter().map(String::as_str))
            .collect();
        self.coverage = Some(requirements.coverage(self.profiles.as_deref(), &checked, &cited));
    }

    /// What the run means for CI. Known failures were marked as the cases
    /// finished (see [`RunOptions::baseline`](crate::RunOptions)); cases in
    /// the baseline that passed are listed so the file can shrink.
    pub fn judge(&self, baseline: &Baseline) -> Verdict {
        let mut verdict = Verdict::default();
        for case in &self.cases {
            let listed = baseline.ids.contains(&case.id);
            match case.status {
                Status::Fail if listed => verdict.known_failures.push(case.id.clone()),
                Status::Fail => verdict.new_failures.push(case.id.clone()),
                Status::Known => verdict.known_failures.push(case.id.clone()),
                Status::Flaky => verdict.flaky.push(case.id.clone()),
                Status::Pass | Status::Warn if listed => verdict.fixed.push(case.id.clone()),
                _ => {}
            }
        }
        verdict.aborted = self.aborted.is_some();
        verdict
    }

    /// The full report as pretty JSON; see `conformance/report.schema.json`.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("reports serialize");
        text.push('\n');
        text
    }

    /// The JSON Schema of [`Report::to_json`], as checked in.
    pub fn json_schema_text() -> String {
        let schema = schemars::schema_for!(Report);
        let mut text = serde_json::to_string_pretty(&schema).expect("schemas serialize");
        text.push('\n');
        text
    }

    /// The report as JUnit XML; see [`crate::junit`].
    pub fn to_junit(&self, transcript_lines: usize) -> String {
        crate::junit::render(self, transcript_lines)
    }
}

/// Case ids known to fail; CI fails only on failures outside it.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub ids: BTreeSet<String>,
}

/// A baseline file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    #[error("line {line}: {text:?} is not a case id (ids have no spaces; one id per line, # starts a comment)")]
    NotAnId { line: usize, text: String },
    #[error("{} id(s) match no loaded case: {} (fix or remove them, or pass --allow-stale)", .0.len(), .0.join(", "))]
    Stale(Vec<String>),
}

impl Baseline {
    /// One case id per line; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Baseline, BaselineError> {
        let mut ids = BTreeSet::new();
        for (index, line) in text.lines().enumerate() {
            let id = line.split('#').next().unwrap_or("").trim();
            if id.is_empty() {
                continue;
            }
            if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(BaselineError::NotAnId {
                    line: index + 1,
                    text: id.to_string(),
                });
            }
            ids.insert(id.to_string());
        }
        Ok(Baseline { ids })
    }

    /// Fails when an id matches none of `known` case ids: a typo, or a case
    /// that was renamed or removed.
    pub fn check_stale<'a>(
        &self,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), BaselineError> {
        let known: BTreeSet<&str> = known.into_iter().collect();
        let stale: Vec<String> = self
            .ids
            .iter()
            .filter(|id| !known.contains(id.as_str()))
            .cloned()
            .collect();
        if stale.is_empty() {
            Ok(())
        } else {
            Err(BaselineError::Stale(stale))
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Failed and not in the baseline: these fail the run.
    pub new_failures: Vec<String>,
    /// Failed and in the baseline.
    pub known_failures: Vec<String>,
    /// In the baseline but passed: the baseline can shrink.
    pub fixed: Vec<String>,
    /// Failed, then passed on a retry: these fail the run unless allowed.
    pub flaky: Vec<String>,
    /// The run stopped before every case ran.
    pub aborted: bool,
}

impl Verdict {
    /// Whether the run passes; flaky cases pass only with `allow_flaky`.
    pub fn ok(&self, allow_flaky: bool) -> bool {
        self.new_failures.is_empty() && !self.aborted && (allow_flaky || self.flaky.is_empty())
    }
}

/// One entry of a requirements file (`--requirements`), a JSON array of
/// these objects. Fields beyond these are allowed and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Requirement {
    pub id: String,
    /// The profile whose servers must meet it.
    pub profile: String,
    /// An RFC 2119 key word: `MUST`, `MUST NOT`, `SHOULD`, `SHOULD NOT`, `MAY`.
    pub level: String,
    /// Who must meet it; entries present and other than `server` (a client
    /// requirement, say) are not a server's to meet and are left out.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    /// Profiles that bring it into scope besides `profile`: for
    /// requirements of a part of the protocol that servers never list as a
    /// profile of its own.
    #[serde(default)]
    pub applies_with: Vec<String>,
}

/// How a requirement level is counted in coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// `MUST`, `MUST NOT`.
    Must,
    /// `SHOULD`, `SHOULD NOT`.
    Should,
    /// `MAY`: allows, so there is nothing to cover.
    May,
}

impl Requirement {
    pub fn strength(&self) -> Option<Strength> {
        match self.level.as_str() {
            "MUST" | "MUST NOT" => Some(Strength::Must),
            "SHOULD" | "SHOULD NOT" => Some(Strength::Should),
            "MAY" => Some(Strength::May),
            _ => None,
        }
    }

    /// Whether a server must meet it (no `subject`, or `server`).
    pub fn is_server(&self) -> bool {
        self.subject.as_deref().is_none_or(|s| s == "server")
    }

    /// Whether it is in scope when `profiles` are tested (`None`: all).
    pub fn in_scope(&self, profiles: Option<&[String]>) -> bool {
        profiles.is_none_or(|tested| {
            tested.contains(&self.profile) || self.applies_with.iter().any(|p| tested.contains(p))
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RequirementsError {
    #[error("cannot read requirements file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a requirements file (a JSON array of {{id, profile, level}} objects)")]
    Format {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// A loaded requirements file, in its order.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub list: Vec<Requirement>,
}

impl Requirements {
    pub fn load(path: &Path) -> Result<Requirements, RequirementsError> {
        let text = std::fs::read_to_string(path).map_err(|source| RequirementsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Requirements::parse(&path.display().to_string(), &text)
    }

    /// Parses a requirements file given as text; `path` names it in errors.
    /// Ids must be unique and levels RFC 2119 key words.
    pub fn parse(path: &str, text: &str) -> Result<Requirements, RequirementsError> {
        let list: Vec<Requirement> =
            serde_json::from_str(text).map_err(|source| RequirementsError::Format {
                path: path.to_string(),
                source,
            })?;
        let invalid = |message: String| RequirementsError::Invalid {
            path: path.to_string(),
            message,
        };
        let mut seen = BTreeSet::new();
        for r in &list {
            if r.id.trim().is_empty() {
                return Err(invalid("a requirement has an empty id".into()));
            }
            if !seen.insert(r.id.as_str()) {
                return Err(invalid(format!("requirement {} is listed twice", r.id)));
            }
            if r.strength().is_none() {
                return Err(invalid(format!(
                    "requirement {} has level {:?}; expected MUST, MUST NOT, SHOULD, SHOULD NOT or MAY",
                    r.id, r.level
                )));
            }
        }
        Ok(Requirements { list })
    }

    pub fn get(&self, id: &str) -> Option<&Requirement> {
        self.list.iter().find(|r| r.id == id)
    }

    /// Coverage of the server requirements in scope for `profiles` (`None`:
    /// all): those `checked` cites are covered; ids in `cited` that the file
    /// does not list are reported as unlisted.
    pub fn coverage(
        &self,
        profiles: Option<&[String]>,
        checked: &BTreeSet<&str>,
        cited: &BTreeSet<&str>,
    ) -> Coverage {
        let mut coverage = Coverage {
            profiles: Vec::new(),
            must: Tally::default(),
            should: Tally::default(),
            unlisted: Vec::new(),
        };
        for r in self
            .list
            .iter()
            .filter(|r| r.is_server() && r.in_scope(profiles))
        {
            let tally = match r.strength() {
                Some(Strength::Must) => &mut coverage.must,
                Some(Strength::Should) => &mut coverage.should,
                Some(Strength::May) | None => continue,
            };
            if !coverage.profiles.contains(&r.profile) {
                coverage.profiles.push(r.profile.clone());
            }
            tally.total += 1;
            if checked.contains(r.id.as_str()) {
                tally.covered += 1;
            } else {
                tally.uncovered.push(r.id.clone());
            }
        }
        let listed: BTreeSet<&str> = self.list.iter().map(|r| r.id.as_str()).collect();
        coverage.unlisted = cited
            .iter()
            .filter(|id| !listed.contains(*id))
            .map(|id| id.to_string())
            .collect();
        coverage
    }
}

/// Requirement coverage of a run (or of a selection, for `list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Coverage {
    /// The profiles whose requirements were counted, in the order of the
    /// requirements file: the tested ones and those they bring in.
    pub profiles: Vec<String>,
    /// `MUST` and `MUST NOT` server requirements.
    pub must: Tally,
    /// `SHOULD` and `SHOULD NOT` server requirements.
    pub should: Tally,
    /// Ids cited by cases that the requirements file does not list
    /// (typos, or a file out of date), sorted.
    pub unlisted: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Tally {
    pub total: usize,
    pub covered: usize,
    /// Ids no case covers, in the order of the requirements file.
    pub uncovered: Vec<String>,
}
