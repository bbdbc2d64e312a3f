//! Human-readable output: one line per case, failure details, summary.

use crate::pattern;
use crate::report::{CaseReport, Coverage, Direction, Entry, Report, Status, Verdict};
use serde_json::Value;

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    pub fn red(self, t: &str) -> String {
        self.paint("1;31", t)
    }
    pub fn green(self, t: &str) -> String {
        self.paint("1;32", t)
    }
    pub fn yellow(self, t: &str) -> String {
        self.paint("1;33", t)
    }
    pub fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
    pub fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
    fn status(self, status: Status) -> String {
        let label = format!("{:>12}", status.label());
        match status {
            Status::Pass => self.green(&label),
            Status::Fail => self.red(&label),
            Status::Warn => self.yellow(&label),
            Status::Skip => self.yellow(&label),
            Status::Known => self.dim(&label),
            Status::Flaky => self.yellow(&label),
        }
    }
}

/// Text from the server (or a suite file) made safe for a terminal or an
/// HTML page: control characters, which could move the cursor, ring the
/// bell or rewrite the screen, are written as visible `\u{..}` escapes.
/// Line breaks are escaped too, since every caller prints one line.
pub fn printable(text: &str) -> String {
    use std::fmt::Write;
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// A warning line printed under a case.
pub fn warning_line(warning: &str, style: Style) -> String {
    format!("    {} {}", style.yellow("warning:"), printable(warning))
}

/// `        PASS [   0.012s] case.id`, like cargo-nextest.
pub fn case_line(case: &CaseReport, style: Style) -> String {
    let mut line = format!(
        "{} [{:>8.3}s] {}",
        style.status(case.status),
        case.duration_ms / 1000.0,
        style.bold(&printable(&case.id))
    );
    if let Some(reason) = &case.skip_reason {
        line.push_str(&style.dim(&format!(" ({})", printable(reason))));
    }
    if case.attempts > 1 {
        line.push_str(&style.dim(&format!(" ({} attempts)", case.attempts)));
    }
    line
}

/// The failure block of a FAIL or WARN case, uncolored (for JUnit).
pub fn failure_text(case: &CaseReport, transcript_lines: usize) -> String {
    failure_block(case, Style { color: false }, transcript_lines)
}

/// Everything a reader needs to understand a failure: requirements, the
/// failing step, expected vs received with a diff, and the transcript tail.
pub fn failure_block(case: &CaseReport, style: Style, transcript_lines: usize) -> String {
    let Some(f) = &case.failure else {
        return String::new();
    };
    let mut out = String::new();
    let head = match case.status {
        Status::Warn => style.yellow("--- WARN"),
        Status::Known => style.dim("--- KNOWN"),
        Status::Flaky => style.yellow("--- FLAKY"),
        _ => style.red("--- FAIL"),
    };
    out.push_str(&format!(
        "{head} {}: {}\n",
        style.bold(&printable(&case.id)),
        printable(&case.title)
    ));
    match case.status {
        Status::Warn => out.push_str(
            "    (a SHOULD-level case: reported as a warning; --strict makes it a failure)\n",
        ),
        Status::Known => out
            .push_str("    (a known failure, listed in the baseline: it does not fail the run)\n"),
        Status::Flaky => out.push_str(&format!(
            "    (failed, then passed on attempt {} of {}; this is the failing attempt)\n",
            case.attempts, case.attempts
        )),
        _ => {}
    }
    let reqs = if case.requirements.is_empty() {
        "(none listed)".to_string()
    } else {
        printable(&case.requirements.join(", "))
    };
    out.push_str(&format!("    requirements: {reqs}\n"));
    let step = match (f.step, &f.step_kind) {
        (Some(n), Some(kind)) => {
            let on = f
                .conn
                .as_ref()
                .map(|c| format!(" on {c:?}"))
                .unwrap_or_default();
            format!("step {n} ({kind}{on}) at {}", f.location)
        }
        _ => format!("after the last step, case at {}", f.location),
    };
    out.push_str(&format!("    failed at:    {step}\n"));
    out.push_str(&format!(
        "    error:        {}\n",
        style.red(&printable(&f.message))
    ));
    for m in &f.mismatches {
        out.push_str(&format!("      {}\n", printable(&m.to_string())));
    }
    match (&f.expected, &f.received) {
        (Some(expected), Some(received)) => {
            out.push_str(&format!(
                "    diff ({}, {}; fields the pattern does not mention are hidden):\n",
                style.red("- expected"),
                style.green("+ received")
            ));
            out.push_str(&diff(expected, received, style));
            out.push_str("    received frame:\n");
            out.push_str(&format!(
                "      {}\n",
                printable(&pattern::compact(received, 400))
            ));
        }
        (Some(expected), None) => {
            out.push_str("    expected:\n");
            out.push_str(&indent(&printable_lines(&pretty(expected)), "      "));
        }
        (None, Some(received)) => {
            out.push_str("    received frame:\n");
            out.push_str(&format!(
                "      {}\n",
                printable(&pattern::compact(received, 400))
            ));
        }
        (None, None) => {}
    }
    if !case.transcript.is_empty() && transcript_lines > 0 {
        let total = case.transcript.len();
        let shown = total.min(transcript_lines);
        let dropped = case.transcript.iter().any(|e| e.kind == "dropped");
        out.push_str(&format!(
            "    transcript (last {shown} of {total} entries{}):\n",
            if dropped { " kept" } else { "" }
        ));
        for entry in &case.transcript[total - shown..] {
            out.push_str(&format!("      {}\n", transcript_line(entry, style)));
        }
    }
    out
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("values serialize");
    s.push('\n');
    s
}

/// Multi-line text with each line made [`printable`].
fn printable_lines(text: &str) -> String {
    text.lines().map(|l| printable(l) + "\n").collect()
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

/// One line of an expected-versus-received diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffTag {
    Same,
    Expected,
    Received,
}

/// The pattern against the received frame projected onto it (fields the
/// pattern does not mention hidden), line by line, made [`printable`].
pub fn diff_lines(expected: &Value, received: &Value) -> Vec<(DiffTag, String)> {
    let left = pretty(expected);
    let right = pretty(&pattern::project(expected, received));
    let diff = similar::TextDiff::from_lines(&left, &right);
    let mut lines = Vec::new();
    for group in diff.grouped_ops(4) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let tag = match change.tag() {
                    similar::ChangeTag::Equal => DiffTag::Same,
                    similar::ChangeTag::Delete => DiffTag::Expected,
                    similar::ChangeTag::Insert => DiffTag::Received,
                };
                lines.push((tag, printable(change.value().trim_end_matches('\n'))));
            }
        }
    }
    lines
}

