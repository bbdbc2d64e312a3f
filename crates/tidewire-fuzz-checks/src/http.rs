//! The listener's request head reader (section 2: upgrade, `/healthz`,
//! `/stats`), checked against a one-shot parse of the whole input and an
//! independent reading of the handshake token.

use tidewire_server::fuzzing::{read_request_head, HeadRefusal, MAX_HEAD_BYTES};

/// The reader takes at most this much past the head limit before refusing
/// (one read's worth), which bounds a connection's memory before the upgrade.
const READ_CHUNK: usize = 2048;

/// Fuzz target `http_head`: the bytes are everything a client sends on a
/// fresh connection before closing its side.
pub fn check_http_head(bytes: &[u8]) {
    let outcome = read_request_head(bytes);
    let mut headers = [httparse_header(); 64];
    let mut request = httparse::Request::new(&mut headers);
    let whole = request.parse(bytes);
    match outcome {
        Ok(head) => {
            let Ok(httparse::Status::Complete(len)) = whole else {
                panic!("head read from {bytes:?}, but the whole input does not parse: {whole:?}");
            };
            assert!(
                len <= MAX_HEAD_BYTES + READ_CHUNK,
                "a {len}-byte head was accepted"
            );
            assert_eq!(head.method, request.method.unwrap_or(""));
            let target = request.path.unwrap_or("/");
            match &head.query {
                Some(query) => assert_eq!(format!("{}?{query}", head.path), target),
                None => assert_eq!(head.path, target),
            }
            assert!(!head.path.contains('?'));
            assert_eq!(head.headers.len(), request.headers.len());
            for ((name, value), raw) in head.headers.iter().zip(request.headers.iter()) {
                assert_eq!(*name, raw.name.to_ascii_lowercase());
                assert_eq!(*value, String::from_utf8_lossy(raw.value));
            }
            // What follows the head is handed to the WebSocket layer unchanged.
            assert_eq!(bytes.get(len..len + head.rest.len()), Some(&head.rest[..]));
            assert_eq!(
                head.token,
                expected_token(&head.headers, head.query.as_deref()),
                "{bytes:?}"
            );
            check_upgrade(&head);
        }
        Err(HeadRefusal::TooLarge) => assert!(
            bytes.len() >= MAX_HEAD_BYTES || matches!(whole, Err(httparse::Error::TooManyHeaders)),
            "{} bytes refused as too large: {whole:?}",
            bytes.len()
        ),
        Err(HeadRefusal::Malformed) => assert!(
            matches!(whole, Err(ref err) if *err != httparse::Error::TooManyHeaders),
            "{bytes:?} refused as malformed; the whole input parses to {whole:?}"
        ),
        Err(HeadRefusal::Closed) => assert!(
            bytes.len() < MAX_HEAD_BYTES && matches!(whole, Ok(httparse::Status::Partial)),
            "{bytes:?}: the reader saw the input end first, but it parses to {whole:?}"
        ),
        Err(HeadRefusal::TimedOut) => panic!("reading {} bytes at hand timed out", bytes.len()),
    }
}

fn httparse_header() -> httparse::Header<'static> {
    httparse::EMPTY_HEADER
}

fn check_upgrade(head: &tidewire_server::fuzzing::ParsedHead) {
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    };
    let tokens = |name: &str| -> Vec<String> {
        head.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect()
    };
    match &head.upgrade {
        Ok((accept, subprotocol)) => {
            assert_eq!(head.method, "GET");
            assert!(tokens("connection").iter().any(|t| t == "upgrade"));
            assert_eq!(header("sec-websocket-version"), Some("13"));
            assert!(header("sec-websocket-key").is_some());
            assert_eq!(accept.len(), 28, "a SHA-1 digest in base64: {accept}");
            let offered = tokens("sec-websocket-protocol");
            let offered: Vec<&String> = offered.iter().filter(|t| !t.is_empty()).collect();
            match subprotocol {
                Some(protocol) => assert!(offered.iter().any(|t| t.as_str() == *protocol)),
                None => assert!(offered.is_empty(), "offered {offered:?}, none selected"),
            }
        }
        Err(status) => assert!(
            [
                "405 Method Not Allowed",
                "400 Bad Request",
                "426 Upgrade Required"
            ]
            .contains(status),
            "{status}"
        ),
    }
}

/// Section 6.2: the `Authorization: Bearer` header wins over the `token`
/// query parameter, whose value is percent-decoded as URL queries are
/// (`%` and two hex digits is a byte, `+` is a space, anything else is itself).
fn expected_token(headers: &[(String, String)], query: Option<&str>) -> Option<String> {
    let bearer = headers
        .iter()
        .find(|(name, _)| name == "authorization")
        .and_then(|(_, value)| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    bearer.or_else(|| {
        query?.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name == "token").then(|| form_decode(value))
        })
    })
}

fn form_decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some(hex(*bytes.get(i + 1)?)? * 16 + hex(*bytes.get(i + 2)?)?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte as u8);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (byte, None) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
