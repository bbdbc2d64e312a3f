//! Rules on the frames a case received that patterns cannot state: they
//! relate a frame to every other frame of the case (ids distinct, ids
//! increasing) or to the runner's clock (timestamps near now). `prop` checks
//! them on the transcript of every generated case.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// How far a server timestamp may lie outside the time the case ran, by the
/// runner's clock. Only the clocks of two hosts differ by this: a frame's
/// timestamp is compared with when the case started and when the frame was
/// received, so a slow server or runner widens nothing.
pub const CLOCK_TOLERANCE_MS: f64 = 1000.0;

/// One frame a case received.
pub struct Received<'a> {
    /// Milliseconds after the case started.
    pub at_ms: f64,
    pub frame: &'a Value,
}

/// Checks the frames of one case, received in this order, against the rules
/// that span frames. `started` bounds, in Unix milliseconds by the runner's
/// clock, when the case started: no earlier than `started.0`, no later than
/// `started.1`.
pub fn check_received(frames: &[Received<'_>], started: (f64, f64)) -> Result<(), String> {
    let mut publications = BTreeSet::new();
    let mut room_ids: BTreeMap<&str, &str> = BTreeMap::new();
    let mut posted: BTreeMap<(&str, &str), Value> = BTreeMap::new();
    for received in frames {
        let frame = received.frame;
        for (field, stamp) in timestamps(frame) {
            check_clock(field, stamp, received.at_ms, started)?;
        }
        check_push_time(frame)?;
        match frame["type"].as_str() {
            Some("published") => {
                if let Some(id) = frame["message_id"].as_str() {
                    if !publications.insert(id) {
                        return Err(format!(
                            "TW-TOPIC-1: two publications got the message_id {id:?}"
                        ));
                    }
                }
            }
            Some("posted") => {
                if let (Some(room), Some(id)) =
                    (frame["room"].as_str(), frame["message_id"].as_str())
                {
                    // A post repeated with its idempotency key gets the
                    // first one's reply again (TW-IDEM-1): the same message,
                    // so the same id, and everything else the same too.
                    let reply = without_id(frame);
                    match posted.get(&(room, id)) {
                        Some(first) if *first == reply => continue,
                        Some(_) => {
                            return Err(format!(
                            "TW-ROOM-10: two messages of room {room:?} got the message_id {id:?}"
                        ))
                        }
                        None => {}
                    }
                    posted.insert((room, id), reply);
                    if let Some(previous) = room_ids.insert(room, id) {
                        if id <= previous {
                            return Err(format!(
                                "TW-ROOM-10: message {id:?} of room {room:?} does not sort after the earlier {previous:?}"
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A reply as a repeat of its request must repeat it: all but its `id`.
fn without_id(frame: &Value) -> Value {
    let mut reply = frame.clone();
    if let Some(members) = reply.as_object_mut() {
        members.remove("id");
    }
    reply
}

/// Every push but a `part` carries the time it was sent (TW-TIME-1); a push
/// is a frame without a request `id` (TW-CORE-10). A part's joined text is
/// matched by the case's patterns, not here.
fn check_push_time(frame: &Value) -> Result<(), String> {
    let Some(kind) = frame["type"].as_str() else {
        return Ok(());
    };
    if kind == "part" || frame.get("id").is_some() {
        return Ok(());
    }
    if frame.get("server_time").and_then(Value::as_str).is_none() {
        return Err(format!(
            "TW-TIME-1: a {kind:?} push carries no server_time string"
        ));
    }
    Ok(())
}

/// The timestamp fields a server frame carries that state when something
/// happened (not `expires_at`, which lies ahead).
fn timestamps(frame: &Value) -> Vec<(&'static str, &str)> {
    let mut stamps = event_timestamps(frame);
    // Every push carries the time it was sent (TW-TIME-1).
    if let Some(sent) = frame.get("server_time").and_then(Value::as_str) {
        stamps.push(("TW-TIME-1: a push's server_time", sent));
    }
    stamps
}

/// The timestamps a frame of each type carries for what it reports.
fn event_timestamps(frame: &Value) -> Vec<(&'static str, &str)> {
    let field = |name: &'static str, value: &'static [&'static str]| {
        value
            .iter()
            .try_fold(frame, |v, key| v.get(key))
            .and_then(Value::as_str)
            .map(|s| (name, s))
    };
    match frame["type"].as_str() {
        Some("heartbeat") => field("heartbeat.at", &["at"]).into_iter().collect(),
        Some("published") => field("published.published_at", &["published_at"])
            .into_iter()
            .collect(),
        Some("publication") => field("publication.published_at", &["published_at"])
            .into_iter()
            .collect(),
        Some("posted") => field("posted.sent_at", &["sent_at"]).into_iter().collect(),
        Some("room_message") => field("room_message.message.sent_at", &["message", "sent_at"])
            .into_iter()
            .collect(),
        Some("change") => field("change.event.committed_at", &["event", "committed_at"])
            .into_iter()
            .collect(),
        Some("history_page") => frame["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["sent_at"].as_str())
            .map(|s| ("history_page.messages[].sent_at", s))
            .collect(),
        _ => Vec::new(),
    }
}

fn check_clock(field: &str, stamp: &str, at_ms: f64, started: (f64, f64)) -> Result<(), String> {
    // A malformed timestamp fails its pattern; this judges only the instant.
    let Some(instant) = unix_ms(stamp) else {
        return Ok(());
    };
    let earliest = started.0 - CLOCK_TOLERANCE_MS;
    let latest = started.1 + at_ms + CLOCK_TOLERANCE_MS;
    if instant < earliest || instant > latest {
        let offset = if instant < earliest {
            instant - started.0
        } else {
            instant - (started.1 + at_ms)
        };
        return Err(format!(
            "{field} {stamp:?} is {:.0} ms off the runner's clock, beyond the {CLOCK_TOLERANCE_MS:.0} ms tolerance",
            offset
        ));
    }
    Ok(())
}

/// Unix milliseconds of an RFC 3339 UTC timestamp (`...Z`), if it is one.
fn unix_ms(stamp: &str) -> Option<f64> {
    let body = stamp.strip_suffix('Z')?;
    let (date, time) = body.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (
        date_parts.next()?.ok()?,
        date_parts.next()?.ok()?,
        date_parts.next()?.ok()?,
    );
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.splitn(3, ':').map(str::parse::<i64>);
    let (hour, minute, second) = (
        clock_parts.next()?.ok()?,
        clock_parts.next()?.ok()?,
        clock_parts.next()?.ok()?,
    );
    let fraction: f64 = if fraction.is_empty() {
        0.0
    } else {
        format!("0.{fraction}").parse().ok()?
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(seconds as f64 * 1000.0 + fraction * 1000.0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_convert_to_unix_milliseconds() {
        assert_eq!(unix_ms("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            unix_ms("2026-01-24T10:30:00.123Z"),
            Some(1_769_250_600_123.0)
        );
        assert_eq!(unix_ms("2000-03-01T00:00:01.5Z"), Some(951_868_801_500.0));
        assert_eq!(unix_ms("2026-01-24 10:30:00Z"), None);
        assert_eq!(unix_ms("2026-01-24T10:30:00+00:00"), None);
    }

    fn received(frames: &[Value]) -> Vec<Received<'_>> {
        frames
            .iter()
            .enumerate()
            .map(|(i, frame)| Received {
                at_ms: i as f64 * 10.0,
                frame,
            })
            .collect()
    }

    const STARTED: (f64, f64) = (1_769_250_600_000.0, 1_769_250_600_050.0);

    #[test]
    fn a_timestamp_outside_the_run_fails_and_one_inside_passes() {
        let ok = [
            json!({"type": "heartbeat", "at": "2026-01-24T10:30:00.500Z",
            "server_time": "2026-01-24T10:30:00.500Z"}),
        ];
        assert_eq!(check_received(&received(&ok), STARTED), Ok(()));
        let stale = [
            json!({"type": "posted", "id": "q", "room": "r", "message_id": "a",
            "sent_at": "2026-01-24T09:30:00.000Z"}),
        ];
        let err = check_received(&received(&stale), STARTED).unwrap_err();
        assert!(err.contains("posted.sent_at"), "{err}");
        let ahead = [json!({"type": "room_message", "room": "r",
            "server_time": "2026-01-24T10:30:00.040Z",
            "message": {"sent_at": "2026-01-24T10:30:05.000Z"}})];
        let err = check_received(&received(&ahead), STARTED).unwrap_err();
        assert!(err.contains("room_message.message.sent_at"), "{err}");
    }

    #[test]
    fn every_push_time_is_near_the_runners_clock() {
        let near = [json!({"type": "presence", "server_time": "2026-01-24T10:30:00.040Z"})];
        assert_eq!(check_received(&received(&near), STARTED), Ok(()));
        let skewed = [json!({"type": "typing", "server_time": "2026-01-24T11:30:00.000Z"})];
        let err = check_received(&received(&skewed), STARTED).unwrap_err();
        assert!(err.starts_with("TW-TIME-1"), "{err}");
    }

    #[test]
    fn every_push_but_a_part_carries_its_time_and_replies_need_none() {
        let frames = [
            json!({"type": "pong", "id": "p"}),
            json!({"type": "part", "data": "{", "last": false}),
            json!({"type": "typing", "server_time": "2026-01-24T10:30:00.010Z"}),
        ];
        assert_eq!(check_received(&received(&frames), STARTED), Ok(()));
        let bare = [json!({"type": "error", "error": {"code": "invalid_message"}})];
        let err = check_received(&received(&bare), STARTED).unwrap_err();
        assert!(err.starts_with("TW-TIME-1"), "{err}");
    }

    #[test]
    fn publications_need_distinct_ids_and_room_messages_increasing_ones() {
        let published = |id: &str| json!({"type": "published", "id": "q", "message_id": id});
        let repeated = [published("p1"), published("p2"), published("p1")];
        let err = check_received(&received(&repeated), STARTED).unwrap_err();
        assert!(err.starts_with("TW-TOPIC-1"), "{err}");
        let posted = |room: &str, id: &str| json!({"type": "posted", "id": "q", "room": room, "message_id": id});
        let rooms = [posted("a", "m-2"), posted("b", "m-1"), posted("a", "m-3")];
        assert_eq!(check_received(&received(&rooms), STARTED), Ok(()));
        let back = [posted("a", "m-2"), posted("a", "m-10")];
        let err = check_received(&received(&back), STARTED).unwrap_err();
        assert!(err.starts_with("TW-ROOM-10"), "{err}");
        // A keyed repeat's reply is the first one again; another message
        // under the id is not.
        let at = |id: &str, seq: u64| {
            json!({"type": "posted", "id": id, "room": "a", "message_id": "m-2",
                "position": {"epoch": "e", "seq": seq}})
        };
        let repeated = [at("q1", 5), at("q2", 5), posted("a", "m-3")];
        assert_eq!(check_received(&received(&repeated), STARTED), Ok(()));
        let reused = [at("q1", 5), at("q2", 6)];
        let err = check_received(&received(&reused), STARTED).unwrap_err();
        assert!(err.contains("two messages"), "{err}");
    }
}