fn diff(expected: &Value, received: &Value, style: Style) -> String {
    let mut out = String::new();
    for (tag, line) in diff_lines(expected, received) {
        out.push_str(&match tag {
            DiffTag::Same => format!("        {line}\n"),
            DiffTag::Expected => format!("      {}\n", style.red(&format!("- {line}"))),
            DiffTag::Received => format!("      {}\n", style.green(&format!("+ {line}"))),
        });
    }
    out
}

/// A transcript entry's payload as one printable line of at most `width`
/// characters (binary as hex).
pub fn transcript_body(e: &Entry, width: usize) -> String {
    match (&e.text, &e.binary_base64) {
        (Some(text), _) if e.dir == Direction::Event => {
            format!("{} {}", e.kind, printable(&pattern::truncate(text, width)))
        }
        (Some(text), _) => printable(&pattern::truncate(text, width)),
        (None, Some(b64)) => {
            let bytes = data_encoding::BASE64
                .decode(b64.as_bytes())
                .unwrap_or_default();
            let hex = data_encoding::HEXLOWER.encode(&bytes[..bytes.len().min(32)]);
            format!(
                "binary {} bytes: {hex}{}",
                e.bytes.unwrap_or(bytes.len()),
                if bytes.len() > 32 { "…" } else { "" }
            )
        }
        (None, None) => e.kind.clone(),
    }
}

