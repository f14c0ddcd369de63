//! The client keys of Flink's Pulsar connector (`pulsar.client.*`, passed through from the
//! table options): TLS, authentication and timeouts, which mean something here, and the list
//! of the connector's other keys, which Magnetar refuses by name rather than as unknown.

use std::path::PathBuf;
use std::time::Duration;

use magnetar_connectors::pulsar::{
    Authentication, ClientConfig, ClientSecurity, OAuth2Settings, PayloadCodec, TlsSettings,
};

use super::{OptionKind, OptionScope, OptionSpec, ValidatedOptions};
use crate::error::Result;

const AUTH_PLUGIN: &str = "pulsar.client.authPluginClassName";
const AUTH_PARAMS: &str = "pulsar.client.authParams";
const AUTH_PARAM_MAP: &str = "pulsar.client.authParamMap";
const TLS_TRUST: &str = "pulsar.client.tlsTrustCertsFilePath";
const TLS_INSECURE: &str = "pulsar.client.tlsAllowInsecureConnection";
const TLS_HOSTNAME: &str = "pulsar.client.tlsHostnameVerificationEnable";
const TLS_CERT: &str = "pulsar.client.tlsCertificateFilePath";
const TLS_KEY: &str = "pulsar.client.tlsKeyFilePath";
const OPERATION_TIMEOUT: &str = "pulsar.client.operationTimeoutMs";
const CONNECTION_TIMEOUT: &str = "pulsar.client.connectionTimeoutMs";
const RECEIVER_QUEUE: &str = "pulsar.consumer.receiverQueueSize";
const BATCHING: &str = "pulsar.producer.batchingEnabled";
const BATCH_MESSAGES: &str = "pulsar.producer.batchingMaxMessages";
const COMPRESSION: &str = "pulsar.producer.compressionType";
const CHUNKING: &str = "pulsar.producer.chunkingEnabled";

/// The Java class names (and short names) of the authentication plugins we speak.
const TOKEN_PLUGINS: &[&str] = &[
    "org.apache.pulsar.client.impl.auth.AuthenticationToken",
    "token",
];
const TLS_PLUGINS: &[&str] = &[
    "org.apache.pulsar.client.impl.auth.AuthenticationTls",
    "tls",
];
const OAUTH2_PLUGINS: &[&str] = &[
    "org.apache.pulsar.client.impl.auth.oauth2.AuthenticationOAuth2",
    "oauth2",
];

