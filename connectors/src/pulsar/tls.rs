//! TLS to brokers (`pulsar+ssl://`): the trust store, hostname verification, insecure
//! connections and client certificates (mTLS), as the Java client's `tls*` settings mean
//! them, over rustls with the ring provider pulsar-rs also uses.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{ConnectorError, Result};

/// How TLS connections to brokers are checked (Flink's `pulsar.client.tls*` keys).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// PEM file of the CA certificates to trust, besides the system's.
    pub trust_certs_file: Option<PathBuf>,
    /// Accept any certificate (`tlsAllowInsecureConnection`): for tests only.
    pub allow_insecure: bool,
    /// Check that the certificate names the host connected to (`tlsHostnameVerificationEnable`).
    pub hostname_verification: bool,
    /// Client certificate chain and key, PEM files (mTLS).
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            trust_certs_file: None,
            allow_insecure: false,
            // The Java client's default is off; we verify unless told not to, since a
            // certificate for another host proves nothing.
            hostname_verification: true,
            client_certificate: None,
        }
    }
}

fn tls_error(reason: String) -> ConnectorError {
    ConnectorError::Tls(reason)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsSettings {
    /// The rustls client configuration these settings describe.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = RootCertStore::empty();
        // The system's CAs; a machine without a bundle still trusts the configured file.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(file) = &self.trust_certs_file {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    tls_error(format!(
                        "cannot read the trusted certificates in '{}': {e}",
                        file.display()
                    ))
                })?;
            if certs.is_empty() {
                return Err(tls_error(format!(
                    "'{}' holds no PEM certificate",
                    file.display()
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    tls_error(format!("a certificate in '{}': {e}", file.display()))
                })?;
            }
        }
        let provider = provider();
        let verifier: Arc<dyn ServerCertVerifier> = {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| tls_error(format!("no usable trusted certificate: {e}")))?;
            if self.allow_insecure {
                Arc::new(Lenient {
                    inner: webpki,
                    accept_any: true,
                })
            } else if !self.hostname_verification {
                Arc::new(Lenient {
                    inner: webpki,
                    accept_any: false,
                })
            } else {
                webpki
            }
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client_certificate {
            None => builder.with_no_client_auth(),
            Some((cert_file, key_file)) => {
                let chain = CertificateDer::pem_file_iter(cert_file)
                    .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| {
                        tls_error(format!(
                            "cannot read the client certificate '{}': {e}",
                            cert_file.display()
                        ))
                    })?;
                let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
                    tls_error(format!(
                        "cannot read the client key '{}': {e}",
                        key_file.display()
                    ))
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_error(format!("the client certificate and key: {e}")))?
            }
        };
        Ok(Arc::new(config))
    }

    /// The TLS connector these settings describe.
    pub fn connector(&self) -> Result<tokio_rustls::TlsConnector> {
        Ok(tokio_rustls::TlsConnector::from(self.client_config()?))
    }
}

/// The name `host` is checked against.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string())
        .map_err(|e| tls_error(format!("'{host}' is not a host name for TLS: {e}")))
}

/// Verifies signatures as usual but accepts a certificate for another host name, or (with
/// `accept_any`) any certificate at all.
#[derive(Debug)]
struct Lenient {
    inner: Arc<WebPkiServerVerifier>,
    accept_any: bool,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(ok) => Ok(ok),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            Err(_) if self.accept_any => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
