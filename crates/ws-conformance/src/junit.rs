//! The JUnit XML report, in the dialect of the Jenkins JUnit schema
//! (`conformance/junit.xsd`), which is also what GitLab, GitHub actions and
//! most CI systems read: one `testsuite` per suite file, one `testcase` per
//! case, classname the case's profile.

use crate::report::{CaseReport, Report, Status};
use std::fmt::Write;

/// Text as XML character data or attribute value: markup escaped, and
/// characters XML 1.0 cannot carry at all (most control characters) written
/// as visible `\u{..}` escapes so the file stays well-formed.
pub(crate) fn escape(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn seconds(ms: f64) -> String {
    format!("{:.3}", ms / 1000.0)
}

struct Counts {
    tests: usize,
    failures: usize,
    skipped: usize,
}

fn counts<'a>(cases: impl Iterator<Item = &'a CaseReport>) -> Counts {
    let mut c = Counts {
        tests: 0,
        failures: 0,
        skipped: 0,
    };
    for case in cases {
        c.tests += 1;
        match case.status {
            Status::Fail => c.failures += 1,
            Status::Skip | Status::Known => c.skipped += 1,
            Status::Pass | Status::Warn | Status::Flaky => {}
        }
    }
    c
}

pub(crate) fn render(report: &Report, transcript_lines: usize) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let all = counts(report.cases.iter());
    let _ = writeln!(
        out,
        "<testsuites name=\"tidewire-conform\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{}\">",
        all.tests,
        all.failures,
        seconds(report.duration_ms)
    );
    let mut start = 0;
    while start < report.cases.len() {
        let file = &report.cases[start].file;
        let end = report.cases[start..]
            .iter()
            .position(|c| &c.file != file)
            .map_or(report.cases.len(), |n| start + n);
        suite(
            &mut out,
            report,
            &report.cases[start..end],
            transcript_lines,
        );
        start = end;
    }
    out.push_str("</testsuites>\n");
    out
}

fn suite(out: &mut String, report: &Report, cases: &[CaseReport], transcript_lines: usize) {
    let c = counts(cases.iter());
    let time: f64 = cases.iter().map(|c| c.duration_ms).sum();
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\" hostname=\"{}\">",
        escape(&cases[0].file, true),
        c.tests,
        c.failures,
        c.skipped,
        seconds(time),
        escape(&report.started_at, true),
        escape(&report.hostname, true)
    );
    // The schema allows properties on suites only: each case's requirement
    // ids and location are listed here, keyed by case id.
    out.push_str("    <properties>\n");
    let property = |out: &mut String, name: &str, value: &str| {
        let _ = writeln!(
            out,
            "      <property name=\"{}\" value=\"{}\"/>",
            escape(name, true),
            escape(value, true)
        );
    };
    property(out, "url", &report.url);
    property(out, "runner_version", &report.runner_version);
    for case in cases {
        property(out, &format!("{}.title", case.id), &case.title);
        property(
            out,
            &format!("{}.requirements", case.id),
            &case.requirements.join(" "),
        );
        property(out, &format!("{}.location", case.id), &case.location);
    }
    out.push_str("    </properties>\n");
    for case in cases {
        testcase(out, case, transcript_lines);
    }
    out.push_str("  </testsuite>\n");
}

fn testcase(out: &mut String, case: &CaseReport, transcript_lines: usize) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
        escape(&case.id, true),
        escape(&case.profile, true),
        seconds(case.duration_ms)
    );
    let message = case.failure.as_ref().map_or("", |f| f.message.as_str());
    let kind = case
        .failure
        .as_ref()
        .and_then(|f| f.step_kind.as_deref())
        .unwrap_or("case");
    let details = || crate::render::failure_text(case, transcript_lines);
    match case.status {
        Status::Pass => {}
        Status::Skip => {
            let _ = write!(
                out,
                "\n      <skipped message=\"{}\"/>",
                escape(case.skip_reason.as_deref().unwrap_or("skipped"), true)
            );
        }
        // A failure CI already knows about must not turn the job red: JUnit
        // readers count it as skipped, with the reason in the message.
        Status::Known => {
            let _ = write!(
                out,
                "\n      <skipped message=\"{}\">{}</skipped>",
                escape(&format!("known failure: {message}"), true),
                escape(&details(), false)
            );
        }
        Status::Fail => {
            let _ = write!(
                out,
                "\n      <failure message=\"{}\" type=\"{}\">{}</failure>",
                escape(message, true),
                escape(kind, true),
                escape(&details(), false)
            );
        }
        // Surefire's convention for a test that passed on a rerun.
        Status::Flaky => {
            let _ = write!(
                out,
                "\n      <flakyFailure message=\"{}\" type=\"{}\">{}</flakyFailure>",
                escape(message, true),
                escape(kind, true),
                escape(&details(), false)
            );
        }
        Status::Warn => {}
    }
    let mut system_out = String::new();
    if case.status == Status::Warn {
        system_out.push_str(&details());
    }
    for w in &case.warnings {
        let _ = writeln!(system_out, "warning: {w}");
    }
    if !system_out.is_empty() {
        let _ = write!(
            out,
            "\n      <system-out>{}</system-out>",
            escape(&system_out, false)
        );
    }
    if case.status == Status::Pass && system_out.is_empty() {
        out.push_str("</testcase>\n");
    } else {
        out.push_str("\n    </testcase>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_keeps_xml_well_formed() {
        assert_eq!(
            escape("a<b>&\"c\"\u{1b}[31m\u{0}\t\n", true),
            "a&lt;b&gt;&amp;&quot;c&quot;\\u{1b}[31m\\u{0}&#9;&#10;"
        );
        assert_eq!(escape("x\u{7}\ny\"", false), "x\\u{7}\ny\"");
    }
}