/// The `pulsar.client.*` keys Magnetar honours, for [`super::pulsar::PULSAR_OPTIONS`].
pub const CLIENT_OPTIONS: [OptionSpec; 15] = [
    OptionSpec {
        key: AUTH_PLUGIN,
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Table,
        description: "Authentication plugin, by its Java class name: `org.apache.pulsar.client.impl.auth.AuthenticationToken` (a JWT token), `org.apache.pulsar.client.impl.auth.AuthenticationTls` (a client certificate) or `org.apache.pulsar.client.impl.auth.oauth2.AuthenticationOAuth2` (client credentials exchanged for a token). Used for the broker and the admin REST calls.",
    },
    OptionSpec {
        key: AUTH_PARAMS,
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Table,
        description: "The plugin's parameters. Token: `token:<jwt>` or `file:///path/to/token` (read at every connect, so a rotated token is picked up). TLS: `tlsCertFile:/path,tlsKeyFile:/path`. OAuth2: `{\"issuerUrl\": ..., \"privateKey\": \"file:///credentials.json\", \"audience\": ..., \"scope\": ...}`. Never shown: errors, `SET` and the history print `******`.",
    },
    OptionSpec {
        key: AUTH_PARAM_MAP,
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Table,
        description: "The plugin's parameters as a map, `key:value,key:value` (`token:<jwt>`, `file:/path`, or `tlsCertFile:...,tlsKeyFile:...`). Never shown.",
    },
    OptionSpec {
        key: TLS_TRUST,
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Table,
        description: "PEM file of CA certificates trusted for `pulsar+ssl://` connections, besides the system's.",
    },
    OptionSpec {
        key: TLS_INSECURE,
        kind: OptionKind::Bool,
        default: Some("false"),
        required: false,
        scope: OptionScope::Table,
        description: "Accept any broker certificate (reading only; for tests).",
    },
    OptionSpec {
        key: TLS_HOSTNAME,
        kind: OptionKind::Bool,
        default: Some("true"),
        required: false,
        scope: OptionScope::Table,
        description: "Check that the broker's certificate names the host connected to. On by default (the Java client's default is off); `false` applies to reading only.",
    },
    OptionSpec {
        key: TLS_CERT,
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Table,
        description: "Client certificate (PEM) for mutual TLS, with `pulsar.client.tlsKeyFilePath` (reading only).",
    },
    OptionSpec {
        key: TLS_KEY,
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Table,
        description: "Private key (PEM) of the client certificate.",
    },
    OptionSpec {
        key: OPERATION_TIMEOUT,
        kind: OptionKind::Integer,
        default: Some("30000"),
        required: false,
        scope: OptionScope::Table,
        description: "How long a request to the broker (lookup, subscribe, seek, ...) may take, in milliseconds.",
    },
    OptionSpec {
        key: CONNECTION_TIMEOUT,
        kind: OptionKind::Integer,
        default: Some("10000"),
        required: false,
        scope: OptionScope::Table,
        description: "How long opening a connection (TCP and TLS) may take, in milliseconds.",
    },
    OptionSpec {
        key: RECEIVER_QUEUE,
        kind: OptionKind::Integer,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "Messages the broker may push ahead to each partition's consumer (flow permits). Default: the engine's batch size, between 100 and 10,000.",
    },
    OptionSpec {
        key: BATCHING,
        kind: OptionKind::Bool,
        default: Some("true"),
        required: false,
        scope: OptionScope::Sink,
        description: "Whether written messages are batched (a delayed sink never batches).",
    },
    OptionSpec {
        key: BATCH_MESSAGES,
        kind: OptionKind::Integer,
        default: Some("1000"),
        required: false,
        scope: OptionScope::Sink,
        description: "Most messages in one batch.",
    },
    OptionSpec {
        key: COMPRESSION,
        kind: OptionKind::OneOf(&["NONE", "LZ4", "ZLIB", "ZSTD", "SNAPPY"]),
        default: Some("NONE"),
        required: false,
        scope: OptionScope::Sink,
        description: "How written payloads are compressed (each batch, or each message when not batching), as the Java client's `CompressionType`. Not `SNAPPY`: the producer Magnetar writes with (pulsar-rs) writes Snappy's framed format, which Pulsar's Java and C++ clients cannot read. Sources read every codec, Snappy too.",
    },
    OptionSpec {
        key: CHUNKING,
        kind: OptionKind::Bool,
        default: Some("false"),
        required: false,
        scope: OptionScope::Sink,
        description: "Only `false`: the producer Magnetar writes with (pulsar-rs) cannot split a message into chunks, so a message over the broker's `maxMessageSize` is refused by the broker. Sources do read chunked messages.",
    },
];

