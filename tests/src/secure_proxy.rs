//! Test fixture: a secured front for pulsar-lite, which speaks neither TLS nor authentication.
//!
//! It does what a real Pulsar cluster with TLS and token authentication does, in the shapes
//! real Pulsar uses on the wire:
//! - TLS (`brokerServicePortTls`) with a certificate made by [`Certificates`], optionally
//!   requiring a client certificate (`tlsRequireTrustedClientCertOnConnect`);
//! - token authentication as Pulsar's `AuthenticationProviderToken` with a secret key: the
//!   CONNECT command's `auth_method_name` must be `token` and its `auth_data` a JWT signed
//!   with HS256 by the secret, not expired; anything else is answered, as Pulsar answers it,
//!   with `CommandError { request_id: -1, error: AuthenticationError, message: "Failed to
//!   authenticate" }` and the connection is closed;
//! - credentials refreshed on live connections as Pulsar does when they expire
//!   (`authenticationRefreshCheckSeconds`): [`SecureProxy::challenge`] sends every connection
//!   whose CONNECT set `feature_flags.supports_auth_refresh`
//!   `CommandAuthChallenge { challenge: AuthData { <method>, "PulsarAuthRefresh" } }`, and the client's
//!   `CommandAuthResponse` must carry a valid token, else the connection gets the same
//!   `AuthenticationError` and is closed;
//! - lookups answered as through a Pulsar proxy: `proxy_through_service_url = true` and a
//!   `broker_service_url_tls`, so clients come back to this front (with
//!   `proxy_to_broker_url` in their CONNECT, which a proxy consumes) rather than going to
//!   the plain broker behind it.
//!
//! Everything else passes through to pulsar-lite unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::Message;
use pulsar::proto::{self, BaseCommand, base_command::Type};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A CA, a server certificate for `localhost` signed by it, and a client certificate, as
/// PEM files in a temporary directory.
pub struct Certificates {
    _dir: tempfile::TempDir,
    /// The CA certificate (trusted by clients).
    pub ca: PathBuf,
    /// The client certificate and its key (mTLS).
    pub client_cert: PathBuf,
    /// See `client_cert`.
    pub client_key: PathBuf,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    ca_der: CertificateDer<'static>,
}

impl Certificates {
    /// Makes a fresh CA and certificates: the server's names `localhost` only (so
    /// connecting by `127.0.0.1` is a host name mismatch).
    pub fn generate() -> Certificates {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "magnetar test CA");
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let ca = ca_params.self_signed(&ca_key).expect("ca cert");
        let server_key = rcgen::KeyPair::generate().expect("server key");
        let server = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("server params")
            .signed_by(&server_key, &ca, &ca_key)
            .expect("server cert");
        let client_key = rcgen::KeyPair::generate().expect("client key");
        let mut client_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("client params");
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "magnetar-client");
        let client = client_params
            .signed_by(&client_key, &ca, &ca_key)
            .expect("client cert");
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write pem");
            path
        };
        Certificates {
            ca: write("ca.pem", ca.pem()),
            client_cert: write("client.pem", client.pem()),
            client_key: write("client-key.pem", client_key.serialize_pem()),
            server_chain: vec![server.der().clone()],
            server_key: server_key.serialize_der(),
            ca_der: ca.der().clone(),
            _dir: dir,
        }
    }

    fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_der.clone()).expect("ca root");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        builder
            .with_single_cert(
                self.server_chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone())),
            )
            .expect("server certificate")
    }
}

/// What the front demands.
#[derive(Clone, Default)]
pub struct Security {
    /// Serve TLS with these certificates; `true`: require a client certificate.
    pub tls: Option<(Arc<Certificates>, bool)>,
    /// Demand a JWT signed (HS256) with this secret.
    pub token_secret: Option<Vec<u8>>,
}

