//! The fixture (suite file) format and its loader.
//!
//! The Rust types below are the single source of truth: `fixture.schema.json`
//! is generated from them, and loading validates each file against that
//! schema before deserializing, so authors get a JSON pointer and a
//! `line:column` for every mistake.

use crate::expr::{Count, ExprError};
use crate::locate::{element_offsets, locate, LineIndex, Position};
use crate::pattern::{self, Pattern};
use crate::schema_set::{SchemaSet, SchemaSetError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// One fixture file: an optional schema set and one or more cases.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Conformance suite file")]
pub struct SuiteFile {
    /// Lets editors find this schema; ignored by the runner.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Free text about the suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Path of a schema set manifest, relative to this file. Every frame
    /// received while running these cases is validated against it.
    /// `--schemas` on the command line takes precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemas: Option<String>,
    /// Steps written once for the cases of this file, which run them with
    /// an `include` step: typically opening a connection and reading its
    /// greeting. In a setup, connection `main` (the default) stands for
    /// the connection the `include` names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub setups: BTreeMap<String, Vec<Step>>,
    /// The cases, run in this order unless `-j` runs several at once.
    #[schemars(length(min = 1))]
    pub cases: Vec<Case>,
}

/// One test case.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique across all loaded suites; selected with `--case`/`--exclude` globs.
    #[schemars(length(min = 1), regex(pattern = r"^\S+$"))]
    pub id: String,
    /// One line saying what the case checks.
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Requirement ids of the specification this case checks (free-form).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<String>,
    /// The protocol profile a server must implement for this case to apply;
    /// none for protocols without profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `should` cases report failures as warnings unless `--strict`.
    #[serde(default)]
    pub level: Level,
    /// Deadline for the whole case in milliseconds (default `--case-timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
    /// Variables the case uses that only the user can supply (`--var
    /// NAME=VALUE`), such as a token or the URL of a differently configured
    /// endpoint. Without all of them the case is skipped, not failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Profiles besides `profile` the server must implement for the case to
    /// run (a case of one profile that uses requests of another); without
    /// them it is skipped, not failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs_profiles: Vec<String>,
    #[schemars(length(min = 1))]
    pub steps: Vec<Step>,
}

impl Case {
    /// `profile` and `needs_profiles`: what the server must implement.
    pub fn profiles(&self) -> impl Iterator<Item = &String> + Clone {
        self.profile.iter().chain(&self.needs_profiles)
    }
}

/// Requirement level, after RFC 2119.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Must,
    Should,
}

fn main_conn() -> String {
    "main".to_string()
}

/// One step of a case; the `step` field says which.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Open a named connection.
    Open(Open),
    /// Close (if open) and reopen a named connection, reusing the options of
    /// its last `open` except those given here.
    Reconnect(Reconnect),
    /// Send one frame.
    Send(Send),
    /// The next frame (not matched by an ignore rule) must match `match`.
    Expect(Expect),
    /// The next `match.len()` frames must match the patterns, in any order.
    ExpectAll(ExpectAll),
    /// Zero or more frames matching `match` (within `min`..`max`), then
    /// one matching `then`.
    ExpectRepeated(ExpectRepeated),
    /// No frame (or no frame matching `match`) may arrive for `for_ms`.
    ExpectSilence(ExpectSilence),
    /// The server must close the connection.
    ExpectClose(ExpectClose),
    /// Add ignore rules for background pushes on a connection.
    Ignore(Ignore),
    /// Sleep.
    Wait(Wait),
    /// Close a connection from the client side.
    Close(Close),
    /// Stop reading a connection's socket, as a slow client would.
    PauseReading(Reading),
    /// Read a paused connection's socket again.
    ResumeReading(Reading),
    /// A plain HTTP/1.1 GET, with expectations on the response.
    Http(Http),
    /// Run the steps of one of the file's `setups`.
    Include(Include),
    /// Drop everything the runner would write on a connection from now on
    /// (Pong answers included) while reading on, as a peer whose outgoing
    /// traffic is lost.
    StopWriting(Reading),
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Open(_) => "open",
            Step::Reconnect(_) => "reconnect",
            Step::Send(_) => "send",
            Step::Expect(_) => "expect",
            Step::ExpectAll(_) => "expect_all",
            Step::ExpectRepeated(_) => "expect_repeated",
            Step::ExpectSilence(_) => "expect_silence",
            Step::ExpectClose(_) => "expect_close",
            Step::Ignore(_) => "ignore",
            Step::Wait(_) => "wait",
            Step::Close(_) => "close",
            Step::PauseReading(_) => "pause_reading",
            Step::ResumeReading(_) => "resume_reading",
            Step::Http(_) => "http",
            Step::Include(_) => "include",
            Step::StopWriting(_) => "stop_writing",
        }
    }

    pub fn conn(&self) -> Option<&str> {
        match self {
            Step::Open(s) => Some(&s.conn),
            Step::Reconnect(s) => Some(&s.conn),
            Step::Send(s) => Some(&s.conn),
            Step::Expect(s) => Some(&s.conn),
            Step::ExpectAll(s) => Some(&s.conn),
            Step::ExpectRepeated(s) => Some(&s.conn),
            Step::ExpectSilence(s) => Some(&s.conn),
            Step::ExpectClose(s) => Some(&s.conn),
            Step::Ignore(s) => Some(&s.conn),
            Step::Close(s) => Some(&s.conn),
            Step::PauseReading(s) | Step::ResumeReading(s) | Step::StopWriting(s) => Some(&s.conn),
            Step::Include(s) => Some(&s.conn),
            Step::Wait(_) | Step::Http(_) => None,
        }
    }

    fn conn_mut(&mut self) -> Option<&mut String> {
        match self {
            Step::Open(s) => Some(&mut s.conn),
            Step::Reconnect(s) => Some(&mut s.conn),
            Step::Send(s) => Some(&mut s.conn),
            Step::Expect(s) => Some(&mut s.conn),
            Step::ExpectAll(s) => Some(&mut s.conn),
            Step::ExpectRepeated(s) => Some(&mut s.conn),
            Step::ExpectSilence(s) => Some(&mut s.conn),
            Step::ExpectClose(s) => Some(&mut s.conn),
            Step::Ignore(s) => Some(&mut s.conn),
            Step::Close(s) => Some(&mut s.conn),
            Step::PauseReading(s) | Step::ResumeReading(s) | Step::StopWriting(s) => {
                Some(&mut s.conn)
            }
            Step::Include(s) => Some(&mut s.conn),
            Step::Wait(_) | Step::Http(_) => None,
        }
    }

    /// A step of a setup as an `include` on connection `conn` runs it:
    /// `main` becomes `conn`.
    pub fn on_conn(&self, conn: &str) -> Step {
        let mut step = self.clone();
        if let Some(name) = step.conn_mut().filter(|name| *name == "main") {
            *name = conn.to_string();
        }
        step
    }
}