fn transcript_line(e: &Entry, style: Style) -> String {
    let arrow = match e.dir {
        Direction::Out => "→",
        Direction::In => "←",
        Direction::Event => "•",
    };
    let body = if e.dir == Direction::Event {
        transcript_body(e, 400)
    } else {
        transcript_body(e, 160)
    };
    let mut line = format!(
        "{:>9.1}ms {:<8} {arrow} {body}",
        e.at_ms,
        printable(&e.conn)
    );
    if e.ignored {
        line.push_str(&style.dim("  (ignored)"));
    }
    if let Some(err) = &e.schema_error {
        line.push_str(&style.red(&format!("  (schema: {})", printable(err))));
    }
    line
}

/// Requirement coverage: a line of counts, then the uncovered ids wrapped
/// under their label, at most `width` columns wide.
pub fn coverage(c: &Coverage, style: Style, width: usize) -> String {
    if c.must.total + c.should.total == 0 {
        return "requirements: none of the requirements file applies to the tested profiles\n"
            .to_string();
    }
    let counts = format!(
        "requirements: {}/{} MUST, {}/{} SHOULD covered ({})",
        c.must.covered,
        c.must.total,
        c.should.covered,
        c.should.total,
        c.profiles.join(", ")
    );
    let complete = c.must.uncovered.is_empty() && c.should.uncovered.is_empty();
    let mut out = if complete {
        style.green(&counts)
    } else {
        style.yellow(&counts)
    };
    out.push('\n');
    let groups = [
        ("uncovered MUST:", &c.must.uncovered),
        ("uncovered SHOULD:", &c.should.uncovered),
        ("cited, not listed:", &c.unlisted),
    ];
    let label_width = groups
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    for (label, ids) in groups {
        if !ids.is_empty() {
            out.push_str(&wrap(&format!("  {label:<label_width$} "), ids, width));
        }
    }
    out
}

