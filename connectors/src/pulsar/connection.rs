//! One TCP connection to a Pulsar broker, shared by the consumers that live on it.
//!
//! A reader task routes responses to their requests (by request id) and MESSAGE frames to
//! their consumers (by consumer id), and answers the broker's PINGs; a writer task owns the
//! socket's write half. When the connection breaks, every pending request fails and every
//! consumer is told, so nothing waits forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use pulsar::proto::{self, BaseCommand, base_command::Type};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::auth::Authentication;
use super::frame::{Frame, FrameCodec};
use super::tls::{TlsSettings, server_name};
use crate::error::{ConnectorError, Result};

/// Protocol version we speak (Pulsar 2.10+ brokers and pulsar-lite accept it).
const PROTOCOL_VERSION: i32 = 19;

/// How long connecting and requests may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// Opening the TCP connection and the TLS handshake (`connectionTimeoutMs`).
    pub connect: Duration,
    /// Each request, CONNECT included (`operationTimeoutMs`).
    pub operation: Duration,
}

impl Timeouts {
    /// The same timeout for both.
    pub fn both(timeout: Duration) -> Self {
        Self {
            connect: timeout,
            operation: timeout,
        }
    }
}

/// What a client proves and checks when it connects: TLS settings (used for
/// `pulsar+ssl://` URLs) and credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientSecurity {
    /// How TLS connections are checked.
    pub tls: TlsSettings,
    /// Credentials sent with CONNECT.
    pub auth: Option<Authentication>,
}

/// What a consumer learns from its connection.
#[derive(Debug)]
pub enum ConsumerEvent {
    /// A MESSAGE frame: one ledger entry, possibly a batch.
    Message {
        /// The entry's id as the broker sent it.
        id: proto::MessageIdData,
        /// Times the broker says it delivered this entry before.
        redelivery_count: u32,
        /// Headers and payload, unparsed.
        payload: Bytes,
    },
    /// Failover: this consumer became active (`true`) or passive.
    ActiveChange(bool),
    /// The topic was terminated and everything has been delivered.
    EndOfTopic,
    /// The broker closed this consumer or the connection broke.
    Closed(String),
}

/// A consumer event tagged with the consumer it belongs to, so that one channel can carry
/// the events of many consumers (one per partition of a source).
#[derive(Debug)]
pub struct RoutedEvent {
    /// The slot the consumer was registered with.
    pub slot: usize,
    /// The consumer's id on its connection.
    pub consumer_id: u64,
    /// What happened.
    pub event: ConsumerEvent,
}

struct ConsumerRoute {
    slot: usize,
    tx: mpsc::UnboundedSender<RoutedEvent>,
}

impl ConsumerRoute {
    fn send(&self, consumer_id: u64, event: ConsumerEvent) {
        let _ = self.tx.send(RoutedEvent {
            slot: self.slot,
            consumer_id,
            event,
        });
    }
}

#[derive(Default)]
struct Routes {
    pending: HashMap<u64, oneshot::Sender<BaseCommand>>,
    consumers: HashMap<u64, ConsumerRoute>,
    /// Set once the connection is gone, with the reason.
    closed: Option<String>,
}

/// A live connection to one broker.
pub struct Connection {
    address: String,
    outbound: mpsc::UnboundedSender<pulsar::message::Message>,
    routes: Arc<Mutex<Routes>>,
    next_request_id: AtomicU64,
    next_consumer_id: AtomicU64,
    operation_timeout: Duration,
    /// Server version string from CONNECTED.
    server_version: String,
    /// Dropped with the connection: tells the reader task to stop.
    _shutdown: oneshot::Sender<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.address)
            .field("server_version", &self.server_version)
            .finish()
    }
}

/// Where a `pulsar://host:port` or `pulsar+ssl://host:port` URL points.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BrokerAddress {
    /// The host, as written (checked against the certificate under TLS).
    pub host: String,
    /// `host:port`.
    pub address: String,
    /// Whether the URL asks for TLS.
    pub tls: bool,
}

