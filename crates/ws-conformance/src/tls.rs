//! TLS for `wss://` endpoints.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The TLS client settings every `wss://` handshake uses: the Mozilla root
/// certificates compiled into the runner, plus any CA certificates the user
/// adds (a private CA, or the one that signs a test server's certificate).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA certificates from {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} holds no PEM certificate")]
    Empty { path: PathBuf },
    #[error("cannot use a certificate of {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Default for TlsConfig {
    fn default() -> TlsConfig {
        TlsConfig::with_ca_files(&[]).expect("the built-in roots are valid")
    }
}

impl TlsConfig {
    /// The built-in roots plus every certificate in the PEM files `paths`.
    pub fn with_ca_files(paths: &[PathBuf]) -> Result<TlsConfig, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in paths {
            add_pem(&mut roots, path)?;
        }
        // ring rather than the default provider: it builds with a C compiler
        // alone, which every machine that builds Rust crates has.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConfig {
            client: Arc::new(client),
        })
    }

    pub(crate) fn client(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }
}

fn add_pem(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect())
        .map_err(|e| TlsError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_path_buf(),
        });
    }
    for cert in certs {
        roots.add(cert).map_err(|e| TlsError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}
