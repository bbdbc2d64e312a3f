//! `wss://` endpoints: the runner completes TLS handshakes against a server
//! whose certificate chains to a CA given with `--ca-cert`, and fails the
//! case, saying why, when it does not trust the certificate.

use futures_util::{SinkExt, StreamExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use ws_conformance::{parse_suite, RunOptions, Runner, Status, TlsConfig};

fn material(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

/// A wss:// server on loopback that greets every connection and echoes text.
async fn tls_server() -> String {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(material("server.pem"))
        .expect("the test certificate")
        .collect::<Result<_, _>>()
        .expect("PEM certificates");
    let key = PrivateKeyDer::from_pem_file(material("server.key")).expect("the test key");
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a usable certificate");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                if ws.send(Message::text(r#"{"hello":"tls"}"#)).await.is_err() {
                    return;
                }
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() && ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("wss://127.0.0.1:{port}/")
}

const SUITE: &str = r#"{
  "cases": [{
    "id": "tls.greeting",
    "title": "a greeting and an echo over wss",
    "requirements": [],
    "profile": "tls",
    "steps": [
      {"step": "open"},
      {"step": "expect", "match": {"$exact": true, "hello": "tls"}},
      {"step": "send", "json": {"echo": 1}},
      {"step": "expect", "match": {"$exact": true, "echo": 1}}
    ]
  }]
}"#;

async fn run(tls: TlsConfig) -> ws_conformance::Report {
    let url = tls_server().await;
    let suite = parse_suite(Path::new("tls.json"), SUITE, None).expect("the suite parses");
    Runner::new(RunOptions {
        tls,
        ..RunOptions::default()
    })
    .run(&url, &[suite])
    .await
    .expect("the run is set up")
}

#[tokio::test]
async fn a_server_signed_by_a_given_ca_is_trusted() {
    let tls = TlsConfig::with_ca_files(&[material("ca.pem")]).expect("the test CA loads");
    let report = run(tls).await;
    let case = &report.cases[0];
    assert_eq!(case.status, Status::Pass, "{:?}", case.failure);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_handshake_with_the_reason() {
    let report = run(TlsConfig::default()).await;
    let case = &report.cases[0];
    assert_eq!(case.status, Status::Fail);
    let message = &case.failure.as_ref().expect("a failure").message;
    assert!(
        message.contains("handshake") && message.to_lowercase().contains("certificate"),
        "{message}"
    );
}

#[test]
fn a_file_without_certificates_is_refused() {
    let error = TlsConfig::with_ca_files(&[material("README.md")]).unwrap_err();
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
}