/// Handshake options shared by `open` and `reconnect`.
// Flattened into `open` and `reconnect`, which reject unknown fields; serde
// cannot also deny them here.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Handshake {
    /// A whole `ws://` URL to connect to instead of the run URL (typically
    /// `"${some_var}"`, for an endpoint configured differently); `path` and
    /// `query` then apply to it. Interpolated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Path for the request. Starting with `/` it replaces the path of the
    /// run URL; otherwise it is appended to it. Interpolated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Query parameters added to those of the run URL. Values interpolated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<BTreeMap<String, String>>,
    /// Extra request headers. Values interpolated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprotocols: Option<Vec<String>>,
    /// Whether `--token` and `--header` apply to this handshake (default
    /// true); set false to test how the server treats anonymous clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject: Option<bool>,
    /// The subprotocol the server must select.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_subprotocol: Option<String>,
    /// Expect the server to refuse the upgrade instead of accepting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_refusal: Option<Refusal>,
    /// Handshake timeout in milliseconds (default `--timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<Count>,
    /// The largest message this connection accepts, in bytes (default
    /// `--max-frame`, and never more): a larger one fails the connection,
    /// as it would a client with that bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_message_bytes: Option<usize>,
}

impl Handshake {
    /// `self` with fields of `over` replacing those set there.
    pub fn overridden_by(&self, over: &Handshake) -> Handshake {
        Handshake {
            url: over.url.clone().or_else(|| self.url.clone()),
            path: over.path.clone().or_else(|| self.path.clone()),
            query: over.query.clone().or_else(|| self.query.clone()),
            headers: over.headers.clone().or_else(|| self.headers.clone()),
            subprotocols: over
                .subprotocols
                .clone()
                .or_else(|| self.subprotocols.clone()),
            inject: over.inject.or(self.inject),
            expect_subprotocol: over
                .expect_subprotocol
                .clone()
                .or_else(|| self.expect_subprotocol.clone()),
            // A refusal is a property of one attempt: reconnecting after a
            // refused open should not expect another refusal unless asked.
            expect_refusal: over.expect_refusal.clone(),
            timeout_ms: over.timeout_ms.clone().or_else(|| self.timeout_ms.clone()),
            max_message_bytes: over.max_message_bytes.or(self.max_message_bytes),
        }
    }
}

/// An expected handshake refusal: by default an HTTP answer other than
/// 101; with `no_subprotocol`, an upgrade that selects none of the offered
/// subprotocols; with `closed`, an upgrade followed by a close before any
/// message.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// The HTTP status the server must answer with (any non-101 if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub status: Option<u16>,
    /// The server upgrades without selecting an offered subprotocol.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_subprotocol: bool,
    /// The server upgrades, then closes before sending a message, within
    /// the handshake's timeout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
    /// With `closed`: the close code it must use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
}