/// `ids` after `lead`, space separated, continued lines indented to match.
fn wrap(lead: &str, ids: &[String], width: usize) -> String {
    let indent = " ".repeat(lead.chars().count());
    let mut out = String::new();
    let mut line = lead.to_string();
    let mut empty = true;
    for id in ids {
        if !empty && line.chars().count() + 1 + id.len() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.clone();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(id);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// Cases slower than this are listed in the summary, like nextest's SLOW.
pub const SLOW_MS: f64 = 1000.0;

/// The closing lines: coverage, baseline notes, the slowest cases, then
/// `Summary: N passed, ...`.
pub fn summary(report: &Report, verdict: &Verdict, allow_flaky: bool, style: Style) -> String {
    let mut out = String::new();
    out.push_str(&format!("{}\n", style.dim("------------")));
    if let Some(c) = &report.coverage {
        out.push_str(&self::coverage(c, style, 100));
    }
    let list = |ids: &[String]| printable(&ids.join(", "));
    if !verdict.known_failures.is_empty() {
        out.push_str(&format!(
            "{} known failure(s) listed in the baseline: {}\n",
            verdict.known_failures.len(),
            list(&verdict.known_failures)
        ));
    }
    if !verdict.fixed.is_empty() {
        out.push_str(&format!(
            "{} case(s) in the baseline now pass; remove them from it: {}\n",
            verdict.fixed.len(),
            list(&verdict.fixed)
        ));
    }
    if !verdict.flaky.is_empty() {
        let note = if allow_flaky {
            "allowed by --allow-flaky"
        } else {
            "these fail the run unless --allow-flaky"
        };
        out.push_str(&format!(
            "{} flaky case(s) passed only on a retry ({note}): {}\n",
            verdict.flaky.len(),
            list(&verdict.flaky)
        ));
    }
    if !verdict.new_failures.is_empty() {
        out.push_str(&format!("failed: {}\n", list(&verdict.new_failures)));
    }
    out.push_str(&slowest(&report.cases, 5, style));
    if let Some(why) = &report.aborted {
        out.push_str(&format!(
            "{}\n",
            style.red(&format!("aborted: {}", printable(why)))
        ));
    }
    let mut ran = format!("ran in {:.3}s", report.duration_ms / 1000.0);
    if report.filtered_out > 0 {
        ran.push_str(&format!("; {} case(s) filtered out", report.filtered_out));
    }
    out.push_str(&format!("{}\n", style.dim(&ran)));
    let text = format!("Summary: {}", report.summary);
    let line = if !verdict.ok(allow_flaky) {
        style.red(&text)
    } else if report.summary.warned + report.summary.known + report.summary.flaky == 0 {
        style.green(&text)
    } else {
        style.yellow(&text)
    };
    out.push_str(&format!("{line}\n"));
    out
}

/// The `limit` slowest cases that took at least [`SLOW_MS`], slowest first.
pub fn slowest(cases: &[CaseReport], limit: usize, style: Style) -> String {
    let mut slow: Vec<&CaseReport> = cases.iter().filter(|c| c.duration_ms >= SLOW_MS).collect();
    if slow.is_empty() {
        return String::new();
    }
    slow.sort_by(|a, b| b.duration_ms.total_cmp(&a.duration_ms));
    let mut out = format!(
        "slowest ({} case(s) took {:.0}s or more):\n",
        slow.len(),
        SLOW_MS / 1000.0
    );
    for case in slow.iter().take(limit) {
        out.push_str(&format!(
            "{} [{:>8.3}s] {}\n",
            style.yellow(&format!("{:>12}", "SLOW")),
            case.duration_ms / 1000.0,
            printable(&case.id)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Tally;

    fn ids(prefix: &str, n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("{prefix}-{i}")).collect()
    }

    #[test]
    fn coverage_wraps_ids_under_aligned_labels() {
        let c = Coverage {
            profiles: vec!["core".into(), "filter".into()],
            must: Tally {
                total: 40,
                covered: 16,
                uncovered: ids("TW-CORE", 24),
            },
            should: Tally {
                total: 1,
                covered: 0,
                uncovered: ids("TW-LIMIT", 1),
            },
            unlisted: vec![],
        };
        let text = coverage(&c, Style { color: false }, 60);
        assert_eq!(
            text,
            "\
requirements: 16/40 MUST, 0/1 SHOULD covered (core, filter)
  uncovered MUST:   TW-CORE-1 TW-CORE-2 TW-CORE-3 TW-CORE-4
                    TW-CORE-5 TW-CORE-6 TW-CORE-7 TW-CORE-8
                    TW-CORE-9 TW-CORE-10 TW-CORE-11
                    TW-CORE-12 TW-CORE-13 TW-CORE-14
                    TW-CORE-15 TW-CORE-16 TW-CORE-17
                    TW-CORE-18 TW-CORE-19 TW-CORE-20
                    TW-CORE-21 TW-CORE-22 TW-CORE-23
                    TW-CORE-24
  uncovered SHOULD: TW-LIMIT-1
"
        );
        assert!(text.lines().all(|l| l.len() <= 60), "{text}");
    }

    #[test]
    fn complete_coverage_lists_only_unlisted_ids() {
        let c = Coverage {
            profiles: vec!["core".into()],
            must: Tally {
                total: 2,
                covered: 2,
                uncovered: vec![],
            },
            should: Tally::default(),
            unlisted: vec!["TW-CORE-99".into()],
        };
        assert_eq!(
            coverage(&c, Style { color: false }, 100),
            "requirements: 2/2 MUST, 0/0 SHOULD covered (core)\n  cited, not listed: TW-CORE-99\n"
        );
    }
}
