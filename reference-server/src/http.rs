//! The HTTP side of the listener: reading a request head, answering plain
//! requests (/healthz, /stats), and validating and accepting WebSocket upgrades.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Request heads larger than this are refused with 431.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// A parsed request head. Header names are lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHead {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every comma-separated token of every header with this name.
    pub fn header_tokens(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect()
    }

    pub fn is_upgrade(&self) -> bool {
        self.header_tokens("upgrade")
            .iter()
            .any(|t| t.eq_ignore_ascii_case("websocket"))
    }

    /// The token offered in `Authorization: Bearer` or `?token=`; the header
    /// wins when both are present (TW-AUTH-4).
    pub fn token(&self) -> Option<String> {
        let from_header = self.header("authorization").and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
        from_header.or_else(|| {
            self.query.as_deref().and_then(|query| {
                query.split('&').find_map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (key == "token").then(|| percent_decode(value))
                })
            })
        })
    }
}

/// The session parameters of a handshake's query (section 5.7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SessionParams {
    pub max_message_bytes: Option<usize>,
    /// The stated features, in the order stated, without duplicates.
    pub features: Vec<String>,
    pub client: Option<String>,
}

impl RequestHead {
    /// The query parameter `name`, decoded; the first if it is repeated.
    fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref().and_then(|query| {
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key == name).then(|| percent_decode(value))
            })
        })
    }

    /// The session parameters the handshake states; `None` when it states
    /// none, an error naming the parameter when one is malformed.
    pub fn session_params(&self) -> Result<Option<SessionParams>, String> {
        use tidewire_protocol::session::{
            is_feature_name, MIN_MAX_MESSAGE_BYTES, PARAM_CLIENT, PARAM_FEATURES,
            PARAM_MAX_MESSAGE_BYTES,
        };
        let max = self.query_param(PARAM_MAX_MESSAGE_BYTES);
        let features = self.query_param(PARAM_FEATURES);
        let client = self.query_param(PARAM_CLIENT);
        if max.is_none() && features.is_none() && client.is_none() {
            return Ok(None);
        }
        let max_message_bytes = match max {
            None => None,
            Some(value) => {
                let bytes = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| value.bytes().all(|b| b.is_ascii_digit()) && *n >= MIN_MAX_MESSAGE_BYTES)
                    .ok_or_else(|| {
                        format!("{PARAM_MAX_MESSAGE_BYTES} must be an integer of at least {MIN_MAX_MESSAGE_BYTES}")
                    })?;
                Some(usize::try_from(bytes).unwrap_or(usize::MAX))
            }
        };
        let mut stated: Vec<String> = Vec::new();
        for name in features.iter().flat_map(|list| list.split(',')) {
            if !is_feature_name(name) {
                return Err(format!(
                    "{PARAM_FEATURES} lists {name:?}, which is not a feature name"
                ));
            }
            if !stated.iter().any(|s| s == name) {
                stated.push(name.to_string());
            }
        }
        if client
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > 256)
        {
            return Err(format!("{PARAM_CLIENT} must be 1 to 256 characters"));
        }
        Ok(Some(SessionParams {
            max_message_bytes,
            features: stated,
            client,
        }))
    }
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                // from_str_radix alone would also take a sign: `%+1` is not an escape.
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    TooLarge,
    Malformed,
    Closed,
    TimedOut,
}

/// Reads until the end of the request head; returns the head and any bytes
/// that followed it.
pub(crate) async fn read_head(
    stream: &mut (impl AsyncRead + Unpin),
    limit: Duration,
) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let read = async {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 2048];
        loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|_| HeadError::Closed)?;
            if n == 0 {
                return Err(HeadError::Closed);
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let target = request.path.unwrap_or("/");
                    let (path, query) = match target.split_once('?') {
                        Some((path, query)) => (path.to_string(), Some(query.to_string())),
                        None => (target.to_string(), None),
                    };
                    let head = RequestHead {
                        method: request.method.unwrap_or("").to_string(),
                        path,
                        query,
                        headers: request
                            .headers
                            .iter()
                            .map(|h| {
                                (
                                    h.name.to_ascii_lowercase(),
                                    String::from_utf8_lossy(h.value).into_owned(),
                                )
                            })
                            .collect(),
                    };
                    return Ok((head, buf[len..].to_vec()));
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => continue,
                Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                    return Err(HeadError::TooLarge)
                }
                Err(_) => return Err(HeadError::Malformed),
            }
        }
    };
    timeout(limit, read)
        .await
        .unwrap_or(Err(HeadError::TimedOut))
}