impl Refusal {
    /// What the refusal looks like, for messages.
    pub fn describe(&self) -> String {
        if self.no_subprotocol {
            "an upgrade without any of the offered subprotocols".into()
        } else if self.closed || self.close_code.is_some() {
            match self.close_code {
                Some(code) => format!("an upgrade followed by a close with code {code}"),
                None => "an upgrade followed by a close".into(),
            }
        } else {
            match self.status {
                Some(status) => format!("a refusal with HTTP {status}"),
                None => "a refusal with an HTTP status other than 101".into(),
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Open {
    /// Connection name used by later steps (default `main`).
    #[serde(default = "main_conn")]
    pub conn: String,
    #[serde(flatten)]
    pub handshake: Handshake,
    /// Ignore rules installed before the first frame is read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<Pattern>,
    /// Messages the server sends in pieces, joined before expectations see them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<Join>,
}

/// How a connection joins a message a server sends in pieces: frames
/// matching `match` are taken off the stream (still recorded and
/// schema-checked), the strings at `data` are concatenated, and when the
/// value at `last` is `true` the joined text takes their place as one frame.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// Frames that are pieces.
    #[serde(rename = "match")]
    pub pattern: Pattern,
    /// JSON pointer to the string each piece carries, such as `/data`.
    pub data: String,
    /// JSON pointer to the boolean that is true on the last piece.
    pub last: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reconnect {
    #[serde(default = "main_conn")]
    pub conn: String,
    #[serde(flatten)]
    pub handshake: Handshake,
}

/// Exactly one of `json`, `text`, `text_hex`, `binary_base64`, `binary_hex`, `sized`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Send {
    #[serde(default = "main_conn")]
    pub conn: String,
    /// A JSON value sent as a text frame; strings inside are interpolated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// Raw text sent as is (interpolated), e.g. malformed JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A text frame whose payload is exactly these bytes (hex, spaces
    /// allowed), valid UTF-8 or not: for testing how a server treats text
    /// frames that are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_hex: Option<String>,
    /// A binary frame, base64 (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_base64: Option<String>,
    /// A binary frame, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_hex: Option<String>,
    /// A text frame of an exact size, for testing limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sized: Option<Sized>,
    /// A text frame nesting `open` `depth` times, for testing depth limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested: Option<Nested>,
    /// One WebSocket frame built field by field, for testing how a server
    /// treats frames that break RFC 6455.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<RawFrame>,
    /// The frame is deliberately invalid: skip the outbound-schema warning.
    #[serde(default)]
    pub invalid: bool,
    /// Send the same frame this many times back to back (default 1), e.g.
    /// to exceed a rate limit.
    /// 1 to 100000; a count (a number or an expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Count>,
}

/// One frame as RFC 6455 section 5.2 lays it out, any field allowed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFrame {
    /// 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong; the
    /// others are reserved.
    #[schemars(range(max = 15))]
    pub opcode: u8,
    /// The FIN bit (default true).
    #[serde(default = "yes")]
    pub fin: bool,
    /// The reserved bits, which a frame carries only under an extension.
    #[serde(default)]
    pub rsv1: bool,
    #[serde(default)]
    pub rsv2: bool,
    #[serde(default)]
    pub rsv3: bool,
    /// Mask the payload, as RFC 6455 requires of clients (default true).
    /// False writes the frame unmasked, below the WebSocket library, which
    /// works on ws:// URLs only.
    #[serde(default = "yes")]
    pub masked: bool,
    /// The payload, hex (spaces allowed; default empty).
    #[serde(default)]
    pub payload_hex: String,
}

fn yes() -> bool {
    true
}

/// The most frames one `send` step sends.
pub const MAX_REPEAT: u64 = 100_000;

impl Send {
    /// How many times the frame is sent.
    pub fn repeat(&self, vars: &pattern::Captures) -> Result<u64, SendCountError> {
        let Some(repeat) = &self.repeat else {
            return Ok(1);
        };
        let n = repeat.resolve(vars)?;
        if !(1..=MAX_REPEAT).contains(&n) {
            return Err(SendCountError::OutOfRange(n));
        }
        Ok(n)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendCountError {
    #[error("`repeat`: {0}")]
    Expr(#[from] ExprError),
    #[error("`repeat` is {0}; it must be 1 to {MAX_REPEAT}")]
    OutOfRange(u64),
}

/// `prefix`, `open` `depth` times, `inner`, `close` `depth` times, `suffix`:
/// `{"depth": "${max_nesting_depth}", "prefix": "{\"type\":\"ping\",\"payload\":", "suffix": "}"}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nested {
    /// A count (a number or an expression), at most 1,000,000.
    pub depth: Count,
    /// Interpolated.
    #[serde(default)]
    pub prefix: String,
    /// Opens one level (default `[`).
    #[serde(default = "open_bracket")]
    pub open: String,
    /// Closes one level (default `]`).
    #[serde(default = "close_bracket")]
    pub close: String,
    /// Put at the deepest level (default empty).
    #[serde(default)]
    pub inner: String,
    /// Interpolated.
    #[serde(default)]
    pub suffix: String,
}

fn open_bracket() -> String {
    "[".into()
}

fn close_bracket() -> String {
    "]".into()
}

/// Deeper frames are a mistake in the suite, not a test of the server.
const MAX_DEPTH: u64 = 1_000_000;

impl Nested {
    pub fn render(&self, vars: &pattern::Captures) -> Result<String, SizedError> {
        let depth = self.depth.resolve(vars)?;
        if depth > MAX_DEPTH {
            return Err(SizedError::TooDeep(depth));
        }
        let depth = depth as usize;
        Ok(format!(
            "{}{}{}{}{}",
            pattern::interpolate_str(&self.prefix, vars)?,
            self.open.repeat(depth),
            self.inner,
            self.close.repeat(depth),
            pattern::interpolate_str(&self.suffix, vars)?
        ))
    }
}

/// `prefix` + `fill` repeated + `suffix`, exactly `bytes` + `plus` long.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sized {
    /// A count: a number or an expression such as `"${max_bytes}"`.
    pub bytes: Count,
    /// Added to `bytes` (may be negative): `"bytes": "${limit}", "plus": 1`
    /// is one byte over an announced limit.
    #[serde(default)]
    pub plus: i64,
    /// ASCII text repeated (and cut) to pad the frame (default `x`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<String>,
    /// Interpolated.
    #[serde(default)]
    pub prefix: String,
    /// Interpolated.
    #[serde(default)]
    pub suffix: String,
}

impl Sized {
    /// The frame's size once `bytes` is resolved (`vars` for an interpolated count).
    pub fn size(&self, vars: &pattern::Captures) -> Result<usize, SizedError> {
        let base = self.bytes.resolve(vars)?;
        i64::try_from(base)
            .ok()
            .and_then(|b| b.checked_add(self.plus))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(SizedError::OutOfRange {
                base,
                plus: self.plus,
            })
    }

    pub fn render(&self, vars: &pattern::Captures) -> Result<String, SizedError> {
        let bytes = self.size(vars)?;
        let fill = self.fill.as_deref().unwrap_or("x");
        if fill.is_empty() || !fill.is_ascii() {
            return Err(SizedError::Fill);
        }
        let prefix = pattern::interpolate_str(&self.prefix, vars)?;
        let suffix = pattern::interpolate_str(&self.suffix, vars)?;
        let fixed = prefix.len() + suffix.len();
        if fixed > bytes {
            return Err(SizedError::TooSmall { fixed, bytes });
        }
        let pad = bytes - fixed;
        let mut out = String::with_capacity(bytes);
        out.push_str(&prefix);
        out.push_str(&fill.repeat(pad / fill.len() + 1)[..pad]);
        out.push_str(&suffix);
        Ok(out)
    }
}

/// Why a `sized` frame cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SizedError {
    #[error(transparent)]
    Interpolation(#[from] pattern::InterpolationError),
    #[error(transparent)]
    Expr(#[from] ExprError),
    #[error("`bytes` ({base}) plus `plus` ({plus}) is out of range")]
    OutOfRange { base: u64, plus: i64 },
    #[error("a depth of {0} is more than {MAX_DEPTH}")]
    TooDeep(u64),
    #[error("`fill` must be non-empty ASCII so that sizes are exact")]
    Fill,
    #[error("prefix and suffix are {fixed} bytes, more than the frame's size ({bytes})")]
    TooSmall { fixed: usize, bytes: usize },
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default = "main_conn")]
    pub conn: String,
    /// The pattern (see the pattern language in the README).
    #[serde(rename = "match")]
    pub pattern: Pattern,
    /// Milliseconds to wait (default `--timeout`); a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<Count>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectAll {
    #[serde(default = "main_conn")]
    pub conn: String,
    /// One pattern per expected frame; each frame must match a distinct one.
    #[serde(rename = "match")]
    #[schemars(length(min = 1))]
    pub patterns: Vec<Pattern>,
    /// A JSON pointer (`/subscription`): frames with the same string,
    /// number or boolean there must match the patterns with that value
    /// there in the order they are listed; frames of other values, and
    /// patterns without one, interleave freely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_by: Option<String>,
    /// Milliseconds to wait for all of them (default `--timeout`); a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<Count>,
}

/// Frames that may come any number of times before an awaited one: the
/// heartbeats of a slow exchange, or the many like replies of a bulk send.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectRepeated {
    #[serde(default = "main_conn")]
    pub conn: String,
    /// The pattern of the repeated frames; their captures are dropped.
    #[serde(rename = "match")]
    pub pattern: Pattern,
    /// Fewest repeated frames before `then` (default 0); a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Count>,
    /// Most repeated frames (default no limit); a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Count>,
    /// The frame that ends the step; its captures are kept. Once `min`
    /// repeated frames have come, a frame matching both ends the step.
    pub then: Pattern,
    /// Milliseconds for the whole step (default `--timeout`); a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<Count>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectSilence {
    #[serde(default = "main_conn")]
    pub conn: String,
    /// How long to listen, in milliseconds; a count.
    pub for_ms: Count,
    /// Only frames matching this pattern break the silence; others stay
    /// queued for later steps.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Pattern>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectClose {
    #[serde(default = "main_conn")]
    pub conn: String,
    /// Expected close code; 1006 means the connection dropped without a
    /// close frame. Any code if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Regex the close reason must match (interpolated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Milliseconds to wait (default `--timeout`); a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_ms: Option<Count>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ignore {
    #[serde(default = "main_conn")]
    pub conn: String,
    /// Frames matching any of these patterns are skipped by expectations
    /// (still schema-checked and recorded).
    #[serde(rename = "match")]
    pub patterns: Vec<Pattern>,
    /// Drop the rules installed so far first.
    #[serde(default)]
    pub replace: bool,
}

/// Runs the steps of a setup of the file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Include {
    /// The connection the setup's `main` stands for (default `main`).
    #[serde(default = "main_conn")]
    pub conn: String,
    /// The name of the setup, a key of the file's `setups`.
    pub setup: String,
}

