//! Results of a run, the baseline of known failures, and the JSON and JUnit
//! renderings of both.

use crate::fixture::Level;
use crate::pattern::Mismatch;
use crate::schema_set::SchemaViolation;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
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
            cases,
        }
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