/// Writes a complete response and closes our side.
pub(crate) async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    extra_headers: &[(&str, &str)],
    body: &str,
) {
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(body);
    let _ = timeout(Duration::from_secs(5), async {
        stream.write_all(response.as_bytes()).await?;
        stream.flush().await?;
        stream.shutdown().await
    })
    .await;
}

/// Why an upgrade request is refused at the HTTP level.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: &'static str,
    pub message: String,
    pub extra_header: Option<(&'static str, &'static str)>,
}

/// What an acceptable upgrade request negotiates.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Upgrade {
    pub accept_key: String,
    pub subprotocol: Option<&'static str>,
    /// The client's `Sec-WebSocket-Extensions` offer. The server accepts no
    /// extension (spec section 2.6), so it answers without the header.
    pub extensions_offered: Vec<String>,
}

/// Validates an upgrade on the endpoint path and negotiates the subprotocol.
pub(crate) fn check_upgrade(head: &RequestHead) -> Result<Upgrade, Refusal> {
    let refuse = |status, message: &str| Refusal {
        status,
        message: message.to_string(),
        extra_header: None,
    };
    if head.method != "GET" {
        return Err(refuse("405 Method Not Allowed", "upgrades use GET"));
    }
    if !head
        .header_tokens("connection")
        .iter()
        .any(|t| t.eq_ignore_ascii_case("upgrade"))
    {
        return Err(refuse("400 Bad Request", "missing `Connection: upgrade`"));
    }
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Refusal {
            extra_header: Some(("sec-websocket-version", "13")),
            ..refuse(
                "426 Upgrade Required",
                "only WebSocket version 13 is supported",
            )
        });
    }
    let Some(key) = head.header("sec-websocket-key").map(str::trim) else {
        return Err(refuse("400 Bad Request", "missing Sec-WebSocket-Key"));
    };
    let offered = head.header_tokens("sec-websocket-protocol");
    let subprotocol = if offered.is_empty() {
        None
    } else if offered.contains(&tidewire_protocol::SUBPROTOCOL) {
        Some(tidewire_protocol::SUBPROTOCOL)
    } else {
        return Err(refuse(
            "400 Bad Request",
            "none of the offered subprotocols is supported; offer tidewire.v1",
        ));
    };
    Ok(Upgrade {
        accept_key: derive_accept_key(key.as_bytes()),
        subprotocol,
        extensions_offered: head
            .header_tokens("sec-websocket-extensions")
            .into_iter()
            .map(str::to_string)
            .collect(),
    })
}

/// Writes the 101 response.
pub(crate) async fn accept_upgrade(
    stream: &mut TcpStream,
    upgrade: &Upgrade,
    extensions: Option<&str>,
) -> std::io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n",
        upgrade.accept_key
    );
    if let Some(protocol) = upgrade.subprotocol {
        response.push_str(&format!("sec-websocket-protocol: {protocol}\r\n"));
    }
    if let Some(extensions) = extensions {
        response.push_str(&format!("sec-websocket-extensions: {extensions}\r\n"));
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)], query: Option<&str>) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: "/v1".into(),
            query: query.map(str::to_string),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    const UPGRADE: [(&str, &str); 4] = [
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn negotiates_the_subprotocol() {
        let plain = check_upgrade(&head(&UPGRADE, None)).unwrap();
        assert_eq!(plain.subprotocol, None);
        assert_eq!(plain.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut offered = UPGRADE.to_vec();
        offered.push(("sec-websocket-protocol", "other, tidewire.v1"));
        assert_eq!(
            check_upgrade(&head(&offered, None)).unwrap().subprotocol,
            Some("tidewire.v1")
        );
        let mut others = UPGRADE.to_vec();
        others.push(("sec-websocket-protocol", "mqtt, graphql-ws"));
        assert_eq!(
            check_upgrade(&head(&others, None)).unwrap_err().status,
            "400 Bad Request"
        );
    }

    #[test]
    fn reads_tokens_from_query_or_header() {
        assert_eq!(
            head(&[], Some("a=1&token=x%2By+z")).token().as_deref(),
            Some("x+y z")
        );
        assert_eq!(
            head(&[("authorization", "Bearer abc")], None)
                .token()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(head(&[("authorization", "Basic abc")], None).token(), None);
        assert_eq!(
            head(&[("authorization", "Bearer abc")], Some("token=xyz"))
                .token()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("a%+c%-1"), "a% c%-1");
    }
}
