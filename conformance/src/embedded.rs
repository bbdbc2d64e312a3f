//! `run --embedded`: the reference server, started in this process in the
//! configurations the Tidewire suites need, with the variables that tell the
//! suites where each configuration listens and which credentials it accepts.
//!
//! This is the only part of the runner that knows Tidewire: the engine gets
//! a URL and `--var` values exactly as it would for any other server.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tidewire_server::{
    encode_hs256, AuthMode, Config, RateLimit, Server, ServerError, ServerHandle, StaticToken,
};

/// The origin the `limits_url` server allows.
const ALLOWED_ORIGIN: &str = "https://app.tidewire.test";
const JWT_SECRET: &[u8] = b"tidewire-conformance-secret";

/// The reference servers of one embedded run.
pub struct Embedded {
    servers: Vec<ServerHandle>,
    /// The run URL: the server every case uses unless it names another.
    pub url: String,
    /// `--var` values for the suites.
    pub vars: BTreeMap<String, String>,
}

fn tokens() -> HashMap<String, StaticToken> {
    let token = |principal: &str, scopes: &[&str]| StaticToken {
        principal: principal.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    HashMap::from([
        ("tw-admin".to_string(), token("admin", &["*"])),
        (
            "tw-reader".to_string(),
            token(
                "reader",
                &[
                    "read:collection:*",
                    "subscribe:topic:*",
                    "join:room:public-*",
                ],
            ),
        ),
    ])
}

fn base() -> Config {
    Config {
        auth_mode: AuthMode::Optional,
        heartbeat_interval: Duration::from_millis(1000),
        tokens: tokens(),
        jwt_secret: Some(JWT_SECRET.to_vec()),
        ..Config::default()
    }
}

fn jwt(secret: &[u8], subject: &str, expires_in_secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    encode_hs256(
        secret,
        &json!({ "sub": subject, "scope": "*", "exp": now + expires_in_secs }),
    )
}

impl Embedded {
    pub async fn start() -> Result<Embedded, ServerError> {
        let configs = [
            ("url", base()),
            (
                "auth_required_url",
                Config {
                    auth_mode: AuthMode::Required,
                    auth_timeout: Duration::from_millis(500),
                    ..base()
                },
            ),
            (
                "limits_url",
                Config {
                    rate_limit: Some(RateLimit {
                        messages: 10,
                        window_ms: 1000,
                    }),
                    max_subscriptions: 2,
                    max_message_bytes: 4096,
                    allowed_origins: vec![ALLOWED_ORIGIN.into()],
                    ..base()
                },
            ),
            (
                "capped_url",
                Config {
                    max_connections: 2,
                    ..base()
                },
            ),
        ];
        let mut servers = Vec::new();
        let mut vars = BTreeMap::new();
        for (name, config) in configs {
            let server = match Server::start(config).await {
                Ok(server) => server,
                Err(e) => {
                    for started in servers {
                        ServerHandle::shutdown(started).await;
                    }
                    return Err(e);
                }
            };
            vars.insert(name.to_string(), server.ws_url());
            servers.push(server);
        }
        let url = vars.remove("url").expect("the main server is configured");
        vars.extend([
            ("allowed_origin".to_string(), ALLOWED_ORIGIN.to_string()),
            ("token_admin".to_string(), "tw-admin".to_string()),
            ("token_reader".to_string(), "tw-reader".to_string()),
            ("jwt_admin".to_string(), jwt(JWT_SECRET, "jwt-admin", 3600)),
            (
                "jwt_expired".to_string(),
                jwt(JWT_SECRET, "jwt-admin", -3600),
            ),
            (
                "jwt_bad_signature".to_string(),
                jwt(b"not-the-server-secret", "jwt-admin", 3600),
            ),
        ]);
        Ok(Embedded { servers, url, vars })
    }

    /// What the embedded servers are, for the report header.
    pub fn describe(&self) -> String {
        let mut out = format!("embedded reference server at {}", self.url);
        for (name, value) in &self.vars {
            if name.ends_with("_url") {
                out.push_str(&format!("\n  {name} = {value}"));
            }
        }
        out
    }

    pub async fn shutdown(self) {
        for server in self.servers {
            server.shutdown().await;
        }
    }
}