/// `pause_reading` / `resume_reading`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reading {
    #[serde(default = "main_conn")]
    pub conn: String,
}

/// A plain HTTP/1.1 GET over TCP (no TLS).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// A whole `http://` URL (interpolated), instead of `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Path and optional query on the host and port of the run URL
    /// (interpolated; default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Extra request headers. Values interpolated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// The status the response must have.
    #[schemars(range(min = 100, max = 599))]
    pub status: u16,
    /// Regex the `Content-Type` header must match (it must be present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Pattern the body, parsed as JSON, must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Pattern>,
    /// Milliseconds for the whole exchange (default `--timeout`); a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<Count>,
    /// Largest response (head and body) read (default 1 MiB); a bigger
    /// one fails the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 67_108_864))]
    pub max_bytes: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// Milliseconds; a count.
    pub ms: Count,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Close {
    #[serde(default = "main_conn")]
    pub conn: String,
    /// Close code sent (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Interpolated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Milliseconds to wait for the server's closing handshake (default
    /// `--timeout`); a count. Not waiting long enough is not a failure,
    /// unless `reply_code` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_ms: Option<Count>,
    /// The code the server's close frame must answer with, within
    /// `within_ms` (1005 for a close frame without a code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_code: Option<u16>,
}

/// The JSON Schema of suite files, as checked in at `fixture.schema.json`.
pub fn fixture_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let schema = generator.into_root_schema_for::<SuiteFile>();
    serde_json::to_value(schema).expect("schemas serialize")
}