/// Host and port of a `pulsar://host:port` (default port 6650) or `pulsar+ssl://host:port`
/// (default port 6651) URL.
pub(crate) fn broker_address(url: &str) -> Result<BrokerAddress> {
    let invalid = |reason: &str| ConnectorError::InvalidServiceUrl {
        url: crate::redact::url(url),
        reason: reason.to_string(),
    };
    let (rest, tls, default_port) = if let Some(rest) = url.strip_prefix("pulsar+ssl://") {
        (rest, true, 6651)
    } else if let Some(rest) = url.strip_prefix("pulsar://") {
        (rest, false, 6650)
    } else {
        return Err(invalid(
            "expected pulsar://host:port or pulsar+ssl://host:port",
        ));
    };
    let host_port = rest.trim_end_matches('/');
    if host_port.is_empty() || host_port.contains('/') {
        return Err(invalid(
            "expected pulsar://host:port or pulsar+ssl://host:port",
        ));
    }
    if host_port.contains('@') {
        return Err(invalid(
            "credentials do not go in the URL; use 'pulsar.client.authParams'",
        ));
    }
    let (host, address) = match host_port.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() && !host.ends_with(':') => {
            (host.to_string(), host_port.to_string())
        }
        _ => (host_port.to_string(), format!("{host_port}:{default_port}")),
    };
    Ok(BrokerAddress { host, address, tls })
}

/// A boxed read half and write half of a plain or TLS stream.
type Halves = (
    Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
);

/// Opens the TCP (and TLS) stream to `broker`.
async fn open_stream(
    broker: &BrokerAddress,
    security: &ClientSecurity,
    connect_timeout: Duration,
) -> Result<Halves> {
    let address = broker.address.clone();
    let timed_out = || ConnectorError::Connect {
        address: address.clone(),
        source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
    };
    let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(&address))
        .await
        .map_err(|_| timed_out())?
        .map_err(|source| ConnectorError::Connect {
            address: address.clone(),
            source,
        })?;
    stream.set_nodelay(true).ok();
    if !broker.tls {
        let (read, write) = stream.into_split();
        return Ok((Box::new(read), Box::new(write)));
    }
    let connector = security.tls.connector()?;
    let stream = tokio::time::timeout(
        connect_timeout,
        connector.connect(server_name(&broker.host)?, stream),
    )
    .await
    .map_err(|_| timed_out())?
    .map_err(|e| ConnectorError::Tls(format!("handshake with {address} failed: {e}")))?;
    let (read, write) = tokio::io::split(stream);
    Ok((Box::new(read), Box::new(write)))
}

