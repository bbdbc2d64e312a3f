//! The HTML report: one self-contained page (styles and script inline, no
//! request to any network) with the summary, a matrix of requirement ids by
//! profile, and every case, failures first, with a filter box.
//!
//! Everything from the server or the suites is HTML-escaped after its
//! control characters are made visible ([`render::printable`]).

use crate::render::{self, DiffTag};
use crate::report::{CaseReport, Direction, Report, Status};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// `text` as HTML text or attribute value.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in render::printable(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Failures first, then what needs a look, then the rest.
fn rank(status: Status) -> u8 {
    match status {
        Status::Fail => 0,
        Status::Flaky => 1,
        Status::Known => 2,
        Status::Warn => 3,
        Status::Pass => 4,
        Status::Skip => 5,
    }
}

fn status_class(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Warn => "warn",
        Status::Skip => "skip",
        Status::Known => "known",
        Status::Flaky => "flaky",
    }
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:16px 24px}
header h1{margin:0 0 4px;font-size:20px}
header .meta{color:#b8c0d0;font-size:13px}
main{padding:16px 24px;max-width:1400px}
h2{font-size:16px;margin:24px 0 8px}
.counts{display:flex;gap:8px;flex-wrap:wrap;margin-top:10px}
.count{padding:4px 10px;border-radius:12px;font-weight:600;font-size:13px}
.pass{background:#d6f5dd;color:#135c25}.fail{background:#fbd5d5;color:#8a1414}
.warn,.flaky{background:#fdefc3;color:#7a5300}.skip{background:#e4e7ec;color:#4a5262}
.known{background:#e6ddf7;color:#4b2a8a}.none{background:#fff;color:#8a93a6;border:1px dashed #c3c9d4}
.aborted{background:#8a1414;color:#fff;padding:8px 12px;border-radius:6px;margin-top:10px}
table{border-collapse:collapse;background:#fff;width:100%}
td,th{border:1px solid #dde1e8;padding:6px 8px;vertical-align:top;text-align:left}
th{background:#eef0f4;font-weight:600}
.ids{display:flex;flex-wrap:wrap;gap:4px}
.id{font:12px ui-monospace,Menlo,Consolas,monospace;padding:1px 6px;border-radius:4px}
#filter{width:100%;box-sizing:border-box;padding:8px 10px;font-size:14px;border:1px solid #c3c9d4;border-radius:6px}
#shown{color:#4a5262;margin:6px 0 10px;font-size:13px}
details.case{background:#fff;border:1px solid #dde1e8;border-left-width:6px;border-radius:6px;margin:6px 0}
details.case>summary{cursor:pointer;padding:8px 10px;display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
details.case.fail{border-left-color:#d33}details.case.pass{border-left-color:#3a3}
details.case.warn,details.case.flaky{border-left-color:#d9a400}details.case.known{border-left-color:#7a52c7}
details.case.skip{border-left-color:#aab}
.badge{font-weight:700;font-size:12px;padding:2px 8px;border-radius:10px;min-width:48px;text-align:center}
.cid{font-family:ui-monospace,Menlo,Consolas,monospace;font-weight:600}
.time{color:#6b7385;font-size:12px}.title{color:#4a5262}
.body{padding:4px 14px 12px}
.msg{color:#8a1414;font-weight:600;white-space:pre-wrap}
pre{background:#f7f8fa;border:1px solid #e3e6ec;border-radius:4px;padding:8px;overflow:auto;font-size:12px;margin:6px 0}
pre .del{background:#fde2e2;color:#8a1414;display:block}pre .ins{background:#dcf5e1;color:#135c25;display:block}
table.transcript td{font:12px ui-monospace,Menlo,Consolas,monospace;border:none;border-bottom:1px solid #eef0f4;padding:2px 6px}
table.transcript td.text{white-space:pre-wrap;word-break:break-all}
tr.ignored td{color:#8a93a6}tr.dropped td{color:#7a5300;font-style:italic}
.schema{color:#8a1414}
"#;

/// Filters case rows by every word typed (id, title, status, profile,
/// requirement ids); the initial filter can come from `#q=...`.
const SCRIPT: &str = r#"
(function(){
  var box=document.getElementById('filter');
  var cases=[].slice.call(document.querySelectorAll('details.case'));
  var shown=document.getElementById('shown');
  function apply(){
    var words=box.value.toLowerCase().split(/\s+/).filter(Boolean);
    var n=0;
    cases.forEach(function(c){
      var hay=c.getAttribute('data-search');
      var ok=words.every(function(w){return hay.indexOf(w)>=0;});
      c.hidden=!ok; if(ok){n++;}
    });
    shown.textContent=n+' of '+cases.length+' cases shown';
  }
  var m=/[#&]q=([^&]*)/.exec(location.hash);
  if(m){box.value=decodeURIComponent(m[1]);}
  box.addEventListener('input',apply);
  apply();
})();
"#;

pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    // No fetch of any kind: the page must open from a CI artifact offline.
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">");
    let _ = write!(
        out,
        "<title>Conformance report: {}</title><style>{STYLE}</style></head><body>",
        esc(&report.url)
    );
    summary(&mut out, report);
    out.push_str("<main>");
    matrix(&mut out, report);
    out.push_str("<h2>Cases</h2><input id=\"filter\" type=\"search\" placeholder=\"Filter: words in the id, title, status, profile or requirement ids (e.g. fail TW-CORE)\" autofocus>");
    out.push_str("<div id=\"shown\"></div><div id=\"cases\">");
    let mut order: Vec<&CaseReport> = report.cases.iter().collect();
    order.sort_by_key(|c| rank(c.status));
    for case in order {
        case_html(&mut out, case);
    }
    let _ = writeln!(out, "</div></main><script>{SCRIPT}</script></body></html>");
    out
}

fn summary(out: &mut String, report: &Report) {
    let s = &report.summary;
    let _ = write!(
        out,
        "<header><h1>Conformance report</h1><div class=\"meta\">{} · started {} on {} · {:.3}s · runner {}</div><div class=\"counts\" id=\"summary\">",
        esc(&report.url),
        esc(&report.started_at),
        esc(&report.hostname),
        report.duration_ms / 1000.0,
        esc(&report.runner_version)
    );
    for (class, n, label) in [
        ("pass", s.passed, "passed"),
        ("fail", s.failed, "failed"),
        ("known", s.known, "known"),
        ("flaky", s.flaky, "flaky"),
        ("warn", s.warned, "warned"),
        ("skip", s.skipped, "skipped"),
    ] {
        let _ = write!(
            out,
            "<span class=\"count {class}\" data-count=\"{class}\">{n} {label}</span>"
        );
    }
    out.push_str("</div>");
    if let Some(why) = &report.aborted {
        let _ = write!(out, "<div class=\"aborted\">aborted: {}</div>", esc(why));
    }
    out.push_str("</header>");
}

/// What the cases that cite a requirement found, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Finding {
    Failed,
    Passed,
    /// Cited only by cases that did not run.
    NotRun,
}

/// Requirement ids by profile: each cited id colored by what its cases
/// found, and the ids of the requirements file no case covers.
fn matrix(out: &mut String, report: &Report) {
    let mut by_profile: BTreeMap<&str, BTreeMap<&str, Finding>> = BTreeMap::new();
    for case in &report.cases {
        let finding = match case.status {
            Status::Fail | Status::Known | Status::Flaky => Finding::Failed,
            Status::Pass | Status::Warn => Finding::Passed,
            Status::Skip => Finding::NotRun,
        };
        let ids = by_profile.entry(case.profile.as_str()).or_default();
        for id in &case.requirements {
            let slot = ids.entry(id.as_str()).or_insert(finding);
            *slot = (*slot).min(finding);
        }
    }
    let uncovered: BTreeSet<&str> = report
        .coverage
        .iter()
        .flat_map(|c| c.must.uncovered.iter().chain(&c.should.uncovered))
        .map(String::as_str)
        .collect();
    out.push_str("<h2>Requirements by profile</h2><table id=\"matrix\"><tr><th>profile</th><th>passed</th><th>failed</th><th>not run</th><th>requirement ids</th></tr>");
    for (profile, ids) in &by_profile {
        let count = |f: Finding| ids.values().filter(|x| **x == f).count();
        let _ = write!(
            out,
            "<tr data-profile=\"{}\"><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td><div class=\"ids\">",
            esc(profile),
            esc(profile),
            count(Finding::Passed),
            count(Finding::Failed),
            count(Finding::NotRun)
        );
        for (id, finding) in ids {
            let (class, what) = match finding {
                Finding::Failed => ("fail", "failed"),
                Finding::Passed => ("pass", "passed"),
                Finding::NotRun => ("skip", "not run"),
            };
            let _ = write!(
                out,
                "<span class=\"id {class}\" title=\"{} {what}\">{}</span>",
                esc(id),
                esc(id)
            );
        }
        out.push_str("</div></td></tr>");
    }
    if !uncovered.is_empty() {
        let _ = write!(
            out,
            "<tr data-profile=\"\"><th>not covered</th><td colspan=\"3\">{} id(s) no case that ran cites</td><td><div class=\"ids\">",
            uncovered.len()
        );
        for id in &uncovered {
            let _ = write!(out, "<span class=\"id none\">{}</span>", esc(id));
        }
        out.push_str("</div></td></tr>");
    }
    out.push_str("</table>");
}

fn case_html(out: &mut String, case: &CaseReport) {
    let class = status_class(case.status);
    let search = format!(
        "{} {} {} {} {}",
        case.id,
        case.title,
        class,
        case.profile,
        case.requirements.join(" ")
    )
    .to_lowercase();
    let open = if case.status.found_fault() {
        " open"
    } else {
        ""
    };
    let _ = write!(
        out,
        "<details class=\"case {class}\" data-status=\"{class}\" data-id=\"{}\" data-search=\"{}\"{open}><summary><span class=\"badge {class}\">{}</span><span class=\"cid\">{}</span><span class=\"time\">{:.3}s</span><span class=\"title\">{}</span><span class=\"ids\">",
        esc(&case.id),
        esc(&search),
        case.status.label(),
        esc(&case.id),
        case.duration_ms / 1000.0,
        esc(&case.title)
    );
    for id in &case.requirements {
        let _ = write!(out, "<span class=\"id {class}\">{}</span>", esc(id));
    }
    out.push_str("</span></summary><div class=\"body\">");
    let _ = write!(
        out,
        "<div>profile {} · {} · {}</div>",
        esc(&case.profile),
        esc(&case.location),
        if case.attempts > 1 {
            format!("{} attempts", case.attempts)
        } else {
            String::new()
        }
    );
    if let Some(reason) = &case.skip_reason {
        let _ = write!(out, "<div>skipped: {}</div>", esc(reason));
    }
    for w in &case.warnings {
        let _ = write!(out, "<div class=\"schema\">warning: {}</div>", esc(w));
    }
    failure_html(out, case);
    transcript_html(out, case);
    out.push_str("</div></details>\n");
}

fn failure_html(out: &mut String, case: &CaseReport) {
    let Some(f) = &case.failure else {
        return;
    };
    let at = match (f.step, &f.step_kind) {
        (Some(n), Some(kind)) => format!("step {n} ({kind}) at {}", f.location),
        _ => format!("after the last step, case at {}", f.location),
    };
    let _ = write!(
        out,
        "<div>failed at {}</div><div class=\"msg\">{}</div>",
        esc(&at),
        esc(&f.message)
    );
    for m in &f.mismatches {
        let _ = write!(out, "<div>{}</div>", esc(&m.to_string()));
    }
    match (&f.expected, &f.received) {
        (Some(expected), Some(received)) => {
            out.push_str("<div>diff (− expected, + received; fields the pattern does not mention are hidden):</div><pre class=\"diff\">");
            for (tag, line) in render::diff_lines(expected, received) {
                let (class, mark) = match tag {
                    DiffTag::Same => ("", "  "),
                    DiffTag::Expected => ("del", "- "),
                    DiffTag::Received => ("ins", "+ "),
                };
                let _ = writeln!(out, "<span class=\"{class}\">{mark}{}</span>", esc(&line));
            }
            out.push_str("</pre>");
        }
        (Some(value), None) | (None, Some(value)) => {
            let label = if f.expected.is_some() {
                "expected"
            } else {
                "received"
            };
            let pretty = serde_json::to_string_pretty(value).expect("values serialize");
            let _ = write!(out, "<div>{label}:</div><pre>{}</pre>", lines(&pretty));
        }
        (None, None) => {}
    }
}

/// Multi-line text escaped line by line, keeping the line breaks.
fn lines(text: &str) -> String {
    text.lines().map(|l| esc(l) + "\n").collect()
}

fn transcript_html(out: &mut String, case: &CaseReport) {
    if case.transcript.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<div>transcript ({} entries):</div><table class=\"transcript\">",
        case.transcript.len()
    );
    for e in &case.transcript {
        let arrow = match e.dir {
            Direction::Out => "→",
            Direction::In => "←",
            Direction::Event => "•",
        };
        let class = if e.kind == "dropped" {
            "dropped"
        } else if e.ignored {
            "ignored"
        } else {
            ""
        };
        let schema = e
            .schema_error
            .as_ref()
            .map(|err| format!("<div class=\"schema\">schema: {}</div>", esc(err)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td>{:.1}ms</td><td>{}</td><td>{arrow}</td><td class=\"text\">{}{schema}</td></tr>",
            e.at_ms,
            esc(&e.conn),
            esc(&render::transcript_body(e, 2000))
        );
    }
    out.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            esc("<script>\u{1b}[2J&\"'\u{7}"),
            "&lt;script&gt;\\u{1b}[2J&amp;&quot;&#39;\\u{7}"
        );
    }
}
