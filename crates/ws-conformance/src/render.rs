//! Human-readable output: one line per case, failure details, summary.

use crate::pattern;
use crate::report::{CaseReport, Coverage, Direction, Entry, Status, Summary, Verdict};
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
        }
    }
}

/// `        PASS [   0.012s] case.id`, like cargo-nextest.
pub fn case_line(case: &CaseReport, style: Style) -> String {
    let mut line = format!(
        "{} [{:>8.3}s] {}",
        style.status(case.status),
        case.duration_ms / 1000.0,
        style.bold(&case.id)
    );
    if let Some(reason) = &case.skip_reason {
        line.push_str(&style.dim(&format!(" ({reason})")));
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
        _ => style.red("--- FAIL"),
    };
    out.push_str(&format!(
        "{head} {}: {}\n",
        style.bold(&case.id),
        case.title
    ));
    if case.status == Status::Warn {
        out.push_str(
            "    (a SHOULD-level case: reported as a warning; --strict makes it a failure)\n",
        );
    }
    let reqs = if case.requirements.is_empty() {
        "(none listed)".to_string()
    } else {
        case.requirements.join(", ")
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
    out.push_str(&format!("    error:        {}\n", style.red(&f.message)));
    for m in &f.mismatches {
        out.push_str(&format!("      {m}\n"));
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
            out.push_str(&format!("      {}\n", pattern::compact(received, 400)));
        }
        (Some(expected), None) => {
            out.push_str("    expected:\n");
            out.push_str(&indent(&pretty(expected), "      "));
        }
        (None, Some(received)) => {
            out.push_str("    received frame:\n");
            out.push_str(&format!("      {}\n", pattern::compact(received, 400)));
        }
        (None, None) => {}
    }
    if !case.transcript.is_empty() && transcript_lines > 0 {
        let total = case.transcript.len();
        let shown = total.min(transcript_lines);
        out.push_str(&format!(
            "    transcript (last {shown} of {total} entries):\n"
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

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

fn diff(expected: &Value, received: &Value, style: Style) -> String {
    let left = pretty(expected);
    let right = pretty(&pattern::project(expected, received));
    let diff = similar::TextDiff::from_lines(&left, &right);
    let mut out = String::new();
    for group in diff.grouped_ops(4) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let line = change.value().trim_end_matches('\n');
                out.push_str(&match change.tag() {
                    similar::ChangeTag::Equal => format!("        {line}\n"),
                    similar::ChangeTag::Delete => {
                        format!("      {}\n", style.red(&format!("- {line}")))
                    }
                    similar::ChangeTag::Insert => {
                        format!("      {}\n", style.green(&format!("+ {line}")))
                    }
                });
            }
        }
    }
    out
}

fn transcript_line(e: &Entry, style: Style) -> String {
    let arrow = match e.dir {
        Direction::Out => "→",
        Direction::In => "←",
        Direction::Event => "•",
    };
    let body = match (&e.text, &e.binary_base64) {
        (Some(text), _) if e.dir == Direction::Event => format!("{} {text}", e.kind),
        (Some(text), _) => pattern::truncate(text, 160),
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
    };
    let mut line = format!("{:>9.1}ms {:<8} {arrow} {body}", e.at_ms, e.conn);
    if e.ignored {
        line.push_str(&style.dim("  (ignored)"));
    }
    if let Some(err) = &e.schema_error {
        line.push_str(&style.red(&format!("  (schema: {err})")));
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

/// The closing lines: coverage, baseline notes, then `Summary: N passed, ...`.
pub fn summary(
    summary: &Summary,
    verdict: &Verdict,
    filtered_out: usize,
    seconds: f64,
    coverage: Option<&Coverage>,
    style: Style,
) -> String {
    let mut out = String::new();
    out.push_str(&format!("{}\n", style.dim("------------")));
    if let Some(c) = coverage {
        out.push_str(&self::coverage(c, style, 100));
    }
    if !verdict.known_failures.is_empty() {
        out.push_str(&format!(
            "{} known failure(s) listed in the baseline: {}\n",
            verdict.known_failures.len(),
            verdict.known_failures.join(", ")
        ));
    }
    if !verdict.fixed.is_empty() {
        out.push_str(&format!(
            "{} case(s) in the baseline now pass; remove them from it: {}\n",
            verdict.fixed.len(),
            verdict.fixed.join(", ")
        ));
    }
    if !verdict.new_failures.is_empty() {
        out.push_str(&format!("failed: {}\n", verdict.new_failures.join(", ")));
    }
    let mut ran = format!("ran in {seconds:.3}s");
    if filtered_out > 0 {
        ran.push_str(&format!("; {filtered_out} case(s) filtered out"));
    }
    out.push_str(&format!("{}\n", style.dim(&ran)));
    let text = format!("Summary: {summary}");
    let line = if verdict.ok() && summary.failed == verdict.known_failures.len() {
        if summary.failed == 0 && summary.warned == 0 {
            style.green(&text)
        } else {
            style.yellow(&text)
        }
    } else {
        style.red(&text)
    };
    out.push_str(&format!("{line}\n"));
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
