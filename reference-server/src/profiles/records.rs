//! The records profile's requests: `create`, `read`, `update` and `delete`
//! against the store. Writes commit under the store lock, which also pushes
//! them to the matching watches (see `store.rs`).

use tidewire_protocol::{
    Create, Created, Delete, Deleted, ErrorBody, ErrorCode, Read, Records, ServerMessage, Update,
    Updated,
};

use super::{parse_filter, Caller, Reply};
use crate::auth::Action;
use crate::session::Session;
use crate::store::{record_id, Query};
use crate::util::{error, invalid_at};

const DEFAULT_READ_LIMIT: u32 = 100;
const MAX_READ_LIMIT: u32 = 1000;

pub(super) fn create(
    session: &Session,
    caller: &Caller,
    create: &Create,
) -> Result<Reply, ErrorBody> {
    let ns = format!("{}.{}", create.database, create.collection);
    // A non-string `_id` is reported before a missing scope (TW-CORE-23).
    record_id(&create.record)?;
    caller.require(Action::Write, &ns, "writing")?;
    let record = session.state.store.write().create(
        &create.database,
        &create.collection,
        create.record.clone(),
    )?;
    Ok(ServerMessage::Created(Created {
        id: create.id.clone(),
        record,
    })
    .into())
}

pub(super) fn read(session: &Session, caller: &Caller, read: &Read) -> Result<Reply, ErrorBody> {
    let ns = format!("{}.{}", read.database, read.collection);
    // An invalid filter or path is reported before a missing scope (TW-CORE-23).
    let filter = parse_filter(read.filter.as_ref())?;
    for (index, path) in read.fields.iter().flatten().enumerate() {
        check_path(format!("fields[{index}]"), path)?;
    }
    for (index, key) in read.sort.iter().enumerate() {
        check_path(format!("sort[{index}].field"), &key.field)?;
    }
    caller.require(Action::Read, &ns, "reading")?;
    let query = Query {
        filter,
        sort: read.sort.clone(),
        offset: read.offset.unwrap_or(0) as usize,
        limit: read.limit.unwrap_or(DEFAULT_READ_LIMIT).min(MAX_READ_LIMIT) as usize,
        fields: read.fields.clone(),
    };
    // A shared lock: reads and their filters run side by side.
    let store = session.state.store.read();
    let (records, total) = match &read.record_id {
        Some(record_id) => {
            let record = store
                .read_one(
                    caller.principal,
                    &read.database,
                    &read.collection,
                    record_id,
                    query.fields.as_deref(),
                )
                .ok_or_else(|| {
                    error(
                        ErrorCode::NotFound,
                        format!("no record with _id {record_id:?}"),
                    )
                })?;
            (vec![record], 1)
        }
        None => store.query(caller.principal, &read.database, &read.collection, &query),
    };
    drop(store);
    Ok(ServerMessage::Records(Records {
        id: read.id.clone(),
        count: records.len() as u64,
        records,
        total: total as u64,
    })
    .into())
}

pub(super) fn update(
    session: &Session,
    caller: &Caller,
    update: &Update,
) -> Result<Reply, ErrorBody> {
    let ns = format!("{}.{}", update.database, update.collection);
    if update.set.is_empty() && update.unset.is_empty() {
        return Err(error(
            ErrorCode::InvalidMessage,
            "an update needs `set` or `unset`",
        ));
    }
    for path in update.set.keys() {
        check_update_path("set", path)?;
    }
    for (index, path) in update.unset.iter().enumerate() {
        check_update_path(&format!("unset[{index}]"), path)?;
        if update.set.contains_key(path) {
            return Err(invalid_at(
                format!("unset[{index}]"),
                format!("`{path}` is both set and unset"),
            ));
        }
    }
    caller.require(Action::Write, &ns, "writing")?;
    let record = session.state.store.write().update(
        &update.database,
        &update.collection,
        &update.record_id,
        &update.set,
        &update.unset,
    )?;
    Ok(ServerMessage::Updated(Updated {
        id: update.id.clone(),
        record,
    })
    .into())
}

pub(super) fn delete(
    session: &Session,
    caller: &Caller,
    delete: &Delete,
) -> Result<Reply, ErrorBody> {
    let ns = format!("{}.{}", delete.database, delete.collection);
    caller.require(Action::Write, &ns, "writing")?;
    session
        .state
        .store
        .write()
        .delete(&delete.database, &delete.collection, &delete.record_id)?;
    Ok(ServerMessage::Deleted(Deleted {
        id: delete.id.clone(),
        record_id: delete.record_id.clone(),
    })
    .into())
}

/// A dotted path a request names outside a filter (`fields`, `sort`, `set`,
/// `unset`) is a path of section 15.1, checked by the filter crate like filter
/// keys; `location` is where the request carries it, for `details.path`.
fn check_path(location: impl Into<String>, path: &str) -> Result<(), ErrorBody> {
    tidewire_filter::check_path(path).map_err(|kind| invalid_at(location, kind.to_string()))
}

fn check_update_path(field: &str, path: &str) -> Result<(), ErrorBody> {
    let location = if field == "set" {
        format!("set.{path}")
    } else {
        field.to_string()
    };
    if path == "_id" || path.starts_with("_id.") {
        return Err(invalid_at(location, "`_id` cannot be changed"));
    }
    check_path(location, path)
}
