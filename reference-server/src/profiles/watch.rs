//! The watch profile's request: `watch`, a change stream over the records,
//! which also serves the resume profile through `resume_after`.

use serde_json::Value;
use tidewire_filter::Pipeline;
use tidewire_protocol::{ErrorBody, Watch};

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
    if watch.collection.is_some() && watch.database.is_none() {
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
    let (filter, pipeline) = if session.state.config.faults.leak_across_filter {
        (None, None)
    } else {
        (filter, pipeline)
    };
    let target = match (&watch.database, &watch.collection) {
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
        database: watch.database.as_ref().map(ToString::to_string),
        collection: watch.collection.as_ref().map(ToString::to_string),
        filter,
        pipeline,
        full_document: watch.full_document,
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
        .subscriptions
        .insert(sub_id, Subscription::Watch(key));
    Ok(Reply {
        message,
        queued: true,
    })
}
