//! The endpoint under test and how step paths and queries combine with it.

use tokio_tungstenite::tungstenite::http::Uri;

/// A parsed `ws://` or `wss://` URL.
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    scheme: String,
    authority: String,
    host: String,
    port: u16,
    path: String,
    query: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("invalid URL {url:?}: {message}")]
    Invalid { url: String, message: String },
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let invalid = |message: &str| TargetError::Invalid {
            url: url.to_string(),
            message: message.to_string(),
        };
        let uri: Uri =
            url.parse()
                .map_err(|e: tokio_tungstenite::tungstenite::http::uri::InvalidUri| {
                    invalid(&e.to_string())
                })?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| invalid("missing scheme, expected ws://host:port/path"))?;
        let default_port = match scheme {
            "ws" => 80,
            "wss" => 443,
            _ => return Err(invalid("the scheme must be ws:// or wss://")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("missing host"))?;
        if authority.host().is_empty() {
            return Err(invalid("missing host"));
        }
        Ok(Target {
            url: url.to_string(),
            scheme: scheme.to_string(),
            authority: authority.as_str().to_string(),
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: authority.port_u16().unwrap_or(default_port),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// `host:port` for a TCP reachability check.
    pub fn socket_addr(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }

    /// The URL for one handshake: `path` replaces the URL path when it
    /// starts with `/` and is appended to it otherwise; `query` pairs are
    /// added after the URL's own query.
    pub fn url_for(&self, path: Option<&str>, query: &[(String, String)]) -> String {
        let path = match path {
            None => self.path.clone(),
            Some(p) if p.starts_with('/') => p.to_string(),
            Some(p) => format!("{}/{}", self.path.trim_end_matches('/'), p),
        };
        let mut parts: Vec<String> = self.query.iter().cloned().collect();
        parts.extend(
            query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v))),
        );
        let query = if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        };
        format!("{}://{}{}{}", self.scheme, self.authority, path, query)
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_combine() {
        let t = Target::parse("ws://127.0.0.1:9000/api/ws?v=1").unwrap();
        assert_eq!(t.url_for(None, &[]), "ws://127.0.0.1:9000/api/ws?v=1");
        assert_eq!(
            t.url_for(Some("/other"), &[("token".into(), "a b&c".into())]),
            "ws://127.0.0.1:9000/other?v=1&token=a%20b%26c"
        );
        assert_eq!(
            t.url_for(Some("sub"), &[]),
            "ws://127.0.0.1:9000/api/ws/sub?v=1"
        );
        assert_eq!(t.socket_addr(), ("127.0.0.1".to_string(), 9000));
    }

    #[test]
    fn rejects_unusable_urls() {
        for bad in ["127.0.0.1:9000", "http://x/", "ws://", "not a url"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Target::parse("ws://[::1]/").unwrap().socket_addr(),
            ("::1".to_string(), 80)
        );
    }
}