/// Keys of Flink's Pulsar connector (flink-connector-pulsar 3.0 to 4.2) that Magnetar does
/// not use: refused by name, so nobody wonders whether they were applied.
pub const FLINK_KEYS_NOT_USED: &[&str] = &[
    "pulsar.client.serviceUrl",
    "pulsar.client.lookupTimeoutMs",
    "pulsar.client.statsIntervalSeconds",
    "pulsar.client.numIoThreads",
    "pulsar.client.numListenerThreads",
    "pulsar.client.connectionsPerBroker",
    "pulsar.client.connectionMaxIdleSeconds",
    "pulsar.client.useTcpNoDelay",
    "pulsar.client.concurrentLookupRequest",
    "pulsar.client.maxLookupRequest",
    "pulsar.client.maxLookupRedirects",
    "pulsar.client.maxNumberOfRejectedRequestPerConnection",
    "pulsar.client.keepAliveIntervalSeconds",
    "pulsar.client.requestTimeoutMs",
    "pulsar.client.initialBackoffIntervalNanos",
    "pulsar.client.maxBackoffIntervalNanos",
    "pulsar.client.enableBusyWait",
    "pulsar.client.listenerName",
    "pulsar.client.useKeyStoreTls",
    "pulsar.client.sslProvider",
    "pulsar.client.tlsKeyStoreType",
    "pulsar.client.tlsKeyStorePath",
    "pulsar.client.tlsKeyStorePassword",
    "pulsar.client.tlsTrustStoreType",
    "pulsar.client.tlsTrustStorePath",
    "pulsar.client.tlsTrustStorePassword",
    "pulsar.client.tlsCiphers",
    "pulsar.client.tlsProtocols",
    "pulsar.client.memoryLimitBytes",
    "pulsar.client.proxyServiceUrl",
    "pulsar.client.proxyProtocol",
    "pulsar.client.enableTransaction",
    "pulsar.client.dnsLookupBindAddress",
    "pulsar.consumer.subscriptionName",
    "pulsar.consumer.subscriptionMode",
    "pulsar.consumer.subscriptionProperties",
    "pulsar.consumer.acknowledgementsGroupTimeMicros",
    "pulsar.consumer.negativeAckRedeliveryDelayMicros",
    "pulsar.consumer.maxTotalReceiverQueueSizeAcrossPartitions",
    "pulsar.consumer.consumerName",
    "pulsar.consumer.ackTimeoutMillis",
    "pulsar.consumer.tickDurationMillis",
    "pulsar.consumer.priorityLevel",
    "pulsar.consumer.maxPendingChunkedMessage",
    "pulsar.consumer.autoAckOldestChunkedMessageOnQueueFull",
    "pulsar.consumer.expireTimeOfIncompleteChunkedMessageMillis",
    "pulsar.consumer.cryptoFailureAction",
    "pulsar.consumer.properties",
    "pulsar.consumer.readCompacted",
    "pulsar.consumer.deadLetterPolicy.maxRedeliverCount",
    "pulsar.consumer.deadLetterPolicy.retryLetterTopic",
    "pulsar.consumer.deadLetterPolicy.deadLetterTopic",
    "pulsar.consumer.retryEnable",
    "pulsar.consumer.replicateSubscriptionState",
    "pulsar.consumer.ackReceiptEnabled",
    "pulsar.consumer.poolMessages",
    "pulsar.consumer.autoScaledReceiverQueueSizeEnabled",
    "pulsar.producer.producerName",
    "pulsar.producer.sendTimeoutMs",
    "pulsar.producer.batchingMaxPublishDelayMicros",
    "pulsar.producer.batchingPartitionSwitchFrequencyByPublishDelay",
    "pulsar.producer.batchingMaxBytes",
    "pulsar.producer.chunkMaxMessageSize",
    "pulsar.producer.initialSequenceId",
    "pulsar.producer.properties",
    "pulsar.producer.producerCryptoFailureAction",
    "pulsar.source.enableAutoAcknowledgeMessage",
    "pulsar.source.autoCommitCursorInterval",
    "pulsar.source.fetchOneMessageTime",
    "pulsar.source.maxFetchTime",
    "pulsar.source.maxFetchRecords",
    "pulsar.source.verifyInitialOffsets",
    "pulsar.source.allowKeySharedOutOfOrderDelivery",
    "pulsar.source.enableSchemaEvolution",
    "pulsar.source.enableMetrics",
    "pulsar.source.resetSubscriptionCursor",
    "pulsar.source.initialCursor",
    "pulsar.sink.deliveryGuarantee",
    "pulsar.sink.transactionTimeoutMillis",
    "pulsar.sink.topicMetadataRefreshInterval",
    "pulsar.sink.messageKeyHash",
    "pulsar.sink.enableSchemaEvolution",
    "pulsar.sink.maxRecommitTimes",
    "pulsar.sink.enableMetrics",
    "pulsar.sink.validateSinkMessageBytes",
    "pulsar.admin.adminUrl",
    "pulsar.admin.connectTimeout",
    "pulsar.admin.readTimeout",
    "pulsar.admin.requestTimeout",
    "pulsar.admin.autoCertRefreshTime",
    "pulsar.admin.requestRetries",
    "pulsar.admin.requestWaitMillis",
    "pulsar.admin.requestRates",
    "pulsar.source.transactionTimeoutMillis",
    "pulsar.consumer.subscriptionType",
    "pulsar.consumer.subscriptionInitialPosition",
    "pulsar.consumer.autoUpdatePartitionsIntervalSeconds",
    "pulsar.producer.maxPendingMessages",
    "pulsar.producer.maxPendingMessagesAcrossPartitions",
    "pulsar.sink.maxPendingMessages",
];

/// Connection settings of a Pulsar table, from its `pulsar.client.*` keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulsarClientOptions {
    /// TLS settings and credentials.
    pub security: ClientSecurity,
    /// `operationTimeoutMs`, if given.
    pub operation_timeout: Option<Duration>,
    /// `connectionTimeoutMs`, if given.
    pub connection_timeout: Option<Duration>,
    /// `pulsar.consumer.receiverQueueSize`, if given.
    pub receiver_queue_size: Option<u32>,
    /// Messages per written batch (`pulsar.producer.batching*`; 1: no batching).
    pub batch_messages: u32,
    /// How written payloads are compressed.
    pub compression: PayloadCodec,
}