/// `fixture_schema()` as pretty JSON with a trailing newline.
pub fn fixture_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&fixture_schema()).expect("schemas serialize");
    text.push('\n');
    text
}

fn fixture_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&fixture_schema())
            .expect("the generated fixture schema compiles")
    })
}

/// A case ready to run, with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedCase {
    pub case: Case,
    /// The suite file, as given (for messages and reports).
    pub file: String,
    pub position: Position,
    /// Position of each step in the file.
    pub step_positions: Vec<Position>,
    pub schemas: Option<Arc<SchemaSet>>,
    /// The file's setups, for `include` steps.
    pub setups: Arc<BTreeMap<String, Vec<Step>>>,
}

/// A loaded suite file.
#[derive(Debug, Clone)]
pub struct Suite {
    pub file: String,
    pub description: Option<String>,
    pub cases: Vec<LoadedCase>,
}

/// A problem in a suite file, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureProblem {
    pub pointer: String,
    pub position: Position,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: invalid JSON: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: String,
        problems: Vec<FixtureProblem>,
    },
    #[error("{path}: cannot load its schema set")]
    Schemas {
        path: String,
        #[source]
        source: SchemaSetError,
    },
    #[error("case id {id:?} is defined twice: {first} and {second}")]
    DuplicateId {
        id: String,
        first: String,
        second: String,
    },
    #[error("{path}: no suite files found (expected *.json files)")]
    Empty { path: String },
}

fn render_problems(path: &str, problems: &[FixtureProblem]) -> String {
    let mut out = format!("{path}: invalid suite file");
    for p in problems {
        let pointer = if p.pointer.is_empty() {
            "(root)"
        } else {
            &p.pointer
        };
        out.push_str(&format!(
            "\n  {path}:{}: at {pointer}: {}",
            p.position, p.message
        ));
    }
    out
}

/// Loads suites from files and directories (each directory's `*.json`
/// files, not its subdirectories, in sorted order). `schemas_override` replaces the schema sets
/// declared by the files. Case ids must be unique across everything loaded.
pub fn load_suites(
    paths: &[PathBuf],
    schemas_override: Option<Arc<SchemaSet>>,
) -> Result<Vec<Suite>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            collect_json(path, &mut files).map_err(|source| LoadError::Read {
                path: path.display().to_string(),
                source,
            })?;
            if files.len() == before {
                return Err(LoadError::Empty {
                    path: path.display().to_string(),
                });
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut cache: HashMap<PathBuf, Arc<SchemaSet>> = HashMap::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut suites = Vec::new();
    for file in files {
        let suite = load_suite(&file, schemas_override.clone(), &mut cache)?;
        for case in &suite.cases {
            let here = format!("{}:{}", case.file, case.position);
            if let Some(first) = seen.insert(case.case.id.clone(), here.clone()) {
                return Err(LoadError::DuplicateId {
                    id: case.case.id.clone(),
                    first,
                    second: here,
                });
            }
        }
        suites.push(suite);
    }
    Ok(suites)
}

/// Only the directory itself is searched: suites often keep their schema
/// set in a subdirectory, and those files are not suites.
fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    out.extend(
        entries
            .into_iter()
            .filter(|e| e.is_file() && e.extension().is_some_and(|x| x == "json")),
    );
    Ok(())
}

/// Parses and checks one suite file given as text; `path` is used for
/// messages and to resolve the file's `schemas`.
pub fn parse_suite(
    path: &Path,
    text: &str,
    schemas_override: Option<Arc<SchemaSet>>,
) -> Result<Suite, LoadError> {
    load_text(path, text, schemas_override, &mut HashMap::new())
}

