//! The records profile's requests: `create`, `read`, `update` and `delete`
//! against the store. Writes commit under the store lock, which also pushes
//! them to the matching watches (see `store.rs`).

use parking_lot::RwLockWriteGuard;
use tidewire_protocol::{
    Create, Created, Delete, Deleted, ErrorBody, ErrorCode, IdempotencyKey, Origin, Position, Read,
    Records, RequestId, ServerMessage, Update, Updated,
};

use super::{parse_filter, Caller, Reply};
use crate::auth::Action;
use crate::idempotency::Remember;
use crate::session::Session;
use crate::store::{record_id, Query, Store, WriteMeta};
use crate::util::{error, invalid_at};

const DEFAULT_READ_LIMIT: u64 = 100;
const MAX_READ_LIMIT: u64 = 1000;

pub(super) fn create(
    session: &Session,
    caller: &Caller,
    create: &Create,
) -> Result<Reply, ErrorBody> {
    let (database, collection) = session.namespace(&create.database, &create.collection)?;
    let ns = format!("{database}.{collection}");
    // A non-string `_id` is reported before a missing scope (TW-CORE-23).
    record_id(&create.record)?;
    caller.require(Action::Write, &ns, "writing")?;
    let key = create.idempotency_key.as_ref();
    let (meta, mut store) = match begin_write(session, caller, &create.id, key, create)? {
        Keyed::New(meta, store) => (meta, store),
        Keyed::Repeat(reply) => return Ok((*reply).into()),
    };
    let record = store.create_as(&database, &collection, create.record.clone(), &meta)?;
    // Still under the write lock: the head is this commit.
    let position = store.head_position();
    drop(store);
    Ok(ServerMessage::Created(Created {
        id: create.id.clone(),
        record,
        position: Some(position),
    })
    .into())
}

/// The origin of a write and, when it carries a key, what to remember.
pub(super) fn write_meta(
    session: &Session,
    caller: &Caller,
    id: &RequestId,
    key: Option<&IdempotencyKey>,
    request: &impl serde::Serialize,
) -> WriteMeta {
    let key = key.filter(|_| !session.state.config.faults.ignore_idempotency_keys);
    WriteMeta {
        origin: Some(Origin {
            connection_id: session.conn.id.clone(),
            idempotency_key: key.cloned(),
        })
        .filter(|_| !session.state.config.faults.omit_origin),
        remember: key.map(|key| (Remember::new(caller.principal, &key.0, request), id.clone())),
    }
}

/// A write whose idempotency key was checked: the store locked for it, or the
/// reply of the earlier write its key repeats.
enum Keyed<'s> {
    New(WriteMeta, RwLockWriteGuard<'s, Store>),
    Repeat(Box<ServerMessage>),
}

fn begin_write<'s>(
    session: &'s Session,
    caller: &Caller,
    id: &RequestId,
    key: Option<&IdempotencyKey>,
    request: &impl serde::Serialize,
) -> Result<Keyed<'s>, ErrorBody> {
    let meta = write_meta(session, caller, id, key, request);
    let store = session.state.store.write();
    let accept_reused = session.state.config.faults.accept_reused_keys;
    Ok(match recall(&store, &meta, accept_reused)? {
        Some(repeat) => Keyed::Repeat(Box::new(repeat)),
        None => Keyed::New(meta, store),
    })
}

/// The remembered reply when the write repeats an earlier one with its key.
fn recall(
    store: &Store,
    meta: &WriteMeta,
    accept_reused: bool,
) -> Result<Option<ServerMessage>, ErrorBody> {
    match &meta.remember {
        Some((write, id)) => match store.recall(write, id) {
            Err(reused) if reused.code == ErrorCode::Conflict => {
                if accept_reused {
                    Ok(None)
                } else {
                    Err(reused)
                }
            }
            other => other,
        },
        None => Ok(None),
    }
}

pub(super) fn read(session: &Session, caller: &Caller, read: &Read) -> Result<Reply, ErrorBody> {
    let (database, collection) = session.namespace(&read.database, &read.collection)?;
    let ns = format!("{database}.{collection}");
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
        offset: usize::try_from(read.offset.unwrap_or(0)).unwrap_or(usize::MAX),
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
                    &database,
                    &collection,
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
        None => store.query(caller.principal, &database, &collection, &query),
    };
    // Taken under the same shared lock as the records: no commit falls between.
    let position = read_position(session, &store);
    drop(store);
    Ok(ServerMessage::Records(Records {
        id: read.id.clone(),
        count: records.len() as u64,
        records,
        total: total as u64,
        position: Some(position),
    })
    .into())
}

pub(super) fn update(
    session: &Session,
    caller: &Caller,
    update: &Update,
) -> Result<Reply, ErrorBody> {
    let (database, collection) = session.namespace(&update.database, &update.collection)?;
    let ns = format!("{database}.{collection}");
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
    let key = update.idempotency_key.as_ref();
    let (meta, mut store) = match begin_write(session, caller, &update.id, key, update)? {
        Keyed::New(meta, store) => (meta, store),
        Keyed::Repeat(reply) => return Ok((*reply).into()),
    };
    let record = store.update_as(
        &database,
        &collection,
        &update.record_id,
        (&update.set, &update.unset),
        &meta,
    )?;
    let position = store.head_position();
    drop(store);
    Ok(ServerMessage::Updated(Updated {
        id: update.id.clone(),
        record,
        position: Some(position),
    })
    .into())
}

pub(super) fn delete(
    session: &Session,
    caller: &Caller,
    delete: &Delete,
) -> Result<Reply, ErrorBody> {
    let (database, collection) = session.namespace(&delete.database, &delete.collection)?;
    let ns = format!("{database}.{collection}");
    caller.require(Action::Write, &ns, "writing")?;
    let key = delete.idempotency_key.as_ref();
    let (meta, mut store) = match begin_write(session, caller, &delete.id, key, delete)? {
        Keyed::New(meta, store) => (meta, store),
        Keyed::Repeat(reply) => return Ok((*reply).into()),
    };
    store.delete_as(&database, &collection, &delete.record_id, &meta)?;
    let position = store.head_position();
    drop(store);
    Ok(ServerMessage::Deleted(Deleted {
        id: delete.id.clone(),
        record_id: delete.record_id.clone(),
        position: Some(position),
    })
    .into())
}

/// The position a read reflects; the `read-position-behind` fault names the
/// commit before it, so that a watch started after it repeats one change.
fn read_position(session: &Session, store: &Store) -> Position {
    let mut position = store.head_position();
    if session.state.config.faults.read_position_behind {
        position = store.position_before(&position);
    }
    position
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