impl PulsarClientOptions {
    /// Reads the `pulsar.client.*` keys.
    pub fn parse(o: &ValidatedOptions<'_>) -> Result<Self> {
        let millis = |key: &str| -> Result<Option<Duration>> {
            match o.entry(key) {
                None => Ok(None),
                Some(e) => match e.value.trim().parse::<u64>() {
                    Ok(ms) if ms > 0 && ms <= super::common::MAX_DURATION_MS => {
                        Ok(Some(Duration::from_millis(ms)))
                    }
                    _ => Err(o.invalid(
                        key,
                        "expected a positive number of milliseconds, at most 3650 days",
                    )),
                },
            }
        };
        let path = |key: &str| o.get(key).map(|p| PathBuf::from(p.trim()));
        let mut tls = TlsSettings {
            trust_certs_file: path(TLS_TRUST),
            allow_insecure: o.get_bool(TLS_INSECURE),
            hostname_verification: o.get_bool(TLS_HOSTNAME),
            client_certificate: None,
        };
        match (path(TLS_CERT), path(TLS_KEY)) {
            (Some(cert), Some(key)) => tls.client_certificate = Some((cert, key)),
            (None, None) => {}
            (Some(_), None) => return Err(o.invalid(TLS_CERT, format!("needs '{TLS_KEY}' too"))),
            (None, Some(_)) => return Err(o.invalid(TLS_KEY, format!("needs '{TLS_CERT}' too"))),
        }
        let auth = match o.get(AUTH_PLUGIN).map(str::trim) {
            None => {
                if let Some(e) = o.entry(AUTH_PARAMS).or_else(|| o.entry(AUTH_PARAM_MAP)) {
                    return Err(o.invalid(&e.key, format!("has no effect without '{AUTH_PLUGIN}'")));
                }
                None
            }
            Some(plugin) if TOKEN_PLUGINS.iter().any(|p| p.eq_ignore_ascii_case(plugin)) => {
                Some(token(o)?)
            }
            Some(plugin) if TLS_PLUGINS.iter().any(|p| p.eq_ignore_ascii_case(plugin)) => {
                let params = params(o)?;
                let find = |name: &str| {
                    params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| PathBuf::from(v))
                };
                match (find("tlsCertFile"), find("tlsKeyFile")) {
                    (Some(cert), Some(key)) => {
                        if tls.client_certificate.is_some() {
                            return Err(o.invalid(
                                AUTH_PLUGIN,
                                format!("give the client certificate once: either here or in '{TLS_CERT}'"),
                            ));
                        }
                        tls.client_certificate = Some((cert, key));
                    }
                    _ => {
                        return Err(o.invalid(
                            params_key(o),
                            "AuthenticationTls takes 'tlsCertFile:/path,tlsKeyFile:/path'",
                        ));
                    }
                }
                // The certificate is the credential; CONNECT names the method with no data,
                // as the Java plugin does (a broker would take a missing method for "none").
                Some(Authentication::Other {
                    method: "tls".into(),
                    data: Vec::new(),
                })
            }
            Some(plugin)
                if OAUTH2_PLUGINS
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(plugin)) =>
            {
                Some(oauth2(o)?)
            }
            Some(_) => {
                return Err(o.invalid(
                    AUTH_PLUGIN,
                    format!(
                        "expected {}, {} or {}",
                        TOKEN_PLUGINS[0], TLS_PLUGINS[0], OAUTH2_PLUGINS[0]
                    ),
                ));
            }
        };
        let count = |key: &str, max: u32| -> Result<Option<u32>> {
            match o.get(key) {
                None => Ok(None),
                Some(text) => match text.trim().parse::<u32>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(o.invalid(key, format!("expected a number from 1 to {max}"))),
                },
            }
        };
        let receiver_queue_size = count(RECEIVER_QUEUE, 1_000_000)?;
        let batch_messages = if o.get_bool(BATCHING) {
            count(BATCH_MESSAGES, 100_000)?.unwrap_or(1000)
        } else {
            1
        };
        if o.get_bool(CHUNKING) {
            return Err(o.invalid(
                CHUNKING,
                "the producer Magnetar writes with (pulsar-rs) cannot split messages into chunks",
            ));
        }
        let compression = match o.get_choice(COMPRESSION) {
            None => PayloadCodec::None,
            Some(name) => PayloadCodec::from_name(name).ok_or_else(|| {
                o.invalid(
                    COMPRESSION,
                    format!(
                        "the producer Magnetar writes with (pulsar-rs) writes {name} in a format Pulsar's Java and C++ clients cannot read; choose {}",
                        PayloadCodec::NAMES.join(", ")
                    ),
                )
            })?,
        };
        Ok(Self {
            compression,
            security: ClientSecurity { tls, auth },
            operation_timeout: millis(OPERATION_TIMEOUT)?,
            connection_timeout: millis(CONNECTION_TIMEOUT)?,
            receiver_queue_size,
            batch_messages,
        })
    }

    /// The client configuration for `service_url` with these settings.
    pub fn client_config(&self, service_url: &str) -> ClientConfig {
        let mut config = ClientConfig::new(service_url);
        config.security = self.security.clone();
        if let Some(t) = self.operation_timeout {
            config.operation_timeout = t;
        }
        if let Some(t) = self.connection_timeout {
            config.connection_timeout = t;
        }
        config
    }
}

