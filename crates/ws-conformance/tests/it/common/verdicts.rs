//! Helpers for judging case reports in the tests.

use ws_conformance::{CaseReport, Report, RunOptions, Runner, Status, Suite};

pub async fn run(url: &str, suites: &[Suite], options: RunOptions) -> Report {
    Runner::new(options).run(url, suites).await.unwrap()
}

pub fn case<'a>(report: &'a Report, id: &str) -> &'a CaseReport {
    report
        .cases
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no case {id} in the report"))
}

pub fn explain(case: &CaseReport) -> String {
    format!(
        "{} is {:?}:\n{}",
        case.id,
        case.status,
        ws_conformance::render::failure_text(case, 20)
    )
}

/// The failure's message and mismatches, one per line.
pub fn failure_text(case: &CaseReport) -> String {
    let failure = case.failure.as_ref().expect("a failure");
    let mut text = failure.message.clone();
    for mismatch in &failure.mismatches {
        text.push('\n');
        text.push_str(&mismatch.to_string());
    }
    text
}

pub fn assert_pass(case: &CaseReport) {
    assert_eq!(case.status, Status::Pass, "{}", explain(case));
}

/// Asserts the case failed at step `step` with `wanted` in its message
/// or mismatches.
pub fn assert_fail(case: &CaseReport, step: usize, wanted: &str) {
    assert_eq!(case.status, Status::Fail, "{}", explain(case));
    let failure = case.failure.as_ref().expect("a failure");
    assert_eq!(failure.step, Some(step), "{}", explain(case));
    let text = failure_text(case);
    assert!(text.contains(wanted), "wanted {wanted:?} in:\n{text}");
}
