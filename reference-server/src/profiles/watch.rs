//! The watch profile's request: `watch`, a change stream over the records,
//! which also serves the resume profile through `resume_after`.

use serde_json::{Map, Value};
use tidewire_filter::Pipeline;
use tidewire_protocol::{check_event_path, ErrorBody, Watch};

use super::{filter_error, parse_filter, Caller, Reply};
use crate::auth::Action;
use crate::session::{Session, Subscription};
use crate::store::WatchSub;
use crate::util::invalid_at;

pub(super) fn watch(
    session: &mut Session,
    caller: &Caller,
    watch: &Watch,
) -> Result<Reply, ErrorBody> {
    let (database, collection) = crate::endpoints::resolve_watch(
        session.bound.as_ref(),
        &session.state.config.faults,
        watch.database.as_ref(),
        watch.collection.as_ref(),
    )?;
    if collection.is_some() && database.is_none() {
        return Err(invalid_at("collection", "`collection` requires `database`"));
    }
    if watch.resume_after.is_some()
        && watch.start_after.is_some()
        && !session.state.config.faults.both_resume_forms
    {
        return Err(invalid_at(
            "start_after",
            "`start_after` and `resume_after` name the same thing; send one",
        ));
    }
    let filter = parse_filter(watch.filter.as_ref())?;
    let pipeline = watch
        .pipeline
        .as_ref()
        .map(|stages| {
            let stages = stages.iter().cloned().map(Value::Object).collect();
            Pipeline::parse(&Value::Array(stages)).map_err(|e| filter_error("pipeline", &e))
        })
        .transpose()?;
    if !session.state.config.faults.accept_unmatchable_paths {
        if let Some(filter) = &watch.filter {
            check_event_paths(session, "filter", &filter.0)?;
        }
        for (index, stage) in watch.pipeline.iter().flatten().enumerate() {
            if let Some(Value::Object(filter)) = stage.get("$match") {
                check_event_paths(session, &format!("pipeline.{index}.$match"), filter)?;
            }
        }
    }
    let (filter, pipeline) = if session.state.config.faults.leak_across_filter {
        (None, None)
    } else {
        (filter, pipeline)
    };
    let target = match (&database, &collection) {
        (None, _) => "*".to_string(),
        (Some(db), None) => format!("{db}.*"),
        (Some(db), Some(coll)) => format!("{db}.{coll}"),
    };
    caller.require(Action::Read, &target, "watching")?;
    session.check_subscription_limit()?;
    let (key, sub_id) = session.new_subscription_id();
    let sub = WatchSub {
        conn: session.conn.clone(),
        id: sub_id.as_str().into(),
        database: database.as_ref().map(ToString::to_string),
        collection: collection.as_ref().map(ToString::to_string),
        filter,
        pipeline,
        full_document: watch.full_document,
        view: watch.view,
        drops_leaves: session.state.config.faults.view_drops_leaves,
        head: crate::fanout::change_head(&sub_id),
        permission: crate::auth::Permission::default(),
    };
    // The store queues the `watching` reply itself, ahead of the replayed
    // and live changes it pushes under the same lock.
    let message = session.state.store.write().watch(
        (session.conn.num, key),
        sub,
        watch.id.clone(),
        watch.resume_after.as_ref(),
        watch.start_after.as_ref(),
    )?;
    session
        .targets
        .insert(sub_id.clone(), (Action::Read, target));
    session
        .subscriptions
        .insert(sub_id, Subscription::Watch(key));
    Ok(Reply {
        message,
        queued: true,
    })
}

/// Refuses a field path of a valid filter that no change event can have
/// (TW-PATH-1), located as section 15.9 locates filter problems.
fn check_event_paths(
    session: &Session,
    location: &str,
    filter: &Map<String, Value>,
) -> Result<(), ErrorBody> {
    for (key, value) in filter {
        let here = format!("{location}.{key}");
        match key.as_str() {
            "$and" | "$or" => {
                for (index, branch) in value.as_array().into_iter().flatten().enumerate() {
                    if let Value::Object(branch) = branch {
                        check_event_paths(session, &format!("{here}.{index}"), branch)?;
                    }
                }
            }
            "$not" => {
                if let Value::Object(inner) = value {
                    check_event_paths(session, &here, inner)?;
                }
            }
            // `$text` searches every string, wherever it is.
            key if key.starts_with('$') => {}
            path => {
                let added = session.state.choices.event_members_beyond_schema();
                if let Err(stop) = check_event_path(path, added) {
                    let segment = path.split('.').nth(stop.segment).unwrap_or(path);
                    let hint = stop
                        .suggestion
                        .map(|meant| format!("; did you mean `{meant}`?"))
                        .unwrap_or_default();
                    return Err(invalid_at(
                        here,
                        format!(
                            "no change event has the path `{path}`: `{segment}` is not a member there{hint}"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
