//! The vector profile's request: `search`, the k nearest records of a
//! collection by a vector field (section 24), answered by an exact scan of
//! the collection under the store's shared lock.

use tidewire_protocol::{
    ErrorBody, Metric, Search, SearchResults, ServerMessage, MAX_SEARCH_K, MAX_VECTOR_COMPONENT,
    MAX_VECTOR_DIMENSIONS,
};

use super::{parse_filter, Caller, Reply};
use crate::auth::Action;
use crate::session::Session;
use crate::store::VectorSearch;
use crate::util::invalid_at;

pub(super) fn search(
    session: &Session,
    caller: &Caller,
    search: &Search,
) -> Result<Reply, ErrorBody> {
    let faults = &session.state.config.faults;
    let (database, collection) = session.namespace(&search.database, &search.collection)?;
    let ns = format!("{database}.{collection}");
    // Everything judged from the request alone comes before the scope check (TW-CORE-23).
    tidewire_filter::check_path(&search.field)
        .map_err(|kind| invalid_at("field", kind.to_string()))?;
    check_vector(search)?;
    let k_in_range = (1..=MAX_SEARCH_K).contains(&search.k);
    if !k_in_range && !faults.search_accepts_any_k {
        return Err(invalid_at(
            "k",
            format!("`k` must be from 1 to {MAX_SEARCH_K}"),
        ));
    }
    let filter = parse_filter(search.filter.as_ref())?;
    for (index, path) in search.fields.iter().flatten().enumerate() {
        tidewire_filter::check_path(path)
            .map_err(|kind| invalid_at(format!("fields[{index}]"), kind.to_string()))?;
    }
    caller.require(Action::Read, &ns, "reading")?;
    let metric = match search.metric {
        Metric::Cosine if faults.cosine_as_dot => Metric::Dot,
        metric => metric,
    };
    let choices = &session.state.choices;
    let query = VectorSearch {
        field: &search.field,
        vector: &search.vector,
        metric,
        k: search.k as usize,
        filter: filter.filter(|_| !faults.search_ignores_filter),
        fields: search.fields.clone(),
        ties_descending: choices.search_ties_descending(),
        skip_other_dimensions: faults.search_skips_other_dimensions,
        miss_nearest: faults.search_misses_nearest,
    };
    let mut results = session
        .state
        .store
        .read()
        .search(&database, &collection, &query)?;
    for result in &mut results {
        result.score = choices.search_score(result.score);
    }
    Ok(ServerMessage::SearchResults(SearchResults {
        id: search.id.clone(),
        results,
    })
    .into())
}

/// The query vector's own rules (TW-VECTOR-5): a length the profile allows,
/// components within the bound, and for cosine a direction.
fn check_vector(search: &Search) -> Result<(), ErrorBody> {
    let dimensions = search.vector.len();
    if dimensions == 0 || dimensions > MAX_VECTOR_DIMENSIONS {
        return Err(invalid_at(
            "vector",
            format!("a vector has 1 to {MAX_VECTOR_DIMENSIONS} components, not {dimensions}"),
        ));
    }
    if let Some(index) = search
        .vector
        .iter()
        .position(|x| x.abs() > MAX_VECTOR_COMPONENT)
    {
        return Err(invalid_at(
            format!("vector[{index}]"),
            format!("a vector component is at most {MAX_VECTOR_COMPONENT:e} in magnitude"),
        ));
    }
    if search.metric == Metric::Cosine && search.vector.iter().all(|x| *x == 0.0) {
        return Err(invalid_at(
            "vector",
            "the zero vector has no direction to compare by cosine",
        ));
    }
    Ok(())
}