/// A running front; stops when dropped.
pub struct SecureProxy {
    port: u16,
    refused: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    refreshed: Arc<AtomicUsize>,
    challenges: tokio::sync::broadcast::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SecureProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JWT for `subject` signed with `secret`, expiring `expires_in_s` seconds from now
/// (negative: already expired), as `bin/pulsar tokens create` makes them.
pub fn token(secret: &[u8], subject: &str, expires_in_s: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": subject, "exp": now + expires_in_s }),
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("token")
}

impl SecureProxy {
    /// Starts a front for the broker at `backend` (`host:port`).
    pub async fn start(backend: &str, security: Security) -> SecureProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let refused = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let refreshed = Arc::new(AtomicUsize::new(0));
        let (challenges, _) = tokio::sync::broadcast::channel(4);
        let acceptor = security.tls.as_ref().map(|(certs, require)| {
            tokio_rustls::TlsAcceptor::from(Arc::new(certs.server_config(*require)))
        });
        let backend = backend.to_string();
        let front = Front {
            backend,
            own_url_tls: format!("pulsar+ssl://localhost:{port}"),
            own_url: format!("pulsar://localhost:{port}"),
            secret: security.token_secret.clone(),
            refused: refused.clone(),
            accepted: accepted.clone(),
            refreshed: refreshed.clone(),
            challenges: challenges.clone(),
        };
        let front = Arc::new(front);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let front = front.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            // A failed handshake (wrong host, no client certificate) just
                            // ends the connection, as a TLS server does.
                            if let Ok(tls) = acceptor.accept(socket).await {
                                let _ = front.serve(tls).await;
                            }
                        }
                        None => {
                            let _ = front.serve(socket).await;
                        }
                    }
                });
            }
        });
        SecureProxy {
            port,
            refused,
            accepted,
            refreshed,
            challenges,
            task,
        }
    }

    /// The port it listens on (loopback).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `scheme://host:port` of this front.
    pub fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}", self.port)
    }

    /// CONNECTs refused for bad credentials so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// CONNECTs accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Asks every open connection for fresh credentials, as a broker does when they expire.
    pub fn challenge(&self) {
        let _ = self.challenges.send(());
    }

    /// AUTH_RESPONSEs with a valid token so far.
    pub fn refreshed(&self) -> usize {
        self.refreshed.load(Ordering::SeqCst)
    }
}

struct Front {
    backend: String,
    own_url_tls: String,
    own_url: String,
    secret: Option<Vec<u8>>,
    refused: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    refreshed: Arc<AtomicUsize>,
    challenges: tokio::sync::broadcast::Sender<()>,
}

/// Pulsar's answer to refused credentials.
fn authentication_error() -> BaseCommand {
    BaseCommand {
        r#type: Type::Error as i32,
        error: Some(proto::CommandError {
            request_id: u64::MAX,
            error: proto::ServerError::AuthenticationError as i32,
            message: "Failed to authenticate".into(),
        }),
        ..Default::default()
    }
}

