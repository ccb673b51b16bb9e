//! TLS for the server's connections to PostgreSQL (`sslmode=require` in the URL) and Redis
//! (`rediss://`): rustls with the ring provider, so no system OpenSSL is needed. The
//! certificates trusted are the system's (`rustls-native-certs`) or, with `--tls-ca FILE`,
//! the PEM certificates in that file only (a private CA, as the tests make).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("TLS CA file {path}: {message}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Which certificates to trust; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The CA file's PEM bytes, or `None` for the system's certificates.
    ca_pem: Option<Arc<[u8]>>,
}

impl Trust {
    /// The system's certificates, or those of `ca` if given.
    ///
    /// # Errors
    /// When the file can't be read or holds no PEM certificate.
    pub fn new(ca: Option<&Path>) -> Result<Trust, TlsError> {
        let Some(path) = ca else {
            return Ok(Trust::default());
        };
        let err = |message: String| TlsError::Ca {
            path: path.to_owned(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no PEM certificate in it".into()));
        }
        Ok(Trust {
            ca_pem: Some(pem.into()),
        })
    }

    /// The CA file's PEM bytes, if one was given (for the Redis client's own TLS setup).
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// A rustls client configuration trusting these certificates.
    ///
    /// # Errors
    /// When a certificate is refused.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let mut roots = RootCertStore::empty();
        match &self.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem).flatten() {
                    roots.add(cert)?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }

    /// The connector for PostgreSQL: TLS when the URL asks for it (`sslmode`), verified
    /// against these certificates.
    ///
    /// # Errors
    /// When a certificate is refused.
    pub fn postgres(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, TlsError> {
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
            self.client_config()?,
        ))
    }

    /// A Redis client for `url`: `rediss://` URLs are verified against these certificates.
    ///
    /// # Errors
    /// When the URL does not parse.
    pub fn redis(&self, url: &str) -> redis::RedisResult<redis::Client> {
        // The redis crate picks rustls's process-wide provider; make it ring (the only one
        // built) before the first TLS connection. A second install is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        match (&self.ca_pem, url.starts_with("rediss://")) {
            (Some(pem), true) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.to_vec()),
                },
            ),
            _ => redis::Client::open(url),
        }
    }
}
