//! The Tidewire suites in `fixtures/` against the requirement list of the
//! specification (`spec/requirements.json`): every server MUST and MUST NOT
//! is cited by some case, and every id a case cites exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use ws_conformance::load_suites;
use ws_conformance::report::{Requirements, Strength};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every case id by the requirement ids it cites.
fn citations() -> BTreeMap<String, Vec<String>> {
    let suites = load_suites(&[root().join("fixtures")], None)
        .unwrap_or_else(|e| panic!("the suites in fixtures/ do not load: {e}"));
    let mut cited: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for case in suites.iter().flat_map(|s| &s.cases) {
        for id in &case.case.requirements {
            cited
                .entry(id.clone())
                .or_default()
                .push(case.case.id.clone());
        }
    }
    cited
}

fn requirements() -> Requirements {
    Requirements::load(&root().join("spec/requirements.json")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_server_must_is_cited_by_a_case() {
    let cited = citations();
    let requirements = requirements();
    let must: Vec<_> = requirements
        .list
        .iter()
        .filter(|r| r.is_server() && r.strength() == Some(Strength::Must))
        .collect();
    assert!(
        !must.is_empty(),
        "spec/requirements.json lists no server MUST"
    );
    let uncovered: Vec<String> = must
        .iter()
        .filter(|r| !cited.contains_key(&r.id))
        .map(|r| format!("{} ({}, {})", r.id, r.profile, r.level))
        .collect();
    assert!(
        uncovered.is_empty(),
        "{} of {} server MUST/MUST NOT requirements are cited by no case in fixtures/:\n  {}",
        uncovered.len(),
        must.len(),
        uncovered.join("\n  ")
    );
}

#[test]
fn every_cited_id_exists() {
    let known: BTreeSet<String> = requirements().list.into_iter().map(|r| r.id).collect();
    let unknown: Vec<String> = citations()
        .into_iter()
        .filter(|(id, _)| !known.contains(id))
        .map(|(id, cases)| format!("{id} (cited by {})", cases.join(", ")))
        .collect();
    assert!(
        unknown.is_empty(),
        "cases cite ids that spec/requirements.json does not list:\n  {}",
        unknown.join("\n  ")
    );
}