fn load_suite(
    path: &Path,
    schemas_override: Option<Arc<SchemaSet>>,
    cache: &mut HashMap<PathBuf, Arc<SchemaSet>>,
) -> Result<Suite, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    load_text(path, &text, schemas_override, cache)
}

fn load_text(
    path: &Path,
    text: &str,
    schemas_override: Option<Arc<SchemaSet>>,
    cache: &mut HashMap<PathBuf, Arc<SchemaSet>>,
) -> Result<Suite, LoadError> {
    let display = path.display().to_string();
    let syntax = |e: serde_json::Error| LoadError::Syntax {
        path: display.clone(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    };
    let value: Value = serde_json::from_str(text).map_err(syntax)?;
    crate::unique_keys::check(text).map_err(syntax)?;
    let problem = |pointer: String, message: String| FixtureProblem {
        position: locate(text, &pointer),
        pointer,
        message,
    };

    let mut problems: Vec<FixtureProblem> = fixture_validator()
        .iter_errors(&value)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            let message = step_message(&value, &pointer).unwrap_or_else(|| e.to_string());
            problem(pointer, message)
        })
        .collect();
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.position.line, p.position.column));
        problems.dedup();
        return Err(LoadError::Invalid {
            path: display,
            problems,
        });
    }
    let file: SuiteFile = serde_json::from_value(value).map_err(|e| LoadError::Invalid {
        path: display.clone(),
        problems: vec![problem(String::new(), e.to_string())],
    })?;

    let mut steps: Vec<(String, &Step)> = Vec::new();
    for (name, setup) in &file.setups {
        for (si, step) in setup.iter().enumerate() {
            let at = format!(
                "/setups/{}/{si}",
                name.replace('~', "~0").replace('/', "~1")
            );
            if matches!(step, Step::Include(_)) {
                problems.push(problem(at.clone(), "a setup cannot include another".into()));
            }
            steps.push((at, step));
        }
    }
    for (ci, case) in file.cases.iter().enumerate() {
        for (si, step) in case.steps.iter().enumerate() {
            steps.push((format!("/cases/{ci}/steps/{si}"), step));
        }
    }
    for (at, step) in steps {
        if let Step::Include(include) = step {
            if !file.setups.contains_key(&include.setup) {
                problems.push(problem(
                    format!("{at}/setup"),
                    format!("no setup named {:?} in this file", include.setup),
                ));
            }
        }
        for (pointer, message) in check_step(step) {
            problems.push(problem(format!("{at}{pointer}"), message));
        }
    }
    if !problems.is_empty() {
        return Err(LoadError::Invalid {
            path: display,
            problems,
        });
    }

    let schemas = match (schemas_override, &file.schemas) {
        (Some(set), _) => Some(set),
        (None, Some(rel)) => {
            let manifest = path.parent().unwrap_or(Path::new(".")).join(rel);
            let key = std::path::absolute(&manifest).unwrap_or(manifest.clone());
            match cache.get(&key) {
                Some(set) => Some(set.clone()),
                None => {
                    let set = Arc::new(SchemaSet::load(&manifest).map_err(|source| {
                        LoadError::Schemas {
                            path: format!("{display}:{}", locate(text, "/schemas")),
                            source,
                        }
                    })?);
                    cache.insert(key, set.clone());
                    Some(set)
                }
            }
        }
        (None, None) => None,
    };

    let setups = Arc::new(file.setups);
    let lines = LineIndex::new(text);
    let case_offsets = element_offsets(text, "/cases");
    let cases = file
        .cases
        .into_iter()
        .enumerate()
        .map(|(ci, case)| {
            let offset = case_offsets.get(ci).copied().unwrap_or(0);
            let position = lines.position(offset);
            LoadedCase {
                file: display.clone(),
                step_positions: step_positions(text, &lines, offset, case.steps.len()),
                position,
                schemas: schemas.clone(),
                setups: setups.clone(),
                case,
            }
        })
        .collect();
    Ok(Suite {
        file: display,
        description: file.description,
        cases,
    })
}

/// Positions of a case's steps, found in one pass over the case's own text
/// (the case starts at byte `case`): locating each step from the start of the
/// file would make loading quadratic in its size.
fn step_positions(text: &str, lines: &LineIndex, case: usize, steps: usize) -> Vec<Position> {
    let offsets = element_offsets(&text[case..], "/steps");
    (0..steps)
        .map(|si| lines.position(case + offsets.get(si).copied().unwrap_or(0)))
        .collect()
}

/// A schema error on a step is a `oneOf` failure that names no field;
/// deserializing the step alone gives a precise message instead (unknown
/// field, missing field, unknown step kind).
fn step_message(root: &Value, pointer: &str) -> Option<String> {
    let parts: Vec<&str> = pointer.split('/').collect();
    let is_step = parts.len() == 5 && parts[1] == "cases" && parts[3] == "steps";
    if !is_step {
        return None;
    }
    let step = root.pointer(pointer)?;
    if !step.is_object() {
        return None;
    }
    serde_json::from_value::<Step>(step.clone())
        .err()
        .map(|e| format!("invalid step: {e}"))
}

