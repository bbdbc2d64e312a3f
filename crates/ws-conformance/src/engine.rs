//! Runs the steps of one case against an endpoint.

use crate::conn::{Conn, ConnectError, End, Next, Payload, Received};
use crate::expr::Count;
use crate::fixture::{self, Handshake, LoadedCase, Step};
use crate::pattern::{self, Captures, Pattern};
use crate::report::{millis, CaseReport, Direction, Entry, Failure, Status, Transcript};
use crate::runner::RunOptions;
use crate::schema_set::SchemaViolation;
use crate::target::Target;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::Message;

/// The variables a case starts with: `--var` values, and `nonce`, fresh for
/// every case run, so that names built from it (`"${nonce}-orders"`) do not
/// collide with what earlier runs left on a long-lived server.
fn initial_vars(options: &RunOptions) -> Captures {
    let mut vars: Captures = options
        .vars
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    if let Some(fresh) = &options.fresh_vars {
        for (name, value) in fresh.make() {
            vars.entry(name).or_insert(Value::String(value));
        }
    }
    vars.entry("nonce".to_string()).or_insert_with(|| {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded per instance from the OS, which is all a nonce needs.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(Instant::now().elapsed().as_nanos());
        Value::String(format!("n{:012x}", hasher.finish() & 0xffff_ffff_ffff))
    });
    vars
}

/// A handshake request for `url` with extra headers and offered subprotocols.
pub(crate) fn build_request(
    url: &str,
    headers: &[(String, String)],
    subprotocols: Option<&[String]>,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("cannot build a request for {url}: {e}"))?;
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| format!("invalid header name {k:?}: {e}"))?;
        let value =
            HeaderValue::from_str(v).map_err(|e| format!("invalid value for header {k}: {e}"))?;
        request.headers_mut().append(name, value);
    }
    if let Some(protocols) = subprotocols.filter(|p| !p.is_empty()) {
        let value = HeaderValue::from_str(&protocols.join(", "))
            .map_err(|e| format!("invalid subprotocol list: {e}"))?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", value);
    }
    Ok(request)
}

/// Text payloads in transcripts are cut here so a limits test does not
/// put megabytes into every report.
const TRANSCRIPT_TEXT_LIMIT: usize = 64 * 1024;

/// A step that did not hold, with whatever evidence there is.
#[derive(Debug, Default)]
struct StepError {
    message: String,
    expected: Option<Box<Value>>,
    received: Option<Box<Value>>,
    mismatches: Vec<pattern::Mismatch>,
    schema_violation: Option<Box<SchemaViolation>>,
}

impl StepError {
    fn new(message: impl std::fmt::Display) -> StepError {
        StepError {
            message: message.to_string(),
            ..StepError::default()
        }
    }

    fn expecting(mut self, pattern: &Value) -> StepError {
        self.expected = Some(Box::new(pattern.clone()));
        self
    }
}

/// A decoded inbound frame.
#[derive(Debug, Clone)]
enum Frame {
    Json(Value),
    /// A text frame that is not JSON; patterns see it as a JSON string.
    Text(String),
    Binary(Vec<u8>),
}

impl Frame {
    fn decode(payload: Payload) -> Frame {
        match payload {
            Payload::Text(t) => match serde_json::from_str(&t) {
                Ok(v) => Frame::Json(v),
                Err(_) => Frame::Text(t),
            },
            Payload::Binary(b) => Frame::Binary(b),
        }
    }

    fn match_value(&self) -> Option<Value> {
        match self {
            Frame::Json(v) => Some(v.clone()),
            Frame::Text(t) => Some(Value::String(t.clone())),
            Frame::Binary(_) => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Frame::Json(v) => pattern::compact(v, 200),
            Frame::Text(t) => format!(
                "non-JSON text {}",
                pattern::truncate(&format!("{t:?}"), 200)
            ),
            Frame::Binary(b) => format!("a binary frame of {} bytes", b.len()),
        }
    }
}

enum Pulled {
    Frame(Frame),
    End(End),
    Timeout,
}

#[derive(Default)]
struct Slot {
    handshake: Option<Handshake>,
    conn: Option<Conn>,
    ended: Option<End>,
    ignore: Vec<Pattern>,
    /// Frames already recorded and schema-checked but left for later steps
    /// (by `expect_silence` with a pattern).
    pending: VecDeque<Frame>,
    /// The open step's `join`, resolved, and the pieces joined so far.
    join: Option<(Pattern, String, String)>,
    joined: String,
    pieces: usize,
}

/// The longest message the runner joins from pieces.
const MAX_JOINED_BYTES: usize = 64 << 20;

/// What the `join` rule makes of a received frame.
enum Piece {
    /// Not a piece: the frame goes to the expectations as it is.
    NotOne,
    /// A piece, and more are to come.
    More,
    /// The last piece: the joined text.
    Last(String),
}

struct CaseRun<'a> {
    target: &'a Target,
    options: &'a RunOptions,
    case: &'a LoadedCase,
    slots: BTreeMap<String, Slot>,
    vars: Captures,
    transcript: Transcript,
    warnings: Vec<String>,
    start: Instant,
}

pub(crate) async fn run_case(
    target: &Target,
    options: &RunOptions,
    case: &LoadedCase,
) -> CaseReport {
    let start = Instant::now();
    let budget = case
        .case
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(options.case_timeout);
    let deadline = TokioInstant::now() + budget;
    let mut run = CaseRun {
        target,
        options,
        case,
        slots: BTreeMap::new(),
        vars: initial_vars(options),
        transcript: Transcript::new(options.max_transcript_bytes),
        warnings: Vec::new(),
        start,
    };
    let mut failure = None;
    for (index, step) in case.case.steps.iter().enumerate() {
        let outcome = match tokio::time::timeout_at(deadline, run.step(step)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StepError::new(format!(
                "the case did not finish within its deadline of {} ms (set `timeout_ms` on the case or --case-timeout)",
                budget.as_millis()
            ))),
        };
        if let Err(error) = outcome {
            failure = Some(run.failure(Some(index), error));
            break;
        }
    }
    let late = run.drain_all();
    if failure.is_none() {
        if let Some(error) = late {
            failure = Some(run.failure(None, error));
        }
    }
    run.shutdown().await;

    let status = match (&failure, case.case.level) {
        (None, _) => Status::Pass,
        (Some(_), fixture::Level::Should) if !options.strict => Status::Warn,
        (Some(_), _) => Status::Fail,
    };
    let mut transcript = run.transcript.into_entries();
    transcript.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    CaseReport {
        status,
        duration_ms: millis(start.elapsed()),
        skip_reason: None,
        failure,
        warnings: run.warnings,
        transcript,
        ..crate::runner::case_header(case)
    }
}