impl Connection {
    /// Connects to `url` (`pulsar://host:port` or `pulsar+ssl://host:port`) and performs
    /// the CONNECT handshake; through a proxy at `url`, `proxy_to` names the broker behind it.
    /// The TCP and TLS connect may take `timeouts.connect`, each request `timeouts.operation`.
    pub async fn connect(
        url: &str,
        proxy_to: Option<&str>,
        security: &ClientSecurity,
        timeouts: Timeouts,
    ) -> Result<Arc<Connection>> {
        let operation_timeout = timeouts.operation;
        let broker = broker_address(url)?;
        let address = broker.address.clone();
        let (read, write) = open_stream(&broker, security, timeouts.connect).await?;
        let mut reader = FramedRead::new(read, FrameCodec);
        let mut writer = FramedWrite::new(write, FrameCodec);
        let auth = security.auth.as_ref();
        let auth_data = match auth {
            Some(a) => Some(a.data().await.map_err(|e| match e {
                ConnectorError::Authentication { reason, .. } => ConnectorError::Authentication {
                    address: address.clone(),
                    reason,
                },
                other => other,
            })?),
            None => None,
        };

        let connect = BaseCommand {
            r#type: Type::Connect as i32,
            connect: Some(proto::CommandConnect {
                client_version: format!("magnetar-{}", env!("CARGO_PKG_VERSION")),
                protocol_version: Some(PROTOCOL_VERSION),
                auth_method_name: auth.map(|a| a.method().to_string()),
                auth_data,
                proxy_to_broker_url: proxy_to.map(str::to_string),
                // Brokers challenge (rather than drop) connections whose credentials expire
                // only when the client says it answers challenges.
                feature_flags: Some(proto::FeatureFlags {
                    supports_auth_refresh: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        writer
            .send(pulsar::message::Message {
                command: connect,
                payload: None,
            })
            .await?;
        let answer = tokio::time::timeout(operation_timeout, reader.next())
            .await
            .map_err(|_| ConnectorError::Timeout {
                request: "CONNECT",
                topic: url.to_string(),
                timeout_ms: operation_timeout.as_millis() as u64,
            })?;
        let frame = match answer {
            Some(frame) => frame?,
            None => {
                return Err(ConnectorError::Disconnected {
                    address,
                    reason: "closed during the handshake".into(),
                });
            }
        };
        let server_version = match (frame.command.connected, frame.command.error) {
            (Some(connected), _) => connected.server_version,
            (None, Some(error)) if server_error_name(error.error) == "AuthenticationError" => {
                return Err(ConnectorError::Authentication {
                    address,
                    reason: if error.message.is_empty() {
                        "the broker refused the credentials".into()
                    } else {
                        error.message
                    },
                });
            }
            (None, Some(error)) => {
                return Err(ConnectorError::Broker {
                    request: "CONNECT",
                    topic: None,
                    error: server_error_name(error.error),
                    message: error.message,
                });
            }
            _ => {
                return Err(ConnectorError::Frame(format!(
                    "expected CONNECTED, got command type {}",
                    frame.command.r#type
                )));
            }
        };

        let (outbound, mut outbound_rx) = mpsc::unbounded_channel::<pulsar::message::Message>();
        let routes = Arc::new(Mutex::new(Routes::default()));
        tokio::spawn(async move {
            while let Some(message) = outbound_rx.recv().await {
                if writer.send(message).await.is_err() {
                    break;
                }
            }
        });
        let reader_routes = routes.clone();
        let pong_tx = outbound.clone();
        let reader_address = address.clone();
        let reader_auth = security.auth.clone();
        let (shutdown, mut shutdown_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let reason = loop {
                tokio::select! {
                    frame = reader.next() => match frame {
                        Some(Ok(frame)) if frame.command.auth_challenge.is_some() => {
                            answer_challenge(reader_auth.clone(), pong_tx.clone(), &reader_address);
                        }
                        Some(Ok(frame)) => route(&reader_routes, &pong_tx, frame),
                        Some(Err(e)) => break e.to_string(),
                        None => break "closed by the broker".to_string(),
                    },
                    // The connection was dropped: stop reading (this closes the socket).
                    _ = &mut shutdown_rx => break "closed".to_string(),
                }
            };
            tracing::debug!(address = %reader_address, %reason, "connection closed");
            let mut routes = lock(&reader_routes);
            routes.closed = Some(reason.clone());
            routes.pending.clear();
            for (id, consumer) in routes.consumers.drain() {
                consumer.send(id, ConsumerEvent::Closed(reason.clone()));
            }
        });

        Ok(Arc::new(Connection {
            address,
            outbound,
            routes,
            next_request_id: AtomicU64::new(1),
            next_consumer_id: AtomicU64::new(1),
            operation_timeout,
            server_version,
            _shutdown: shutdown,
        }))
    }

    /// `host:port` of the broker.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The broker's version string.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// Whether the connection is still usable.
    pub fn is_open(&self) -> bool {
        lock(&self.routes).closed.is_none() && !self.outbound.is_closed()
    }

    /// A fresh request id.
    pub fn new_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a new consumer id whose events go to `tx`, tagged with `slot`.
    ///
    /// The channel is unbounded on purpose: the reader task must never block (other
    /// consumers share the connection); flow permits bound what the broker may push.
    pub fn register_consumer(
        &self,
        slot: usize,
        tx: mpsc::UnboundedSender<RoutedEvent>,
    ) -> Result<u64> {
        let id = self.next_consumer_id.fetch_add(1, Ordering::Relaxed);
        let mut routes = lock(&self.routes);
        if let Some(reason) = &routes.closed {
            return Err(self.disconnected(reason));
        }
        routes.consumers.insert(id, ConsumerRoute { slot, tx });
        Ok(id)
    }

    /// Stops routing events to a consumer.
    pub fn unregister_consumer(&self, consumer_id: u64) {
        lock(&self.routes).consumers.remove(&consumer_id);
    }

    /// Sends a command that has no answer (FLOW, ACK, ...).
    pub fn send(&self, command: BaseCommand) -> Result<()> {
        self.outbound
            .send(pulsar::message::Message {
                command,
                payload: None,
            })
            .map_err(|_| self.disconnected("writer stopped"))
    }

    /// Sends a command carrying `request_id` and waits for the broker's answer.
    ///
    /// An ERROR answer becomes [`ConnectorError::Broker`]; no answer within `timeout`
    /// (or the connection's operation timeout) becomes [`ConnectorError::Timeout`].
    pub async fn request(
        &self,
        request: &'static str,
        topic: &str,
        request_id: u64,
        command: BaseCommand,
        timeout: Option<Duration>,
    ) -> Result<BaseCommand> {
        let (tx, rx) = oneshot::channel();
        {
            let mut routes = lock(&self.routes);
            if let Some(reason) = &routes.closed {
                return Err(self.disconnected(reason));
            }
            routes.pending.insert(request_id, tx);
        }
        self.send(command)?;
        let timeout = timeout.unwrap_or(self.operation_timeout);
        let answer = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => {
                let reason = lock(&self.routes)
                    .closed
                    .clone()
                    .unwrap_or_else(|| "closed".into());
                return Err(self.disconnected(&reason));
            }
            Err(_) => {
                lock(&self.routes).pending.remove(&request_id);
                return Err(ConnectorError::Timeout {
                    request,
                    topic: topic.to_string(),
                    timeout_ms: timeout.as_millis() as u64,
                });
            }
        };
        if let Some(error) = &answer.error {
            return Err(ConnectorError::Broker {
                request,
                topic: Some(topic.to_string()),
                error: server_error_name(error.error),
                message: error.message.clone(),
            });
        }
        Ok(answer)
    }

    fn disconnected(&self, reason: &str) -> ConnectorError {
        ConnectorError::Disconnected {
            address: self.address.clone(),
            reason: reason.to_string(),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Dropping the sender stops the writer task, which closes the socket's write half;
        // the broker then closes its side and the reader task ends.
        lock(&self.routes).consumers.clear();
    }
}

fn lock(routes: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    // A panic while holding this lock cannot leave the maps inconsistent: keep going.
    routes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Answers a broker's AUTH_CHALLENGE (sent when the credentials of a live connection expire)
/// with fresh credentials: a token file read again, an OAuth2 token fetched again. Without an
/// answer the broker closes the connection.
fn answer_challenge(
    auth: Option<Authentication>,
    outbound: mpsc::UnboundedSender<pulsar::message::Message>,
    address: &str,
) {
    let address = address.to_string();
    tokio::spawn(async move {
        let Some(auth) = auth else {
            tracing::warn!(%address, "the broker asked for credentials and there are none");
            return;
        };
        match auth.data().await {
            Ok(data) => {
                let _ = outbound.send(pulsar::message::Message {
                    command: BaseCommand {
                        r#type: Type::AuthResponse as i32,
                        auth_response: Some(proto::CommandAuthResponse {
                            client_version: Some(format!("magnetar-{}", env!("CARGO_PKG_VERSION"))),
                            response: Some(proto::AuthData {
                                auth_method_name: Some(auth.method().to_string()),
                                auth_data: Some(data),
                            }),
                            protocol_version: Some(PROTOCOL_VERSION),
                        }),
                        ..Default::default()
                    },
                    payload: None,
                });
            }
            Err(e) => tracing::warn!(%address, error = %e, "cannot refresh the credentials"),
        }
    });
}

fn route(
    routes: &Mutex<Routes>,
    outbound: &mpsc::UnboundedSender<pulsar::message::Message>,
    frame: Frame,
) {
    let command = frame.command;
    if command.ping.is_some() {
        let _ = outbound.send(pulsar::message::Message {
            command: BaseCommand {
                r#type: Type::Pong as i32,
                pong: Some(proto::CommandPong {}),
                ..Default::default()
            },
            payload: None,
        });
        return;
    }
    if let Some(message) = &command.message {
        let routes = lock(routes);
        if let Some(consumer) = routes.consumers.get(&message.consumer_id) {
            consumer.send(
                message.consumer_id,
                ConsumerEvent::Message {
                    id: message.message_id.clone(),
                    redelivery_count: message.redelivery_count.unwrap_or(0),
                    payload: frame.payload.unwrap_or_default(),
                },
            );
        }
        return;
    }
    let consumer_event = if let Some(change) = &command.active_consumer_change {
        Some((
            change.consumer_id,
            ConsumerEvent::ActiveChange(change.is_active.unwrap_or(false)),
        ))
    } else if let Some(end) = &command.reached_end_of_topic {
        Some((end.consumer_id, ConsumerEvent::EndOfTopic))
    } else {
        command.close_consumer.as_ref().map(|close| {
            (
                close.consumer_id,
                ConsumerEvent::Closed("the broker closed the consumer".into()),
            )
        })
    };
    if let Some((consumer_id, event)) = consumer_event {
        let mut routes = lock(routes);
        let closing = matches!(event, ConsumerEvent::Closed(_));
        if let Some(consumer) = routes.consumers.get(&consumer_id) {
            consumer.send(consumer_id, event);
        }
        if closing {
            routes.consumers.remove(&consumer_id);
        }
        return;
    }
    if let Some(request_id) = response_request_id(&command) {
        if let Some(waiter) = lock(routes).pending.remove(&request_id) {
            let _ = waiter.send(command);
        }
        return;
    }
    tracing::debug!(command_type = command.r#type, "ignoring unexpected command");
}

/// The request id an answer refers to.
fn response_request_id(c: &BaseCommand) -> Option<u64> {
    c.success
        .as_ref()
        .map(|x| x.request_id)
        .or(c.error.as_ref().map(|x| x.request_id))
        .or(c.lookup_topic_response.as_ref().map(|x| x.request_id))
        .or(c.partition_metadata_response.as_ref().map(|x| x.request_id))
        .or(c
            .get_last_message_id_response
            .as_ref()
            .map(|x| x.request_id))
        .or(c.get_schema_response.as_ref().map(|x| x.request_id))
        .or(c.producer_success.as_ref().map(|x| x.request_id))
        .or(c.consumer_stats_response.as_ref().map(|x| x.request_id))
        .or(c
            .get_topics_of_namespace_response
            .as_ref()
            .map(|x| x.request_id))
}

/// The protocol name of a `ServerError` code.
pub(crate) fn server_error_name(code: i32) -> String {
    proto::ServerError::try_from(code)
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|_| format!("error {code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket_address(url: &str) -> Result<String> {
        broker_address(url).map(|a| a.address)
    }

    #[test]
    fn parses_service_urls() {
        assert_eq!(
            socket_address("pulsar://127.0.0.1:6651").expect("ok"),
            "127.0.0.1:6651"
        );
        assert_eq!(
            socket_address("pulsar://broker/").expect("ok"),
            "broker:6650"
        );
        for bad in [
            "http://x:1",
            "pulsar://",
            "pulsar://a:1/b",
            "127.0.0.1:6650",
        ] {
            assert!(socket_address(bad).is_err(), "{bad}");
        }
        let tls = broker_address("pulsar+ssl://x").expect("tls");
        assert_eq!((tls.address.as_str(), tls.tls), ("x:6651", true));
        let err = socket_address("pulsar://user:s3cr3t@x:1").expect_err("user info");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_broker_is_a_clear_error() {
        // Bind then drop a listener to get a loopback port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let url = format!("pulsar://127.0.0.1:{port}");
        let err = Connection::connect(
            &url,
            None,
            &ClientSecurity::default(),
            Timeouts::both(Duration::from_secs(5)),
        )
        .await
        .expect_err("nobody listens");
        let text = err.to_string();
        assert!(
            text.contains("cannot connect to Pulsar at 127.0.0.1"),
            "{text}"
        );
    }
}
