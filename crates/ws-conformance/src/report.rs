//! Results of a run, the baseline of known failures, and the JSON and JUnit
//! renderings of both.

use crate::fixture::Level;
use crate::pattern::Mismatch;
use crate::schema_set::SchemaViolation;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// A `should` case failed and `--strict` was not given.
    Warn,
    /// Selected but not run: its profile was not requested, or `--fail-fast`
    /// stopped the run.
    Skip,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Skip => "SKIP",
        }
    }
}

/// Which way a transcript entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Milliseconds since the case started.
    pub at_ms: f64,
    pub conn: String,
    pub dir: Direction,
    /// `text`, `binary`, or for events `open`, `refused`, `close`, `end`.
    pub kind: String,
    /// Text payload (cut at 64 KiB), or a description for events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_base64: Option<String>,
    /// Payload size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    /// The frame matched an ignore rule.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_error: Option<String>,
}

/// Why a case failed (or warned).
#[derive(Debug, Clone, Serialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// The frame that did not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_violation: Option<SchemaViolation>,
}

#[derive(Debug, Clone, Serialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Non-fatal findings, e.g. a sent frame that violates the outbound schema.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub transcript: Vec<Entry>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} warned, {} skipped",
            self.passed, self.failed, self.warned, self.skipped
        )
    }
}

/// The result of a run, in suite order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub duration_ms: f64,
    pub summary: Summary,
    /// Cases left out by `--case`, `--exclude` or `--tag`.
    pub filtered_out: usize,
    /// The profiles the run tested: those the server claimed, or those
    /// requested; `None` when every profile was. Serialized as part of
    /// `coverage`, which is what it scopes.
    #[serde(skip)]
    pub profiles: Option<Vec<String>>,
    /// Which requirements the cases that ran cite, after [`Report::cover`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    pub cases: Vec<CaseReport>,
}

pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl Report {
    pub(crate) fn new(
        url: String,
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
            }
        }
        Report {
            url,
            duration_ms: millis(duration),
            summary,
            filtered_out,
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

    /// Compares failures with a baseline of known failing case ids.
    pub fn judge(&self, baseline: &Baseline) -> Verdict {
        let mut verdict = Verdict::default();
        for case in &self.cases {
            let known = baseline.ids.contains(&case.id);
            match (case.status, known) {
                (Status::Fail, true) => verdict.known_failures.push(case.id.clone()),
                (Status::Fail, false) => verdict.new_failures.push(case.id.clone()),
                (Status::Pass | Status::Warn, true) => verdict.fixed.push(case.id.clone()),
                _ => {}
            }
        }
        verdict
    }

    /// The full report as pretty JSON.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("reports serialize");
        text.push('\n');
        text
    }

    /// The report as JUnit XML: one `testsuite` per suite file, one
    /// `testcase` per case. WARN cases pass, with the finding in
    /// `system-out`, because JUnit has no warning state.
    pub fn to_junit(&self, transcript_lines: usize) -> String {
        use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
        let mut report = JReport::new("tidewire-conform");
        report.set_time(Duration::from_secs_f64(self.duration_ms / 1000.0));
        let mut suites: Vec<TestSuite> = Vec::new();
        for case in &self.cases {
            if suites.last().is_none_or(|s| s.name.as_str() != case.file) {
                suites.push(TestSuite::new(case.file.clone()));
            }
            let status = match case.status {
                Status::Pass | Status::Warn => TestCaseStatus::success(),
                Status::Skip => {
                    let mut s = TestCaseStatus::skipped();
                    if let Some(reason) = &case.skip_reason {
                        s.set_message(reason.clone());
                    }
                    s
                }
                Status::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    if let Some(f) = &case.failure {
                        s.set_message(f.message.clone());
                        s.set_type(f.step_kind.clone().unwrap_or_else(|| "case".into()));
                        s.set_description(crate::render::failure_text(case, transcript_lines));
                    }
                    s
                }
            };
            let mut tc = TestCase::new(case.id.clone(), status);
            tc.set_classname(case.file.clone());
            tc.set_time(Duration::from_secs_f64(case.duration_ms / 1000.0));
            tc.add_property(("title", case.title.as_str()));
            tc.add_property(("requirements", case.requirements.join(" ").as_str()));
            tc.add_property(("profile", case.profile.as_str()));
            tc.add_property(("location", case.location.as_str()));
            let mut out = String::new();
            if case.status == Status::Warn {
                out.push_str(&crate::render::failure_text(case, transcript_lines));
            }
            for w in &case.warnings {
                out.push_str(&format!("warning: {w}\n"));
            }
            if !out.is_empty() {
                tc.set_system_out(out);
            }
            suites.last_mut().expect("pushed above").add_test_case(tc);
        }
        report.add_test_suites(suites);
        report.to_string().expect("JUnit reports serialize")
    }
}

/// Case ids known to fail; CI fails only on failures outside it.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub ids: BTreeSet<String>,
}

impl Baseline {
    /// One case id per line; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Baseline {
        Baseline {
            ids: text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
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
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.new_failures.is_empty()
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub total: usize,
    pub covered: usize,
    /// Ids no case covers, in the order of the requirements file.
    pub uncovered: Vec<String>,
}
