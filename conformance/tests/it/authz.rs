//! The record, watch, resume and filter suites against a server that hides
//! records by a row-level rule (section 8.5 of the specification): what they
//! check holds for every record a principal may see, so a rule that hides
//! none of the records they write leaves every case passing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tidewire_server::{Config, Server};
use ws_conformance::{load_suites, RunOptions, Runner, Status};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_and_watch_suites_pass_against_a_narrowing_server() {
    let paths: Vec<PathBuf> = ["records.json", "watch.json", "resume.json", "filter.json"]
        .into_iter()
        .map(fixture)
        .collect();
    let suites = load_suites(&paths, None).expect("the suites load");
    // Private records are their owner's; the suites write none, and every
    // lookup of the rule still runs on each read and change.
    let config = Config {
        heartbeat_interval: Duration::from_millis(1000),
        ..Config::default()
    }
    .with_record_visibility(
        |principal: &str, _: &str, _: &str, record: &tidewire_protocol::Object| {
            record.get("private") != Some(&json!(true))
                || record.get("owner").and_then(|o| o.as_str()) == Some(principal)
        },
    );
    let server = Server::start(config).await.expect("the server starts");
    let report = Runner::new(RunOptions {
        jobs: 8,
        step_timeout: Duration::from_secs(5),
        case_timeout: Duration::from_secs(60),
        ..RunOptions::default()
    })
    .run(&server.ws_url(), &suites)
    .await
    .expect("the run starts");
    server.shutdown().await;
    let failed: Vec<String> = report
        .cases
        .iter()
        .filter(|case| case.status != Status::Pass && case.status != Status::Skip)
        .map(|case| ws_conformance::render::failure_text(case, 12))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    let passed = report
        .cases
        .iter()
        .filter(|c| c.status == Status::Pass)
        .count();
    let total: usize = suites.iter().map(|s| s.cases.len()).sum();
    assert!(
        passed * 2 > total,
        "only {passed} of {total} cases ran against the narrowing server"
    );
}