/// serde_json appends " at line L column C"; the loader prints the position
/// in `file:line:column` form instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The numeric fields of a step that take counts, with their pointers.
fn counts(step: &Step) -> Vec<(String, &Count)> {
    let mut out: Vec<(String, Option<&Count>)> = Vec::new();
    match step {
        Step::Open(Open { handshake, .. }) | Step::Reconnect(Reconnect { handshake, .. }) => {
            out.push(("/timeout_ms".into(), handshake.timeout_ms.as_ref()));
        }
        Step::Expect(e) => out.push(("/timeout_ms".into(), e.timeout_ms.as_ref())),
        Step::ExpectAll(e) => out.push(("/timeout_ms".into(), e.timeout_ms.as_ref())),
        Step::ExpectRepeated(e) => {
            out.push(("/timeout_ms".into(), e.timeout_ms.as_ref()));
            out.push(("/min".into(), e.min.as_ref()));
            out.push(("/max".into(), e.max.as_ref()));
        }
        Step::ExpectSilence(e) => out.push(("/for_ms".into(), Some(&e.for_ms))),
        Step::ExpectClose(e) => out.push(("/within_ms".into(), e.within_ms.as_ref())),
        Step::Close(c) => out.push(("/within_ms".into(), c.within_ms.as_ref())),
        Step::Http(h) => out.push(("/timeout_ms".into(), h.timeout_ms.as_ref())),
        Step::Wait(w) => out.push(("/ms".into(), Some(&w.ms))),
        Step::Send(s) => {
            out.push(("/repeat".into(), s.repeat.as_ref()));
            out.push(("/sized/bytes".into(), s.sized.as_ref().map(|z| &z.bytes)));
            out.push(("/nested/depth".into(), s.nested.as_ref().map(|n| &n.depth)));
        }
        Step::Ignore(_)
        | Step::PauseReading(_)
        | Step::ResumeReading(_)
        | Step::StopWriting(_)
        | Step::Include(_) => {}
    }
    out.into_iter()
        .filter_map(|(pointer, count)| count.map(|c| (pointer, c)))
        .collect()
}

/// A regex given in a step: checked now unless it is only complete once
/// interpolated.
fn check_regex(field: &str, re: &str, errors: &mut Vec<(String, String)>) {
    if re.contains("${") {
        return;
    }
    if let Err(err) = regex::Regex::new(re) {
        errors.push((format!("/{field}"), format!("invalid regex: {err}")));
    }
}