impl CaseRun<'_> {
    fn failure(&self, step: Option<usize>, e: StepError) -> Failure {
        let s = step.map(|i| &self.case.case.steps[i]);
        let position = step
            .and_then(|i| self.case.step_positions.get(i).copied())
            .unwrap_or(self.case.position);
        Failure {
            step: step.map(|i| i + 1),
            step_kind: s.map(|s| s.kind().to_string()),
            conn: s.and_then(|s| s.conn().map(str::to_string)),
            location: format!("{}:{position}", self.case.file),
            message: e.message,
            expected: e.expected.map(|v| *v),
            received: e.received.map(|v| *v),
            mismatches: e.mismatches,
            schema_violation: e.schema_violation.map(|v| *v),
        }
    }

    fn at(&self, instant: Instant) -> f64 {
        millis(instant.saturating_duration_since(self.start))
    }

    fn event(&mut self, conn: &str, kind: &str, text: String) {
        self.transcript.push(Entry {
            at_ms: self.at(Instant::now()),
            conn: conn.to_string(),
            dir: Direction::Event,
            kind: kind.to_string(),
            text: Some(text),
            binary_base64: None,
            bytes: None,
            ignored: false,
            schema_error: None,
        });
    }

    fn record(&mut self, conn: &str, dir: Direction, at: Instant, message: &Message) {
        let (kind, text, binary, bytes) = match message {
            Message::Text(t) => {
                let t = t.as_str();
                let cut = if t.len() > TRANSCRIPT_TEXT_LIMIT {
                    let mut end = TRANSCRIPT_TEXT_LIMIT;
                    while !t.is_char_boundary(end) {
                        end -= 1;
                    }
                    format!("{}… ({} bytes in all)", &t[..end], t.len())
                } else {
                    t.to_string()
                };
                ("text", Some(cut), None, t.len())
            }
            Message::Binary(b) => (
                "binary",
                None,
                Some(data_encoding::BASE64.encode(&b[..b.len().min(TRANSCRIPT_TEXT_LIMIT)])),
                b.len(),
            ),
            // `text_hex` frames: their bytes need not be UTF-8.
            Message::Frame(f) if f.header().opcode == OpCode::Data(Data::Text) => {
                let bytes = f.payload();
                let text = match std::str::from_utf8(bytes) {
                    Ok(t) => t.to_string(),
                    Err(_) => format!(
                        "{} (not UTF-8; bytes: {})",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(TRANSCRIPT_TEXT_LIMIT)]),
                        data_encoding::HEXLOWER.encode(&bytes[..bytes.len().min(256)])
                    ),
                };
                ("text", Some(text), None, bytes.len())
            }
            _ => ("control", None, None, 0),
        };
        self.transcript.push(Entry {
            at_ms: self.at(at),
            conn: conn.to_string(),
            dir,
            kind: kind.to_string(),
            text,
            binary_base64: binary,
            bytes: Some(bytes),
            ignored: false,
            schema_error: None,
        });
    }

    /// A step's wait: its count, filled in, or `--timeout`.
    fn timeout(&self, ms: Option<&Count>) -> Result<Duration, StepError> {
        match ms {
            Some(count) => self.millis(count),
            None => Ok(self.options.step_timeout),
        }
    }

    fn millis(&self, count: &Count) -> Result<Duration, StepError> {
        count
            .resolve(&self.vars)
            .map(Duration::from_millis)
            .map_err(StepError::new)
    }

    async fn step(&mut self, step: &Step) -> Result<(), StepError> {
        match step {
            Step::Open(open) => {
                if self.slots.get(&open.conn).is_some_and(|s| s.conn.is_some()) {
                    return Err(StepError::new(format!(
                        "connection {:?} is already open; use `reconnect` to reopen it",
                        open.conn
                    )));
                }
                let mut rules = Vec::new();
                for p in &open.ignore {
                    rules.push(p.resolve(&self.vars).map_err(StepError::new)?);
                }
                let join = match &open.join {
                    Some(join) => Some((
                        join.pattern.resolve(&self.vars).map_err(StepError::new)?,
                        join.data.clone(),
                        join.last.clone(),
                    )),
                    None => None,
                };
                let slot = self.slots.entry(open.conn.clone()).or_default();
                slot.ignore.extend(rules);
                slot.join = join;
                slot.joined.clear();
                slot.pieces = 0;
                self.open(&open.conn, open.handshake.clone()).await
            }
            Step::Reconnect(re) => {
                let Some(previous) = self.slots.get(&re.conn).and_then(|s| s.handshake.clone())
                else {
                    return Err(StepError::new(format!(
                        "cannot reconnect {:?}: it was never opened",
                        re.conn
                    )));
                };
                self.close_quietly(&re.conn, "closed to reconnect").await;
                self.open(&re.conn, previous.overridden_by(&re.handshake))
                    .await
            }
            Step::Send(send) => self.send(send).await,
            Step::Expect(e) => {
                let pattern = e.pattern.resolve(&self.vars).map_err(StepError::new)?;
                let wait = self.timeout(e.timeout_ms.as_ref())?;
                let deadline = TokioInstant::now() + wait;
                match self.pull(&e.conn, deadline).await? {
                    Pulled::Timeout => Err(StepError::new(format!(
                        "no message arrived on {:?} within {} ms",
                        e.conn,
                        wait.as_millis()
                    ))
                    .expecting(&pattern.json())),
                    Pulled::End(end) => Err(StepError::new(format!(
                        "connection {:?} ended while waiting for a message: {end}",
                        e.conn
                    ))
                    .expecting(&pattern.json())),
                    Pulled::Frame(frame) => {
                        // Frames passed over on the way change `${ignored.<conn>}`.
                        let pattern = e.pattern.resolve(&self.vars).map_err(StepError::new)?;
                        self.check_match(&pattern, &frame)
                    }
                }
            }
            Step::ExpectAll(e) => self.expect_all(e).await,
            Step::ExpectRepeated(e) => self.expect_repeated(e).await,
            Step::ExpectSilence(e) => self.expect_silence(e).await,
            Step::ExpectClose(e) => self.expect_close(e).await,
            Step::Ignore(ig) => {
                let mut patterns = Vec::new();
                for p in &ig.patterns {
                    patterns.push(p.resolve(&self.vars).map_err(StepError::new)?);
                }
                let slot = self.slots.entry(ig.conn.clone()).or_default();
                if ig.replace {
                    slot.ignore.clear();
                }
                slot.ignore.extend(patterns);
                Ok(())
            }
            Step::Wait(w) => {
                tokio::time::sleep(self.millis(&w.ms)?).await;
                Ok(())
            }
            Step::Close(c) => self.close(c).await,
            Step::PauseReading(r) => {
                self.conn_mut(&r.conn)?.pause_reading();
                self.event(&r.conn, "pause", "stopped reading the socket".into());
                Ok(())
            }
            Step::ResumeReading(r) => {
                self.conn_mut(&r.conn)?.resume_reading();
                self.event(&r.conn, "resume", "reading the socket again".into());
                Ok(())
            }
            Step::Http(h) => self.http(h).await,
            Step::Include(include) => self.include(include).await,
            Step::StopWriting(r) => {
                self.conn_mut(&r.conn)?.stop_writing();
                self.event(
                    &r.conn,
                    "mute",
                    "stopped writing: Pong answers and sends are dropped".into(),
                );
                Ok(())
            }
        }
    }

    async fn include(&mut self, include: &fixture::Include) -> Result<(), StepError> {
        let setups = self.case.setups.clone();
        let steps = setups
            .get(&include.setup)
            .ok_or_else(|| StepError::new(format!("no setup named {:?}", include.setup)))?;
        for (index, step) in steps.iter().enumerate() {
            let step = step.on_conn(&include.conn);
            // Boxed: a step may be an include, so the future is recursive.
            Box::pin(self.step(&step)).await.map_err(|e| StepError {
                message: format!(
                    "in setup {:?}, step {} ({}): {}",
                    include.setup,
                    index + 1,
                    step.kind(),
                    e.message
                ),
                ..e
            })?;
        }
        Ok(())
    }

    fn check_match(&mut self, pattern: &Pattern, frame: &Frame) -> Result<(), StepError> {
        let Some(value) = frame.match_value() else {
            return Err(StepError::new(format!(
                "expected a message matching the pattern, got {}",
                frame.describe()
            ))
            .expecting(&pattern.json()));
        };
        let outcome = pattern.matches(&value);
        if outcome.is_match() {
            self.vars.extend(outcome.captures);
            return Ok(());
        }
        Err(StepError {
            message: "the message did not match the pattern".into(),
            expected: Some(Box::new(pattern.json())),
            received: Some(Box::new(value)),
            mismatches: outcome.mismatches,
            schema_violation: None,
        })
    }

    fn request(
        &self,
        handshake: &Handshake,
    ) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, StepError> {
        let path = match &handshake.path {
            Some(p) => Some(pattern::interpolate_str(p, &self.vars).map_err(StepError::new)?),
            None => None,
        };
        let mut query = Vec::new();
        for (k, v) in handshake.query.iter().flatten() {
            query.push((
                k.clone(),
                pattern::interpolate_str(v, &self.vars).map_err(StepError::new)?,
            ));
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        if handshake.inject != Some(false) {
            let (extra_query, extra_headers) = self.options.injected();
            query.extend(extra_query);
            headers.extend(extra_headers);
        }
        for (k, v) in handshake.headers.iter().flatten() {
            headers.push((
                k.clone(),
                pattern::interpolate_str(v, &self.vars).map_err(StepError::new)?,
            ));
        }
        let url = match &handshake.url {
            Some(url) => {
                let url = pattern::interpolate_str(url, &self.vars).map_err(StepError::new)?;
                Target::parse(&url)
                    .map_err(|e| StepError::new(e.to_string()))?
                    .url_for(path.as_deref(), &query)
            }
            None => self.target.url_for(path.as_deref(), &query),
        };
        build_request(&url, &headers, handshake.subprotocols.as_deref()).map_err(StepError::new)
    }

    async fn open(&mut self, name: &str, handshake: Handshake) -> Result<(), StepError> {
        let request = self.request(&handshake)?;
        let uri = request.uri().to_string();
        let wait = self.timeout(handshake.timeout_ms.as_ref())?;
        let mut limits = self.options.limits();
        if let Some(max) = handshake.max_message_bytes {
            limits.max_message = limits.max_message.min(max);
        }
        let slot = self.slots.entry(name.to_string()).or_default();
        slot.handshake = Some(handshake.clone());
        slot.ended = None;
        slot.pending.clear();
        // A message cut short by the last connection's end is not continued.
        slot.joined.clear();
        slot.pieces = 0;
        self.vars.insert(format!("ignored.{name}"), Value::from(0));
        let result =
            tokio::time::timeout(wait, Conn::connect(request, limits, &self.options.tls)).await;
        match result {
            Err(_) => {
                self.event(name, "open", format!("{uri}: no handshake response"));
                Err(StepError::new(format!(
                    "the WebSocket handshake with {uri} did not complete within {} ms",
                    wait.as_millis()
                )))
            }
            Ok(Err(ConnectError::NoSubprotocol)) => {
                self.event(name, "open", format!("{uri}: no subprotocol selected"));
                if handshake
                    .expect_refusal
                    .as_ref()
                    .is_some_and(|r| r.no_subprotocol)
                {
                    self.slots.get_mut(name).expect("inserted").ended = Some(End::Failed {
                        error: "the server selected none of the offered subprotocols".into(),
                    });
                    return Ok(());
                }
                let offered = handshake
                    .subprotocols
                    .clone()
                    .unwrap_or_default()
                    .join(", ");
                Err(StepError::new(match &handshake.expect_subprotocol {
                    Some(want) => format!(
                        "expected the server to select subprotocol {want:?}, it selected none (offered: {offered})"
                    ),
                    None => format!(
                        "the server selected none of the offered subprotocols ({offered}); the client cannot continue such a handshake"
                    ),
                }))
            }
            Ok(Err(ConnectError::Other(e))) => {
                self.event(name, "open", format!("{uri}: {e}"));
                Err(StepError::new(format!(
                    "the WebSocket handshake with {uri} failed: {e}"
                )))
            }
            Ok(Err(ConnectError::Refused { status, body })) => {
                self.event(name, "refused", format!("{uri}: HTTP {status}"));
                self.slots.get_mut(name).expect("inserted").ended = Some(End::Failed {
                    error: format!("the handshake was refused with HTTP {status}"),
                });
                match &handshake.expect_refusal {
                    Some(r)
                        if !r.no_subprotocol
                            && !r.closed
                            && r.close_code.is_none()
                            && r.status.is_none_or(|s| s == status) =>
                    {
                        Ok(())
                    }
                    Some(r) => Err(StepError::new(format!(
                        "expected {}, got HTTP {status}",
                        r.describe()
                    ))),
                    None => {
                        let body = if body.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", pattern::truncate(&body, 120))
                        };
                        Err(StepError::new(format!(
                            "the server refused the WebSocket handshake with HTTP {status}{body}"
                        )))
                    }
                }
            }
            Ok(Ok(conn)) => {
                let proto = conn.subprotocol.clone();
                let offered_extensions = handshake.headers.iter().flatten().find_map(|(k, v)| {
                    k.eq_ignore_ascii_case("sec-websocket-extensions").then(|| {
                        pattern::interpolate_str(v, &self.vars).unwrap_or_else(|_| v.clone())
                    })
                });
                let extensions_answer = crate::extensions::check_answer(
                    offered_extensions.as_deref(),
                    conn.extensions.as_deref(),
                );
                self.event(
                    name,
                    "open",
                    match &proto {
                        Some(p) => format!("{uri} (subprotocol {p})"),
                        None => uri.clone(),
                    },
                );
                self.slots.get_mut(name).expect("inserted").conn = Some(conn);
                extensions_answer.map_err(StepError::new)?;
                if let Some(r) = &handshake.expect_refusal {
                    if r.closed || r.close_code.is_some() {
                        return self.closed_at_once(name, r, wait).await;
                    }
                    return Err(StepError::new(format!(
                        "expected {}, but the server accepted the handshake{}",
                        r.describe(),
                        proto
                            .map(|p| format!(" with subprotocol {p:?}"))
                            .unwrap_or_default()
                    )));
                }
                if let Some(want) = &handshake.expect_subprotocol {
                    if proto.as_deref() != Some(want) {
                        return Err(StepError::new(format!(
                            "expected the server to select subprotocol {want:?}, it selected {}",
                            proto
                                .map(|p| format!("{p:?}"))
                                .unwrap_or_else(|| "none".into())
                        )));
                    }
                }
                Ok(())
            }
        }
    }

    /// An upgrade the server must follow with a close before any message.
    async fn closed_at_once(
        &mut self,
        name: &str,
        refusal: &fixture::Refusal,
        wait: Duration,
    ) -> Result<(), StepError> {
        let want = refusal.describe();
        match self.pull(name, TokioInstant::now() + wait).await? {
            Pulled::End(end) if refusal.close_code.is_none_or(|c| end.code() == Some(c)) => Ok(()),
            Pulled::End(end) => Err(StepError::new(format!(
                "expected {want}; the connection {end}"
            ))),
            Pulled::Frame(frame) => Err(StepError {
                message: format!("expected {want}, but the server sent a message first"),
                received: frame.match_value().map(Box::new),
                ..StepError::default()
            }),
            Pulled::Timeout => Err(StepError::new(format!(
                "expected {want}, but the connection was still open after {} ms",
                wait.as_millis()
            ))),
        }
    }

    fn conn_mut(&mut self, name: &str) -> Result<&mut Conn, StepError> {
        let slot = self.slots.get_mut(name);
        match slot {
            Some(Slot {
                conn: Some(conn), ..
            }) => Ok(conn),
            Some(Slot {
                ended: Some(end), ..
            }) => Err(StepError::new(format!(
                "connection {name:?} is not open: {end}"
            ))),
            _ => Err(StepError::new(format!(
                "connection {name:?} is not open (add an `open` step with \"conn\": {name:?})"
            ))),
        }
    }

    async fn send(&mut self, send: &fixture::Send) -> Result<(), StepError> {
        // A frame the library would mask: its bytes, written below it.
        let mut unmasked: Option<Vec<u8>> = None;
        let message = if let Some(json) = &send.json {
            let value = pattern::interpolate(json, &self.vars, false).map_err(StepError::new)?;
            if !send.invalid {
                if let Some(set) = &self.case.schemas {
                    if let Err(v) = set.check_outbound(&value) {
                        self.warnings.push(format!(
                            "frame sent by step {} violates the outbound schema ({v}); mark the step \"invalid\": true if that is deliberate",
                            self.current_step_label(send)
                        ));
                    }
                }
            }
            Message::text(value.to_string())
        } else if let Some(text) = &send.text {
            Message::text(pattern::interpolate_str(text, &self.vars).map_err(StepError::new)?)
        } else if let Some(b64) = &send.binary_base64 {
            let bytes = data_encoding::BASE64
                .decode(b64.as_bytes())
                .map_err(|e| StepError::new(format!("invalid base64: {e}")))?;
            Message::binary(bytes)
        } else if let Some(hex) = &send.binary_hex {
            Message::binary(fixture::decode_hex(hex).map_err(StepError::new)?)
        } else if let Some(hex) = &send.text_hex {
            // A raw frame: `Message::Text` cannot hold bytes that are not UTF-8.
            let bytes = fixture::decode_hex(hex).map_err(StepError::new)?;
            Message::Frame(WsFrame::message(bytes, OpCode::Data(Data::Text), true))
        } else if let Some(sized) = &send.sized {
            Message::text(sized.render(&self.vars).map_err(StepError::new)?)
        } else if let Some(nested) = &send.nested {
            Message::text(nested.render(&self.vars).map_err(StepError::new)?)
        } else if let Some(raw) = &send.frame {
            let frame = raw_frame(raw)?;
            if !raw.masked {
                let mut bytes = Vec::new();
                frame
                    .clone()
                    .format(&mut bytes)
                    .map_err(|e| StepError::new(format!("cannot lay out the frame: {e}")))?;
                unmasked = Some(bytes);
            }
            Message::Frame(frame)
        } else {
            return Err(StepError::new("a send step needs a payload"));
        };
        let wait = self.options.step_timeout;
        let repeat = send.repeat(&self.vars).map_err(StepError::new)?;
        self.conn_mut(&send.conn)?;
        self.record(&send.conn, Direction::Out, Instant::now(), &message);
        if repeat > 1 {
            self.event(
                &send.conn,
                "repeat",
                format!("the frame above is sent {repeat} times"),
            );
        }
        if let Some(raw) = &send.frame {
            self.event(&send.conn, "frame", describe_raw_frame(raw));
        }
        let conn = self.conn_mut(&send.conn)?;
        for sent in 0..repeat {
            let sending = async {
                match &unmasked {
                    Some(bytes) => conn.send_raw(bytes.clone()).await,
                    None => conn.send(message.clone()).await,
                }
            };
            match tokio::time::timeout(wait, sending).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(StepError::new(format!(
                        "sending on {:?} failed after {sent} of {repeat} frames: {e}",
                        send.conn
                    )))
                }
                Err(_) => {
                    return Err(StepError::new(format!(
                        "sending on {:?} did not complete within {} ms (the server is not reading)",
                        send.conn,
                        wait.as_millis()
                    )))
                }
            }
        }
        Ok(())
    }

    /// The `http://` URL and `host:port` of an `http` step.
    fn http_target(&self, h: &fixture::Http) -> Result<(String, String, String), StepError> {
        let (url, from_run_url) = match &h.url {
            Some(url) => (
                pattern::interpolate_str(url, &self.vars).map_err(StepError::new)?,
                false,
            ),
            None => (self.target.as_str().to_string(), true),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e| StepError::new(format!("invalid URL {url:?}: {e}")))?;
        let scheme = uri.scheme_str().unwrap_or_default();
        let plain = if from_run_url {
            scheme == "ws"
        } else {
            scheme == "http"
        };
        if !plain {
            return Err(StepError::new(format!(
                "the http step speaks plain HTTP only (an http:// URL, or a path on a ws:// run URL); {url:?} would need {}",
                if scheme == "https" || scheme == "wss" { "TLS, which it does not support".to_string() } else { format!("scheme {scheme:?}") }
            )));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| StepError::new(format!("the URL {url:?} has no host")))?;
        let host_port = match authority.port_u16() {
            Some(_) => authority.as_str().to_string(),
            None => format!("{}:80", authority.host()),
        };
        let path = if from_run_url {
            let path = match &h.path {
                Some(p) => pattern::interpolate_str(p, &self.vars).map_err(StepError::new)?,
                None => "/".to_string(),
            };
            if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            }
        } else {
            uri.path_and_query()
                .map_or_else(|| "/".to_string(), |p| p.as_str().to_string())
        };
        Ok((
            format!("http://{}{path}", authority.as_str()),
            host_port,
            path,
        ))
    }

    async fn http(&mut self, h: &fixture::Http) -> Result<(), StepError> {
        const CONN: &str = "http";
        let (url, host_port, path) = self.http_target(h)?;
        let mut headers = Vec::new();
        for (k, v) in h.headers.iter().flatten() {
            headers.push((
                k.clone(),
                pattern::interpolate_str(v, &self.vars).map_err(StepError::new)?,
            ));
        }
        let body_pattern = match &h.body {
            Some(p) => Some(p.resolve(&self.vars).map_err(StepError::new)?),
            None => None,
        };
        let wait = self.timeout(h.timeout_ms.as_ref())?;
        let max = h.max_bytes.unwrap_or(1 << 20);
        self.event(CONN, "request", format!("GET {url}"));
        let response = match tokio::time::timeout(
            wait,
            crate::conn::http_get(&host_port, &path, &headers, max),
        )
        .await
        {
            Err(_) => {
                self.event(CONN, "end", "no complete response".into());
                return Err(StepError::new(format!(
                    "GET {url}: no complete response within {} ms",
                    wait.as_millis()
                )));
            }
            Ok(Err(e)) => {
                self.event(CONN, "end", e.clone());
                return Err(StepError::new(format!("GET {url}: {e}")));
            }
            Ok(Ok(response)) => response,
        };
        let text = String::from_utf8_lossy(&response.body).into_owned();
        let content_type = response.header("content-type").map(str::to_string);
        self.event(
            CONN,
            "response",
            format!(
                "HTTP {} ({}, {} bytes) {}",
                response.status,
                content_type.as_deref().unwrap_or("no content type"),
                response.body.len(),
                pattern::truncate(&text, TRANSCRIPT_TEXT_LIMIT)
            ),
        );
        let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
        if response.status != h.status {
            return Err(StepError {
                message: format!(
                    "GET {url}: expected status {}, got {}",
                    h.status, response.status
                ),
                received: Some(Box::new(body)),
                ..StepError::default()
            });
        }
        if let Some(re) = &h.content_type {
            let re = pattern::interpolate_str(re, &self.vars).map_err(StepError::new)?;
            let re = regex::Regex::new(&re)
                .map_err(|err| StepError::new(format!("invalid content_type regex: {err}")))?;
            match &content_type {
                Some(ct) if re.is_match(ct) => {}
                Some(ct) => {
                    return Err(StepError::new(format!(
                        "GET {url}: the content type {ct:?} does not match /{re}/"
                    )))
                }
                None => {
                    return Err(StepError::new(format!(
                        "GET {url}: the response has no Content-Type (expected one matching /{re}/)"
                    )))
                }
            }
        }
        if let Some(p) = &body_pattern {
            let outcome = p.matches(&body);
            if !outcome.is_match() {
                return Err(StepError {
                    message: format!("GET {url}: the body did not match the pattern"),
                    expected: Some(Box::new(p.json())),
                    received: Some(Box::new(body)),
                    mismatches: outcome.mismatches,
                    schema_violation: None,
                });
            }
            self.vars.extend(outcome.captures);
        }
        Ok(())
    }

    fn current_step_label(&self, send: &fixture::Send) -> String {
        let index = self
            .case
            .case
            .steps
            .iter()
            .position(|s| matches!(s, Step::Send(x) if std::ptr::eq(x, send)));
        match index {
            Some(i) => format!(
                "{} ({}:{})",
                i + 1,
                self.case.file,
                self.case.step_positions[i]
            ),
            None => "?".into(),
        }
    }

    /// The next frame on `name` that no ignore rule matches. Every frame
    /// pulled is recorded and schema-checked, ignored or not.
    async fn pull(&mut self, name: &str, deadline: TokioInstant) -> Result<Pulled, StepError> {
        loop {
            let slot = self.slots.get_mut(name);
            let Some(slot) = slot else {
                return Err(StepError::new(format!(
                    "connection {name:?} is not open (add an `open` step with \"conn\": {name:?})"
                )));
            };
            if let Some(frame) = slot.pending.pop_front() {
                if self.ignored(name, &frame) {
                    self.count_ignored(name);
                    continue;
                }
                return Ok(Pulled::Frame(frame));
            }
            let Some(conn) = &slot.conn else {
                return match &slot.ended {
                    Some(end) => Ok(Pulled::End(end.clone())),
                    None => Err(StepError::new(format!("connection {name:?} is not open"))),
                };
            };
            match conn.next(deadline).await {
                Next::Timeout => return Ok(Pulled::Timeout),
                Next::End(end, at) => {
                    self.finish(name, end.clone(), at);
                    return Ok(Pulled::End(end));
                }
                Next::Frame(received) => {
                    let at = received.at;
                    let (frame, ignored) = self.accept(name, received)?;
                    if ignored {
                        self.count_ignored(name);
                        continue;
                    }
                    match self.join_piece(name, &frame)? {
                        Piece::NotOne => return Ok(Pulled::Frame(frame)),
                        Piece::More => {}
                        Piece::Last(text) => {
                            let joined = Received {
                                at,
                                payload: Payload::Text(text),
                            };
                            let (frame, ignored) = self.accept(name, joined)?;
                            if !ignored {
                                return Ok(Pulled::Frame(frame));
                            }
                            self.count_ignored(name);
                        }
                    }
                }
            }
        }
    }

    /// Takes `frame` as a piece of a joined message when the connection's
    /// `join` rule matches it.
    fn join_piece(&mut self, name: &str, frame: &Frame) -> Result<Piece, StepError> {
        let Some(value) = frame.match_value() else {
            return Ok(Piece::NotOne);
        };
        let Some(slot) = self.slots.get_mut(name) else {
            return Ok(Piece::NotOne);
        };
        let Some((pattern, data, last)) = &slot.join else {
            return Ok(Piece::NotOne);
        };
        if !pattern.matches(&value).is_match() {
            return Ok(Piece::NotOne);
        }
        let Some(piece) = value.pointer(data).and_then(Value::as_str) else {
            return Err(StepError {
                message: format!("a piece to join on {name:?} has no string at {data}"),
                received: Some(Box::new(value.clone())),
                ..StepError::default()
            });
        };
        let is_last = match value.pointer(last) {
            Some(Value::Bool(is_last)) => *is_last,
            _ => {
                return Err(StepError {
                    message: format!("a piece to join on {name:?} has no boolean at {last}"),
                    received: Some(Box::new(value.clone())),
                    ..StepError::default()
                })
            }
        };
        if slot.joined.len() + piece.len() > MAX_JOINED_BYTES {
            return Err(StepError::new(format!(
                "the pieces joined on {name:?} pass {MAX_JOINED_BYTES} bytes"
            )));
        }
        slot.joined.push_str(piece);
        slot.pieces += 1;
        if !is_last {
            return Ok(Piece::More);
        }
        let text = std::mem::take(&mut slot.joined);
        let pieces = std::mem::take(&mut slot.pieces);
        self.event(
            name,
            "join",
            format!(
                "joined {pieces} pieces into the message below ({} bytes)",
                text.len()
            ),
        );
        Ok(Piece::Last(text))
    }

    /// Records the end of a connection and forgets the socket.
    fn finish(&mut self, name: &str, end: End, at: Instant) {
        let at_ms = self.at(at);
        let kind = match end {
            End::Closed { .. } => "close",
            _ => "end",
        };
        self.transcript.push(Entry {
            at_ms,
            conn: name.to_string(),
            dir: Direction::Event,
            kind: kind.into(),
            text: Some(end.to_string()),
            binary_base64: None,
            bytes: None,
            ignored: false,
            schema_error: None,
        });
        if let Some(slot) = self.slots.get_mut(name) {
            slot.conn = None;
            slot.ended = Some(end);
        }
    }

    /// Records and schema-checks a received frame; says whether it is ignored.
    fn accept(&mut self, name: &str, received: Received) -> Result<(Frame, bool), StepError> {
        let message = match &received.payload {
            Payload::Text(t) => Message::text(t.clone()),
            Payload::Binary(b) => Message::binary(b.clone()),
        };
        self.record(name, Direction::In, received.at, &message);
        let frame = Frame::decode(received.payload);
        let violation = match (&self.case.schemas, &frame) {
            (Some(set), Frame::Json(v)) => set.check_inbound(v).err(),
            (Some(set), Frame::Text(_)) => Some(SchemaViolation {
                schema: set.path().display().to_string(),
                instance_path: String::new(),
                message: "the text frame is not valid JSON".into(),
            }),
            _ => None,
        };
        let ignored = self.ignored(name, &frame);
        let entry = self.transcript.last_mut().expect("recorded above");
        entry.ignored = ignored;
        if let Some(v) = violation {
            entry.schema_error = Some(v.to_string());
            return Err(StepError {
                message: format!(
                    "a frame received on {name:?} does not conform to the schema set: {v}"
                ),
                received: frame.match_value().map(Box::new),
                schema_violation: Some(Box::new(v)),
                ..StepError::default()
            });
        }
        Ok((frame, ignored))
    }

    /// Keeps `${ignored.<conn>}` at the number of frames the connection's ignore
    /// rules have passed over, so that a case can bound a count the server keeps
    /// of what it sent (a heartbeat the server counted arrived before the reply
    /// that reports the count, so it was passed over before that reply).
    fn count_ignored(&mut self, name: &str) {
        let count = self
            .vars
            .entry(format!("ignored.{name}"))
            .or_insert(Value::from(0));
        *count = Value::from(count.as_u64().unwrap_or(0) + 1);
    }

    fn ignored(&self, name: &str, frame: &Frame) -> bool {
        let Some(value) = frame.match_value() else {
            return false;
        };
        self.slots
            .get(name)
            .is_some_and(|s| s.ignore.iter().any(|p| p.matches(&value).is_match()))
    }

    async fn expect_all(&mut self, e: &fixture::ExpectAll) -> Result<(), StepError> {
        let mut patterns = Vec::new();
        for p in &e.patterns {
            patterns.push(p.resolve(&self.vars).map_err(StepError::new)?);
        }
        let wait = self.timeout(e.timeout_ms.as_ref())?;
        let deadline = TokioInstant::now() + wait;
        let mut values: Vec<Value> = Vec::new();
        // compatible[pattern][frame]
        let mut compatible: Vec<Vec<bool>> = vec![Vec::new(); patterns.len()];
        let all = Value::Array(patterns.iter().map(Pattern::json).collect());
        let mut order = KeyOrder::new(e.ordered_by.as_deref(), &patterns);
        while values.len() < patterns.len() {
            let frame = match self.pull(&e.conn, deadline).await? {
                Pulled::Frame(f) => f,
                Pulled::Timeout => {
                    return Err(self.unmet(
                        &patterns,
                        &values,
                        format!(
                            "only {} of {} expected messages arrived on {:?} within {} ms",
                            values.len(),
                            patterns.len(),
                            e.conn,
                            wait.as_millis()
                        ),
                    ));
                }
                Pulled::End(end) => {
                    return Err(self.unmet(
                        &patterns,
                        &values,
                        format!(
                            "connection {:?} ended after {} of {} expected messages: {end}",
                            e.conn,
                            values.len(),
                            patterns.len()
                        ),
                    ));
                }
            };
            let Some(value) = frame.match_value() else {
                return Err(StepError::new(format!(
                    "expected messages matching the patterns, got {}",
                    frame.describe()
                ))
                .expecting(&all));
            };
            let place = order.place_frame(&value);
            for (pi, p) in patterns.iter().enumerate() {
                compatible[pi]
                    .push(order.allows(pi, place.as_ref()) && p.matches(&value).is_match());
            }
            values.push(value.clone());
            let assignment = transpose_assign(&compatible, values.len());
            if assignment.iter().any(Option::is_none) {
                let (closest, outcome) = closest_pattern(&patterns, &value);
                return Err(StepError {
                    message: format!(
                        "message {} of {} on {:?} matches none of the patterns still expected{}",
                        values.len(),
                        patterns.len(),
                        e.conn,
                        if patterns.len() > 1 {
                            format!(" (diff against the closest, pattern {})", closest + 1)
                        } else {
                            String::new()
                        }
                    ),
                    expected: Some(Box::new(patterns[closest].json())),
                    received: Some(Box::new(value)),
                    mismatches: outcome.mismatches,
                    schema_violation: None,
                });
            }
        }
        let assignment = transpose_assign(&compatible, values.len());
        for (fi, pi) in assignment.into_iter().enumerate() {
            let pi = pi.expect("complete assignment");
            self.vars.extend(patterns[pi].matches(&values[fi]).captures);
        }
        Ok(())
    }

    async fn expect_repeated(&mut self, e: &fixture::ExpectRepeated) -> Result<(), StepError> {
        let repeated = e.pattern.resolve(&self.vars).map_err(StepError::new)?;
        let then = e.then.resolve(&self.vars).map_err(StepError::new)?;
        let count_of = |c: &Option<Count>| -> Result<Option<u64>, StepError> {
            c.as_ref()
                .map(|c| c.resolve(&self.vars).map_err(StepError::new))
                .transpose()
        };
        let (min, max) = (count_of(&e.min)?.unwrap_or(0), count_of(&e.max)?);
        let wait = self.timeout(e.timeout_ms.as_ref())?;
        let deadline = TokioInstant::now() + wait;
        let mut count = 0;
        loop {
            let frame = match self.pull(&e.conn, deadline).await? {
                Pulled::Frame(frame) => frame,
                Pulled::Timeout => {
                    return Err(StepError::new(format!(
                        "after {count} repeated messages, none matching `then` arrived on {:?} within {} ms",
                        e.conn,
                        wait.as_millis()
                    ))
                    .expecting(&then.json()))
                }
                Pulled::End(end) => {
                    return Err(StepError::new(format!(
                        "connection {:?} ended after {count} repeated messages, before one matching `then`: {end}",
                        e.conn
                    ))
                    .expecting(&then.json()))
                }
            };
            let Some(value) = frame.match_value() else {
                return Err(StepError::new(format!(
                    "expected a message matching the pattern, got {}",
                    frame.describe()
                ))
                .expecting(&then.json()));
            };
            let ending = then.matches(&value);
            if count >= min && ending.is_match() {
                self.vars.extend(ending.captures);
                return Ok(());
            }
            if ending.is_match() && !repeated.matches(&value).is_match() {
                return Err(StepError {
                    message: format!(
                        "a message matching `then` arrived after only {count} of at least {min} repeated messages"
                    ),
                    expected: Some(Box::new(repeated.json())),
                    received: Some(Box::new(value)),
                    ..StepError::default()
                });
            }
            if repeated.matches(&value).is_match() {
                count += 1;
                if let Some(max) = max.filter(|max| count > *max) {
                    return Err(StepError {
                        message: format!(
                            "more than {max} repeated messages arrived on {:?} before one matching `then`",
                            e.conn
                        ),
                        expected: Some(Box::new(then.json())),
                        received: Some(Box::new(value)),
                        ..StepError::default()
                    });
                }
                continue;
            }
            return Err(StepError {
                message: format!(
                    "after {count} repeated messages, one matches neither the repeated pattern nor `then`"
                ),
                expected: Some(Box::new(then.json())),
                received: Some(Box::new(value)),
                mismatches: ending.mismatches,
                schema_violation: None,
            });
        }
    }

    fn unmet(&self, patterns: &[Pattern], values: &[Value], message: String) -> StepError {
        let compatible: Vec<Vec<bool>> = patterns
            .iter()
            .map(|p| values.iter().map(|v| p.matches(v).is_match()).collect())
            .collect();
        let assignment = pattern::assign(&compatible);
        let missing: Vec<Value> = patterns
            .iter()
            .zip(&assignment)
            .filter(|(_, slot)| slot.is_none())
            .map(|(p, _)| p.json())
            .collect();
        let expected = if missing.len() == 1 {
            missing.into_iter().next().expect("one")
        } else {
            Value::Array(missing)
        };
        StepError::new(message).expecting(&expected)
    }

    async fn expect_silence(&mut self, e: &fixture::ExpectSilence) -> Result<(), StepError> {
        let pattern = match &e.pattern {
            Some(p) => Some(p.resolve(&self.vars).map_err(StepError::new)?),
            None => None,
        };
        let started = TokioInstant::now();
        let window = self.millis(&e.for_ms)?;
        let deadline = started + window;
        let mut kept = VecDeque::new();
        let result = loop {
            match self.pull(&e.conn, deadline).await {
                Err(err) => break Err(err),
                Ok(Pulled::Timeout | Pulled::End(_)) => break Ok(()),
                Ok(Pulled::Frame(frame)) => {
                    let breaks = match (&pattern, frame.match_value()) {
                        (None, _) => true,
                        (Some(p), Some(v)) => p.matches(&v).is_match(),
                        (Some(_), None) => false,
                    };
                    if breaks {
                        let before = if kept.is_empty() {
                            String::new()
                        } else {
                            let listed: Vec<String> = kept.iter().map(Frame::describe).collect();
                            format!(
                                "; before it, in the window, arrived (not matching): {}",
                                listed.join(", ")
                            )
                        };
                        break Err(StepError {
                            message: format!(
                                "expected no {}message on {:?} for {} ms, but one arrived after {} ms: {}{before}",
                                if pattern.is_some() { "matching " } else { "" },
                                e.conn,
                                window.as_millis(),
                                started.elapsed().as_millis(),
                                frame.describe(),
                            ),
                            expected: pattern.as_ref().map(|p| Box::new(p.json())),
                            received: frame.match_value().map(Box::new),
                            ..StepError::default()
                        });
                    }
                    kept.push_back(frame);
                }
            }
        };
        if let Some(slot) = self.slots.get_mut(&e.conn) {
            kept.append(&mut slot.pending);
            slot.pending = kept;
        }
        result
    }

    async fn expect_close(&mut self, e: &fixture::ExpectClose) -> Result<(), StepError> {
        let wait = self.timeout(e.within_ms.as_ref())?;
        let deadline = TokioInstant::now() + wait;
        let reason = match &e.reason {
            Some(r) => Some(pattern::interpolate_str(r, &self.vars).map_err(StepError::new)?),
            None => None,
        };
        let want = match (e.code, &reason) {
            (Some(c), Some(r)) => format!("close with code {c} and a reason matching /{r}/"),
            (Some(c), None) => format!("close with code {c}"),
            (None, Some(r)) => format!("close with a reason matching /{r}/"),
            (None, None) => "close".to_string(),
        };
        match self.pull(&e.conn, deadline).await? {
            Pulled::Timeout => Err(StepError::new(format!(
                "expected the server to {want} within {} ms, but {:?} is still open",
                wait.as_millis(),
                e.conn
            ))),
            Pulled::Frame(frame) => Err(StepError {
                message: format!(
                    "expected the server to {want}, but it sent a message on {:?}",
                    e.conn
                ),
                received: frame.match_value().map(Box::new),
                ..StepError::default()
            }),
            Pulled::End(end) => {
                if let End::Failed { error } = &end {
                    return Err(StepError::new(format!(
                        "expected the server to {want}, but the connection failed: {error}"
                    )));
                }
                if let Some(code) = e.code {
                    if end.code() != Some(code) {
                        return Err(StepError::new(format!(
                            "expected the server to {want}; the connection {end}"
                        )));
                    }
                }
                if let Some(re) = &reason {
                    let reason = match &end {
                        End::Closed { reason, .. } => reason.as_str(),
                        _ => "",
                    };
                    let re = regex::Regex::new(re)
                        .map_err(|err| StepError::new(format!("invalid reason regex: {err}")))?;
                    if !re.is_match(reason) {
                        return Err(StepError::new(format!(
                            "expected the server to {want}; the connection {end}"
                        )));
                    }
                }
                Ok(())
            }
        }
    }

    async fn close(&mut self, c: &fixture::Close) -> Result<(), StepError> {
        let code = c.code.unwrap_or(1000);
        let reason = match &c.reason {
            Some(r) => pattern::interpolate_str(r, &self.vars).map_err(StepError::new)?,
            None => String::new(),
        };
        let wait = self.timeout(c.within_ms.as_ref())?;
        let conn = self.conn_mut(&c.conn)?;
        let sent = tokio::time::timeout(wait, conn.close(code, &reason)).await;
        self.event(
            &c.conn,
            "close",
            if reason.is_empty() {
                format!("client sent close {code}")
            } else {
                format!("client sent close {code} ({reason:?})")
            },
        );
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(StepError::new(format!(
                    "sending the close frame failed: {e}"
                )))
            }
            Err(_) => {
                return Err(StepError::new(format!(
                    "sending the close frame did not complete within {} ms",
                    wait.as_millis()
                )))
            }
        }
        // Frames the server sent before seeing our close are still checked
        // against the schema; the server's close reply ends the loop.
        let deadline = TokioInstant::now() + wait;
        loop {
            match self.pull(&c.conn, deadline).await? {
                Pulled::Frame(_) => {}
                Pulled::End(end) => {
                    if let Some(want) = c.reply_code {
                        if end.code() != Some(want) {
                            return Err(StepError::new(format!(
                                "expected the server to answer the close with code {want}; the connection {end}"
                            )));
                        }
                    }
                    break;
                }
                Pulled::Timeout => {
                    if let Some(want) = c.reply_code {
                        return Err(StepError::new(format!(
                            "expected the server to answer the close with code {want} within {} ms; it did not",
                            wait.as_millis()
                        )));
                    }
                    self.event(
                        &c.conn,
                        "end",
                        format!(
                            "no closing handshake from the server within {} ms",
                            wait.as_millis()
                        ),
                    );
                    break;
                }
            }
        }
        if let Some(slot) = self.slots.get_mut(&c.conn) {
            slot.conn = None;
            slot.pending.clear();
            if slot.ended.is_none() {
                slot.ended = Some(End::Closed { code, reason });
            }
        }
        Ok(())
    }

    async fn close_quietly(&mut self, name: &str, why: &str) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let Some(mut conn) = slot.conn.take() else {
            return;
        };
        slot.pending.clear();
        let _ = tokio::time::timeout(Duration::from_millis(200), conn.close(1000, "")).await;
        self.event(name, "close", why.to_string());
    }

    /// Records (and schema-checks) frames that arrived but were never
    /// consumed; returns the first schema violation among them.
    fn drain_all(&mut self) -> Option<StepError> {
        let mut first = None;
        let names: Vec<String> = self.slots.keys().cloned().collect();
        for name in names {
            let Some(conn) = self.slots.get(&name).and_then(|s| s.conn.as_ref()) else {
                continue;
            };
            let frames = conn.drain();
            let end = conn.end();
            for received in frames {
                if let Err(e) = self.accept(&name, received) {
                    first.get_or_insert(StepError {
                        message: format!("after the last step: {}", e.message),
                        ..e
                    });
                }
            }
            if let Some(end) = end {
                self.finish(&name, end, Instant::now());
            }
        }
        first
    }

    async fn shutdown(&mut self) {
        let names: Vec<String> = self.slots.keys().cloned().collect();
        for name in names {
            if let Some(mut conn) = self.slots.get_mut(&name).and_then(|s| s.conn.take()) {
                let _ =
                    tokio::time::timeout(Duration::from_millis(100), conn.close(1000, "")).await;
            }
        }
    }
}