/// One frame: its command and the bytes after the command (payload, checksum).
struct RawFrame {
    command: BaseCommand,
    rest: Vec<u8>,
    bytes: Vec<u8>,
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<RawFrame> {
    let total = r.read_u32().await? as usize;
    let mut bytes = vec![0u8; total];
    r.read_exact(&mut bytes).await?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let command_size = u32::from_be_bytes(
        bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("short frame"))?,
    ) as usize;
    let command_bytes = bytes
        .get(4..4 + command_size)
        .ok_or_else(|| bad("short command"))?;
    let command = BaseCommand::decode(command_bytes).map_err(|e| bad(&e.to_string()))?;
    let rest = bytes[4 + command_size..].to_vec();
    let mut framed = (total as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    Ok(RawFrame {
        command,
        rest,
        bytes: framed,
    })
}

fn encode_frame(command: &BaseCommand, rest: &[u8]) -> Vec<u8> {
    let command_bytes = command.encode_to_vec();
    let total = 4 + command_bytes.len() + rest.len();
    let mut out = Vec::with_capacity(4 + total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(command_bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&command_bytes);
    out.extend_from_slice(rest);
    out
}

impl Front {
    fn token_is_valid(&self, method: Option<&str>, data: Option<&[u8]>) -> bool {
        let Some(secret) = &self.secret else {
            return true;
        };
        if method != Some("token") {
            return false;
        }
        let Some(data) = data else {
            return false;
        };
        let Ok(text) = std::str::from_utf8(data) else {
            return false;
        };
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        jsonwebtoken::decode::<serde_json::Value>(
            text,
            &jsonwebtoken::DecodingKey::from_secret(secret),
            &validation,
        )
        .is_ok()
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
        self: Arc<Self>,
        client: S,
    ) -> std::io::Result<()> {
        let (mut from_client, mut to_client) = tokio::io::split(client);
        let mut first = read_frame(&mut from_client).await?;
        let Some(connect) = first.command.connect.as_mut() else {
            return Ok(());
        };
        if !self.token_is_valid(
            connect.auth_method_name.as_deref(),
            connect.auth_data.as_deref(),
        ) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            to_client
                .write_all(&encode_frame(&authentication_error(), &[]))
                .await?;
            to_client.shutdown().await?;
            return Ok(());
        }
        self.accepted.fetch_add(1, Ordering::SeqCst);
        // Pulsar challenges only clients that say they answer challenges (others it drops).
        let refreshes = connect
            .feature_flags
            .as_ref()
            .and_then(|f| f.supports_auth_refresh)
            .unwrap_or(false);
        let method = connect.auth_method_name.clone().unwrap_or_default();
        // A proxy consumes these; the broker behind it sees a plain CONNECT.
        connect.proxy_to_broker_url = None;
        connect.auth_method_name = None;
        connect.auth_data = None;
        let broker = TcpStream::connect(&self.backend).await?;
        let (mut from_broker, mut to_broker) = broker.into_split();
        to_broker
            .write_all(&encode_frame(&first.command, &first.rest))
            .await?;
        let to_client = Arc::new(tokio::sync::Mutex::new(to_client));
        let front = self.clone();
        let writer = to_client.clone();
        let upstream = tokio::spawn(async move {
            // Client to broker, frame by frame: AUTH_RESPONSEs are the front's to check.
            while let Ok(frame) = read_frame(&mut from_client).await {
                match &frame.command.auth_response {
                    Some(answer) => {
                        let data = answer.response.as_ref();
                        if front.token_is_valid(
                            data.and_then(|d| d.auth_method_name.as_deref()),
                            data.and_then(|d| d.auth_data.as_deref()),
                        ) {
                            front.refreshed.fetch_add(1, Ordering::SeqCst);
                        } else {
                            front.refused.fetch_add(1, Ordering::SeqCst);
                            let mut w = writer.lock().await;
                            let _ = w
                                .write_all(&encode_frame(&authentication_error(), &[]))
                                .await;
                            let _ = w.shutdown().await;
                            break;
                        }
                    }
                    None => {
                        if to_broker.write_all(&frame.bytes).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to_broker.shutdown().await;
        });
        let mut challenges = self.challenges.subscribe();
        let challenger_writer = to_client.clone();
        let challenger = tokio::spawn(async move {
            while refreshes && challenges.recv().await.is_ok() {
                let challenge = BaseCommand {
                    r#type: Type::AuthChallenge as i32,
                    auth_challenge: Some(proto::CommandAuthChallenge {
                        server_version: Some("magnetar test front".into()),
                        // What ServerCnx.refreshAuthenticationCredentials sends.
                        challenge: Some(proto::AuthData {
                            auth_method_name: Some(method.clone()),
                            auth_data: Some(b"PulsarAuthRefresh".to_vec()),
                        }),
                        protocol_version: Some(19),
                    }),
                    ..Default::default()
                };
                let mut w = challenger_writer.lock().await;
                if w.write_all(&encode_frame(&challenge, &[])).await.is_err() {
                    break;
                }
            }
        });
        let result = async {
            loop {
                let mut frame = read_frame(&mut from_broker).await?;
                let bytes = match frame.command.lookup_topic_response.as_mut() {
                    Some(lookup) => {
                        lookup.proxy_through_service_url = Some(true);
                        lookup.broker_service_url = Some(self.own_url.clone());
                        lookup.broker_service_url_tls = Some(self.own_url_tls.clone());
                        encode_frame(&frame.command, &frame.rest)
                    }
                    None => std::mem::take(&mut frame.bytes),
                };
                to_client.lock().await.write_all(&bytes).await?;
            }
        }
        .await;
        upstream.abort();
        challenger.abort();
        result
    }
}

/// A PEM file's path as text.
pub fn path_text(path: &Path) -> String {
    path.display().to_string()
}