/// Which of the two parameter keys was given.
fn params_key(o: &ValidatedOptions<'_>) -> &'static str {
    if o.entry(AUTH_PARAMS).is_some() {
        AUTH_PARAMS
    } else {
        AUTH_PARAM_MAP
    }
}

/// `key:value,key:value` pairs of `authParams` or `authParamMap` (a JSON object also works,
/// as the Java plugins accept).
fn params(o: &ValidatedOptions<'_>) -> Result<Vec<(String, String)>> {
    let key = params_key(o);
    let Some(text) = o.get(key).map(str::trim) else {
        return Err(o.invalid(AUTH_PLUGIN, format!("needs '{AUTH_PARAMS}'")));
    };
    if text.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| o.invalid(key, format!("not a JSON object: {e}")))?;
        return Ok(map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect());
    }
    text.split(',')
        .map(|pair| {
            pair.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| o.invalid(key, "expected key:value pairs separated by ','"))
        })
        .collect()
}

/// The parameters of `AuthenticationOAuth2`: `issuerUrl`, `privateKey` (the credentials
/// file, `file:///path`), and optionally `audience` and `scope`.
fn oauth2(o: &ValidatedOptions<'_>) -> Result<Authentication> {
    let key = params_key(o);
    let params = params(o)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let (Some(issuer_url), Some(private_key)) = (get("issuerUrl"), get("privateKey")) else {
        return Err(o.invalid(
            key,
            "AuthenticationOAuth2 takes {\"issuerUrl\": ..., \"privateKey\": \"file:///path/to/credentials.json\", \"audience\": ...}",
        ));
    };
    let Some(path) = private_key
        .strip_prefix("file://")
        .or_else(|| (!private_key.contains(':')).then_some(private_key.as_str()))
    else {
        return Err(o.invalid(
            key,
            "'privateKey' must name the credentials file (file:///path); inline data: keys are not read",
        ));
    };
    Ok(Authentication::OAuth2(OAuth2Settings {
        issuer_url,
        credentials_file: PathBuf::from(path),
        audience: get("audience"),
        scope: get("scope"),
    }))
}

/// The token of `AuthenticationToken`: `token:<jwt>`, `file:<path or file:// URL>`, a bare
/// token, or a map with a `token` or `file` entry.
fn token(o: &ValidatedOptions<'_>) -> Result<Authentication> {
    let key = params_key(o);
    let Some(text) = o.get(key).map(str::trim) else {
        return Err(o.invalid(
            AUTH_PLUGIN,
            format!("needs '{AUTH_PARAMS}' = 'token:<jwt>' or 'file:///path/to/token'"),
        ));
    };
    let from_file = |path: &str| {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(o.invalid(key, "the token file path is empty"));
        }
        Ok(Authentication::TokenFile(PathBuf::from(path)))
    };
    let (token, file) = if text.starts_with('{') || key == AUTH_PARAM_MAP {
        let params = params(o)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        (get("token"), get("file"))
    } else if let Some(path) = text.strip_prefix("file:") {
        (None, Some(path.to_string()))
    } else {
        (
            Some(text.strip_prefix("token:").unwrap_or(text).to_string()),
            None,
        )
    };
    match (token, file) {
        (_, Some(path)) => from_file(&path),
        (Some(t), None) if !t.trim().is_empty() => Ok(Authentication::Token(t.trim().to_string())),
        _ => Err(o.invalid(
            key,
            "no token given; use 'token:<jwt>' or 'file:///path/to/token'",
        )),
    }
}