/// `expect_all`'s `ordered_by`: where each pattern and each frame stands
/// among those of its key, as (key as JSON text, rank).
struct KeyOrder<'a> {
    pointer: Option<&'a str>,
    patterns: Vec<Option<(String, usize)>>,
    frames_seen: BTreeMap<String, usize>,
}

impl<'a> KeyOrder<'a> {
    fn new(pointer: Option<&'a str>, patterns: &[Pattern]) -> KeyOrder<'a> {
        let mut counts = BTreeMap::new();
        let places = patterns
            .iter()
            .map(|p| pointer.and_then(|ptr| Self::rank(&p.json(), ptr, &mut counts)))
            .collect();
        KeyOrder {
            pointer,
            patterns: places,
            frames_seen: BTreeMap::new(),
        }
    }

    fn rank(
        value: &Value,
        pointer: &str,
        counts: &mut BTreeMap<String, usize>,
    ) -> Option<(String, usize)> {
        let key = value
            .pointer(pointer)
            .filter(|k| k.is_string() || k.is_number() || k.is_boolean())?
            .to_string();
        let rank = counts.entry(key.clone()).or_insert(0);
        *rank += 1;
        Some((key, *rank))
    }

    fn place_frame(&mut self, frame: &Value) -> Option<(String, usize)> {
        self.pointer
            .and_then(|ptr| Self::rank(frame, ptr, &mut self.frames_seen))
    }

    /// A keyed pattern takes only the frame of its key and rank.
    fn allows(&self, pattern: usize, frame: Option<&(String, usize)>) -> bool {
        self.patterns[pattern]
            .as_ref()
            .is_none_or(|place| Some(place) == frame)
    }
}

/// Assignment of frames to patterns: for each frame, its pattern.
fn transpose_assign(compatible: &[Vec<bool>], frames: usize) -> Vec<Option<usize>> {
    let by_frame: Vec<Vec<bool>> = (0..frames)
        .map(|fi| compatible.iter().map(|row| row[fi]).collect())
        .collect();
    pattern::assign(&by_frame)
}

fn closest_pattern(patterns: &[Pattern], value: &Value) -> (usize, pattern::Outcome) {
    patterns
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p.matches(value)))
        .min_by_key(|(_, o)| o.mismatches.len())
        .expect("at least one pattern")
}

/// The frame a `send` step's `frame` describes; masking, if asked for, is
/// left to the library.
fn raw_frame(raw: &fixture::RawFrame) -> Result<WsFrame, StepError> {
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    let payload = fixture::decode_hex(&raw.payload_hex).map_err(StepError::new)?;
    let header = FrameHeader {
        is_final: raw.fin,
        rsv1: raw.rsv1,
        rsv2: raw.rsv2,
        rsv3: raw.rsv3,
        opcode: OpCode::from(raw.opcode & 0x0f),
        mask: None,
    };
    Ok(WsFrame::from_payload(header, payload.into()))
}

fn describe_raw_frame(raw: &fixture::RawFrame) -> String {
    let bits: Vec<&str> = [
        (raw.fin, "FIN"),
        (raw.rsv1, "RSV1"),
        (raw.rsv2, "RSV2"),
        (raw.rsv3, "RSV3"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    format!(
        "raw frame: opcode {}, bits [{}], {}, payload {}",
        raw.opcode,
        bits.join(" "),
        if raw.masked { "masked" } else { "unmasked" },
        if raw.payload_hex.trim().is_empty() {
            "empty"
        } else {
            raw.payload_hex.trim()
        }
    )
}