/// Semantic checks the schema cannot express. Pointers are relative to the step.
fn check_step(step: &Step) -> Vec<(String, String)> {
    let mut errors: Vec<(String, String)> = counts(step)
        .into_iter()
        .filter_map(|(pointer, count)| count.check().err().map(|e| (pointer, e.to_string())))
        .collect();
    if let Step::Open(Open { handshake, .. }) | Step::Reconnect(Reconnect { handshake, .. }) = step
    {
        let kinds = handshake.expect_refusal.as_ref().map_or(0, |r| {
            [
                r.status.is_some(),
                r.no_subprotocol,
                r.closed || r.close_code.is_some(),
            ]
            .into_iter()
            .filter(|kind| *kind)
            .count()
        });
        if kinds > 1 {
            errors.push((
                "/expect_refusal".into(),
                "expect one kind of refusal: status, no_subprotocol, or closed (with close_code)"
                    .into(),
            ));
        }
    }
    let mut patterns = |field: &str, p: &Pattern| {
        for (pointer, message) in p.problems() {
            errors.push((format!("/{field}{pointer}"), message.clone()));
        }
    };
    match step {
        Step::Open(open) => {
            for (i, p) in open.ignore.iter().enumerate() {
                patterns(&format!("ignore/{i}"), p);
            }
            if let Some(join) = &open.join {
                patterns("join/match", &join.pattern);
                for (field, pointer) in [("data", &join.data), ("last", &join.last)] {
                    if !pointer.starts_with('/') {
                        errors.push((
                            format!("/join/{field}"),
                            format!("{pointer:?} is not a JSON pointer (it starts with `/`)"),
                        ));
                    }
                }
            }
        }
        Step::Expect(e) => patterns("match", &e.pattern),
        Step::ExpectRepeated(e) => {
            patterns("match", &e.pattern);
            patterns("then", &e.then);
        }
        Step::ExpectAll(e) => {
            for (i, p) in e.patterns.iter().enumerate() {
                patterns(&format!("match/{i}"), p);
            }
        }
        Step::ExpectSilence(e) => {
            if let Some(p) = &e.pattern {
                patterns("match", p);
            }
        }
        Step::Ignore(e) => {
            for (i, p) in e.patterns.iter().enumerate() {
                patterns(&format!("match/{i}"), p);
            }
        }
        Step::Http(h) => {
            // The pattern check comes first: `patterns` holds `errors` until its last use.
            if let Some(p) = &h.body {
                patterns("body", p);
            }
            if h.url.is_some() && h.path.is_some() {
                errors.push((
                    String::new(),
                    "an http step takes `url` or `path`, not both".into(),
                ));
            }
            if let Some(re) = &h.content_type {
                check_regex("content_type", re, &mut errors);
            }
        }
        Step::ExpectClose(e) => {
            if let Some(re) = &e.reason {
                check_regex("reason", re, &mut errors);
            }
        }
        Step::Send(s) => {
            let given: Vec<&str> = [
                ("json", s.json.is_some()),
                ("text", s.text.is_some()),
                ("text_hex", s.text_hex.is_some()),
                ("binary_base64", s.binary_base64.is_some()),
                ("binary_hex", s.binary_hex.is_some()),
                ("sized", s.sized.is_some()),
                ("nested", s.nested.is_some()),
                ("frame", s.frame.is_some()),
            ]
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect();
            if given.len() != 1 {
                errors.push((
                    String::new(),
                    format!(
                        "a send step needs exactly one of json, text, text_hex, binary_base64, binary_hex, sized, nested, frame (got {})",
                        if given.is_empty() { "none".to_string() } else { given.join(", ") }
                    ),
                ));
            }
            if let Some(b64) = &s.binary_base64 {
                if let Err(e) = data_encoding::BASE64.decode(b64.as_bytes()) {
                    errors.push(("/binary_base64".into(), format!("invalid base64: {e}")));
                }
            }
            if let Some(hex) = &s.binary_hex {
                if let Err(e) = decode_hex(hex) {
                    errors.push(("/binary_hex".into(), e.to_string()));
                }
            }
            if let Some(hex) = &s.text_hex {
                if let Err(e) = decode_hex(hex) {
                    errors.push(("/text_hex".into(), e.to_string()));
                }
            }
            if let Some(frame) = &s.frame {
                if let Err(e) = decode_hex(&frame.payload_hex) {
                    errors.push(("/frame/payload_hex".into(), e.to_string()));
                }
            }
            // A computed size or count is only known when the case runs.
            if let Some(sized) = s.sized.as_ref().filter(|z| {
                z.bytes.fixed().is_some() && !z.prefix.contains("${") && !z.suffix.contains("${")
            }) {
                if let Err(e) = sized.render(&pattern::Captures::new()) {
                    errors.push(("/sized".into(), e.to_string()));
                }
            }
            if s.repeat.as_ref().is_some_and(|r| r.fixed().is_some()) {
                if let Err(e) = s.repeat(&pattern::Captures::new()) {
                    errors.push(("/repeat".into(), e.to_string()));
                }
            }
        }
        Step::Close(c) => {
            if let Some(code) = c.code {
                if !(1000..=4999).contains(&code) || matches!(code, 1004..=1006 | 1015) {
                    errors.push((
                        "/code".into(),
                        format!("{code} cannot be sent in a close frame (RFC 6455 section 7.4)"),
                    ));
                }
            }
        }
        Step::Reconnect(_)
        | Step::Wait(_)
        | Step::PauseReading(_)
        | Step::ResumeReading(_)
        | Step::StopWriting(_)
        | Step::Include(_) => {}
    }
    errors
}

/// Hex with optional whitespace between bytes, either case.
pub fn decode_hex(hex: &str) -> Result<Vec<u8>, InvalidHex> {
    let compact: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(compact.as_bytes())
        .map_err(InvalidHex)
}

/// Hex that does not decode. The decoder's reason is part of the one-line
/// message, as these end up in a fixture problem or a step's failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid hex: {0}")]
pub struct InvalidHex(pub data_encoding::DecodeError);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step of `text`, located from the start of the file.
    fn slow(text: &str) -> Vec<Vec<Position>> {
        let value: Value = serde_json::from_str(text).unwrap();
        let cases = value["cases"].as_array().unwrap();
        (0..cases.len())
            .map(|ci| {
                let steps = cases[ci]["steps"].as_array().map_or(0, Vec::len);
                (0..steps)
                    .map(|si| locate(text, &format!("/cases/{ci}/steps/{si}")))
                    .collect()
            })
            .collect()
    }

    fn fast(text: &str) -> Vec<Vec<Position>> {
        let value: Value = serde_json::from_str(text).unwrap();
        let cases = value["cases"].as_array().unwrap();
        (0..cases.len())
            .map(|ci| {
                let steps = cases[ci]["steps"].as_array().map_or(0, Vec::len);
                let lines = LineIndex::new(text);
                let case = element_offsets(text, "/cases")[ci];
                step_positions(text, &lines, case, steps)
            })
            .collect()
    }

    #[test]
    fn step_positions_match_locating_from_the_start() {
        let text = "{\"description\": \"é ü\", \"cases\": [{\"steps\": [{\"step\": \"open\"}, {\"step\": \"wait\", \"ms\": 1}]}, {\"id\": \"ä\",\n  \"steps\": [\n    {\"step\": \"open\"},\n\t{\"step\": \"wait\", \"ms\": 1}]}]}";
        assert_eq!(fast(text), slow(text));
        assert_eq!(
            fast(text)[0][1],
            Position {
                line: 1,
                column: 63
            }
        );
        let dirs = [
            "tests/fixtures/jsonrpc",
            "tests/fixtures/jsonrpc-failing",
            "tests/fixtures/features",
            "tests/fixtures/claims",
        ];
        for dir in dirs {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert_eq!(fast(&text), slow(&text), "{}", path.display());
                }
            }
        }
    }
}
