//! The `pulsar` connector's options, named as in Flink's Pulsar SQL connector so that a
//! Flink user's DDL runs as-is.

use std::time::Duration;

use magnetar_connectors::format::FormatKind;
use magnetar_connectors::pulsar::{
    RoutingMode, StartPosition, StopPosition, SubscriptionType, TopicName, TopicPattern,
};
use magnetar_connectors::{MessageId, UnixMillis};

use super::common::{
    self, CSV_FIELD_DELIMITER, CSV_IGNORE_PARSE_ERRORS, EmitStrategy, FORMAT, IDLE_TIMEOUT,
    JSON_IGNORE_PARSE_ERRORS, SCAN_PARALLELISM, VALUE_FORMAT, VALUE_IGNORE_PARSE_ERRORS,
    ValueFormat, WATERMARK_EMIT,
};
use super::pulsar_client::{CLIENT_OPTIONS, FLINK_KEYS_NOT_USED, PulsarClientOptions};
use super::{OptionKind, OptionScope, OptionSpec, ValidatedOptions};
use crate::error::{Location, Result, SqlError};
use crate::statement::OptionEntry;

/// Every option of the `pulsar` connector.
pub const PULSAR_OPTIONS: &[OptionSpec] = &super::concat_specs::<
    { TABLE_OPTIONS.len() },
    { CLIENT_OPTIONS.len() },
    { TABLE_OPTIONS.len() + CLIENT_OPTIONS.len() },
>(TABLE_OPTIONS, CLIENT_OPTIONS);

/// The table's own options (the client's are in [`CLIENT_OPTIONS`]).
const TABLE_OPTIONS: [OptionSpec; 31] = [
    OptionSpec {
        key: "connector",
        kind: OptionKind::OneOf(&["pulsar"]),
        default: None,
        required: true,
        scope: OptionScope::Table,
        description: "The connector: `pulsar`.",
    },
    OptionSpec {
        key: "topics",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Table,
        description: "Topic name, or several separated by `;`. Short names mean `persistent://public/default/<name>`. An entry with regular-expression characters (`*+?[](){}|\\^$`) is a topic pattern, as in `topic-pattern`. A sink writes to exactly one topic. Give `topics` or `topic-pattern`.",
    },
    OptionSpec {
        key: "topic-pattern",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "A regular expression over the full topic names of one namespace, `persistent://public/default/click-.*` (a short pattern means `persistent://public/default/`), matched whole; several separated by `;`. The table reads every matching topic (partitioned ones with all their partitions) that exists when the query or job starts, listed through `admin-url` (`GET /admin/v2/namespaces/{tenant}/{namespace}/topics`) or else the broker's GetTopicsOfNamespace (5 s timeout). Matching nothing is an error naming the pattern in a bounded read; a continuous one waits, with a `SHOW JOBS` warning.",
    },
    OptionSpec {
        key: "service-url",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Table,
        description: "Broker URL, `pulsar://host:port` (several hosts: `pulsar://h1:6650,h2:6650`). Defaults to the engine's service URL (`SET 'pulsar.service-url'`, or the embedded broker).",
    },
    OptionSpec {
        key: "admin-url",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Table,
        description: "Admin REST URL, `http://host:8080`: the topic's schema is read from Pulsar's Schema Registry there (`GET /admin/v2/schemas/...`). With no column list, the columns come from that schema; declared columns must be readable from it. Without it, a table with no columns asks the broker (binary GetSchema, 5 s timeout).",
    },
    FORMAT,
    VALUE_FORMAT,
    OptionSpec {
        key: "key.format",
        kind: OptionKind::OneOf(&["raw", "json"]),
        default: Some("raw"),
        required: false,
        scope: OptionScope::Sink,
        description: "How `key.fields` become the message key: `raw` (the one field's text) or `json` (an object of the fields).",
    },
    OptionSpec {
        key: "key.fields",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Sink,
        description: "Column(s), separated by `;`, whose values form the message key of written messages.",
    },
    JSON_IGNORE_PARSE_ERRORS,
    VALUE_IGNORE_PARSE_ERRORS,
    CSV_IGNORE_PARSE_ERRORS,
    CSV_FIELD_DELIMITER,
    OptionSpec {
        key: "protobuf.descriptor-file",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "The `protobuf` format's messages: a binary `FileDescriptorSet` file (`protoc --include_imports --descriptor_set_out=FILE x.proto`), read at CREATE TABLE.",
    },
    OptionSpec {
        key: "protobuf.message-name",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "The `protobuf` format's message type, fully qualified (`shop.Click`).",
    },
    OptionSpec {
        key: "source.dead-letter-topic",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "Messages that cannot be decoded are written here (payload, key and properties as read, plus `magnetar-error`, `magnetar-source-topic` and `magnetar-source-message-id` properties, and `magnetar-key-base64` when the key was binary) and counted, before the query goes on; the broker confirms each before the input is acknowledged.",
    },
    OptionSpec {
        key: "source.tiered-storage.url",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "Where the topic's ledgers are offloaded (Pulsar tiered storage, jclouds layout): `s3://bucket?endpoint=...&region=...`, `gs://bucket`, `az://container`, or `file:///dir`; the store's own configuration keys go in the query, credentials come from the environment as the cloud's tools read them. A read from `earliest`, a message id or a publish time reads the offloaded ledgers from object storage first, then the rest from the broker, starting after the last offloaded entry. Offloaded ledgers are found through `admin-url` when given (`internal-info` and `internalStats`), else by listing the bucket and reading each index object's managed-ledger name.",
    },
    OptionSpec {
        key: "source.subscription-name",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "Durable subscription to read through; a restarted query resumes where it left off. Without it, each query reads through a temporary subscription of its own.",
    },
    OptionSpec {
        key: "source.subscription-type",
        kind: OptionKind::OneOf(&["Exclusive", "Shared", "Failover", "Key_Shared"]),
        default: Some("Exclusive"),
        required: false,
        scope: OptionScope::Source,
        description: "Subscription type. `Key_Shared` and `Shared` spread messages over the queries (or workers) that share the subscription.",
    },
    OptionSpec {
        key: "source.start.message-id",
        kind: OptionKind::Text,
        default: Some("earliest"),
        required: false,
        scope: OptionScope::Source,
        description: "`earliest` or `latest`: where a new subscription starts (an existing one resumes where it left off). A message id `ledgerId:entryId:partition`: read from that message on, on the partition it names (other partitions from their start), every time the table is read.",
    },
    OptionSpec {
        key: "source.start.publish-time",
        kind: OptionKind::Integer,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "Start at the first message published at or after this time (milliseconds since the epoch).",
    },
    OptionSpec {
        key: "source.stop.at-message-id",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "Makes the table bounded: stop before this message id, or at `latest` (each partition's last message when the query starts, included). `never` keeps it unbounded.",
    },
    OptionSpec {
        key: "source.stop.after-message-id",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "Makes the table bounded: stop after this message id (it is read), or after `latest`.",
    },
    OptionSpec {
        key: "source.stop.at-publish-time",
        kind: OptionKind::Integer,
        default: None,
        required: false,
        scope: OptionScope::Source,
        description: "Makes the table bounded: stop before the first message published at or after this time (milliseconds since the epoch).",
    },
    OptionSpec {
        key: "sink.topic-routing-mode",
        kind: OptionKind::OneOf(&["round-robin", "message-key-hash"]),
        default: Some("round-robin"),
        required: false,
        scope: OptionScope::Sink,
        description: "Partition choice for a partitioned sink topic: round robin, or by the hash of the message key (`Murmur3_32Hash`).",
    },
    OptionSpec {
        key: "sink.delivery-guarantee",
        kind: OptionKind::OneOf(&["none", "at-least-once", "exactly-once"]),
        default: Some("exactly-once"),
        required: false,
        scope: OptionScope::Sink,
        description: "`exactly-once`: in a checkpointed job, results re-emitted after a restart are dropped if the crashed run wrote them (see *Checkpoints and exactly-once*); without checkpoints it is at-least-once. `at-least-once`: input is acknowledged only after the broker confirmed the output. `none`: same as at-least-once.",
    },
    OptionSpec {
        key: "pulsar.source.partitionDiscoveryIntervalMs",
        kind: OptionKind::Integer,
        default: Some("300000"),
        required: false,
        scope: OptionScope::Source,
        description: "How often a continuous read of a topic pattern lists the namespace again, in milliseconds (Flink's key and default); topics that match since join the running query or job, read from the table's start position. Zero or less: never.",
    },
    OptionSpec {
        key: "sink.message-delay-interval",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Sink,
        description: "Delayed delivery (Flink's key): each written message carries `deliverAtTime` = the time it is sent plus this interval (`10 s`, `5 min`), and Shared subscriptions receive it then. Such messages are sent unbatched, as Pulsar's Java client sends them.",
    },
    WATERMARK_EMIT,
    IDLE_TIMEOUT,
    SCAN_PARALLELISM,
];

/// How a sink turns `key.fields` into the message key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// The one key field's value as text.
    Raw,
    /// A JSON object of the key fields.
    Json,
}

/// A sink's delivery promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryGuarantee {
    /// No promise.
    None,
    /// Every result is written at least once.
    AtLeastOnce,
    /// Every result is written once, also after a crash (in checkpointed jobs).
    ExactlyOnce,
}

/// Validated options of a Pulsar table.
#[derive(Clone, Debug)]
pub struct PulsarTableOptions {
    /// Topics read (a sink writes to the only one).
    pub topics: Vec<TopicName>,
    /// Topic patterns read: every matching topic when a read starts.
    pub topic_patterns: Vec<TopicPattern>,
    /// `service-url`, if given.
    pub service_url: Option<String>,
    /// `admin-url`, if given.
    pub admin_url: Option<String>,
    /// `source.tiered-storage.url`, if given: where offloaded ledgers are read from.
    pub tiered_storage_url: Option<String>,
    /// Value format.
    pub format: ValueFormat,
    /// Watermark emission.
    pub emit: EmitStrategy,
    /// Idle timeout of a partition.
    pub idle_timeout: Option<Duration>,
    /// Most source instances (`scan.parallelism`).
    pub scan_parallelism: Option<usize>,
    /// Durable subscription name.
    pub subscription_name: Option<String>,
    /// Subscription type.
    pub subscription_type: SubscriptionType,
    /// Start position.
    pub start: StartPosition,
    /// Stop position.
    pub stop: StopPosition,
    /// Key columns of written messages.
    pub key_fields: Vec<String>,
    /// How key columns become the key.
    pub key_format: KeyFormat,
    /// Partition routing of written messages.
    pub routing: RoutingMode,
    /// Delivery promise of the sink.
    pub delivery_guarantee: DeliveryGuarantee,
    /// Where undecodable messages go.
    pub dead_letter_topic: Option<TopicName>,
    /// The `protobuf` format's message type.
    pub protobuf: Option<ProtobufMessage>,
    /// TLS, credentials and timeouts (`pulsar.client.*`).
    pub client: PulsarClientOptions,
    /// `sink.message-delay-interval`: written messages are delivered this much later.
    pub message_delay: Option<Duration>,
    /// How often a continuous read of a topic pattern looks for new topics (`None`: never).
    pub partition_discovery: Option<Duration>,
}

/// The message type of the `protobuf` format, from its descriptor file.
#[derive(Clone, Debug)]
pub struct ProtobufMessage {
    /// The descriptor file, as given.
    pub descriptor_file: String,
    /// The message.
    pub descriptor: magnetar_connectors::format::MessageDescriptor,
}

fn parse_message_id(options: &ValidatedOptions<'_>, key: &str, value: &str) -> Result<MessageId> {
    value.parse::<MessageId>().map_err(|e| {
        options.invalid(
            key,
            format!("{e}; use earliest, latest or ledgerId:entryId:partition"),
        )
    })
}

impl PulsarTableOptions {
    /// Validates the `WITH` entries of table `table`.
    pub fn parse(
        table: &str,
        entries: &[OptionEntry],
        table_location: Option<Location>,
    ) -> Result<Self> {
        let o = ValidatedOptions::new_with_foreign(
            "pulsar",
            table,
            PULSAR_OPTIONS,
            FLINK_KEYS_NOT_USED,
            entries,
            table_location,
        )?;
        let client = PulsarClientOptions::parse(&o)?;

        let mut topics = Vec::new();
        let mut topic_patterns = Vec::new();
        for key in ["topics", "topic-pattern"] {
            for text in o
                .get(key)
                .unwrap_or_default()
                .split(';')
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                if key == "topic-pattern" || TopicPattern::looks_like_pattern(text) {
                    topic_patterns.push(
                        TopicPattern::parse(text).map_err(|e| o.invalid(key, e.to_string()))?,
                    );
                } else {
                    topics.push(TopicName::parse(text).map_err(|e| o.invalid(key, e.to_string()))?);
                }
            }
        }
        if topics.is_empty() && topic_patterns.is_empty() {
            return Err(
                match o.entry("topics").or_else(|| o.entry("topic-pattern")) {
                    Some(e) => o.invalid(&e.key, "no topic given"),
                    None => SqlError::MissingOption {
                        table: table.to_string(),
                        key: "topics".into(),
                        what: "the topics to read or write; or 'topic-pattern' for reading".into(),
                        location: table_location,
                    },
                },
            );
        }

        let format = common::value_format(&o)?;
        let (emit, idle_timeout) = common::event_time(&o)?;
        let scan_parallelism = common::scan_parallelism(&o)?;

        let subscription_type = match o.get_choice("source.subscription-type") {
            Some("Shared") => SubscriptionType::Shared,
            Some("Failover") => SubscriptionType::Failover,
            Some("Key_Shared") => SubscriptionType::KeyShared,
            _ => SubscriptionType::Exclusive,
        };

        let start = match (
            o.entry("source.start.message-id"),
            o.entry("source.start.publish-time"),
        ) {
            (Some(_), Some(_)) => {
                return Err(o.invalid(
                    "source.start.publish-time",
                    "give either source.start.message-id or source.start.publish-time, not both",
                ));
            }
            (None, Some(t)) => {
                StartPosition::PublishTime(UnixMillis(parse_millis(&o, &t.key, &t.value)?))
            }
            (entry, None) => {
                let value = entry.map(|e| e.value.as_str()).unwrap_or("earliest");
                match value.to_ascii_lowercase().as_str() {
                    "earliest" => StartPosition::Earliest,
                    "latest" => StartPosition::Latest,
                    _ => StartPosition::MessageId {
                        id: parse_message_id(&o, "source.start.message-id", value)?,
                        inclusive: true,
                    },
                }
            }
        };

        let stops: Vec<&OptionEntry> = [
            "source.stop.at-message-id",
            "source.stop.after-message-id",
            "source.stop.at-publish-time",
        ]
        .iter()
        .filter_map(|k| o.entry(k))
        .collect();
        if stops.len() > 1 {
            return Err(o.invalid(
                &stops[1].key,
                format!("conflicts with '{}': give one stop option", stops[0].key),
            ));
        }
        let stop = match stops.first() {
            None => StopPosition::Never,
            Some(e) => match (e.key.as_str(), e.value.to_ascii_lowercase().as_str()) {
                (_, "never") if e.key != "source.stop.at-publish-time" => StopPosition::Never,
                ("source.stop.at-message-id" | "source.stop.after-message-id", "latest") => {
                    StopPosition::Latest
                }
                ("source.stop.at-message-id", _) => {
                    StopPosition::AtMessageId(parse_message_id(&o, &e.key, &e.value)?)
                }
                ("source.stop.after-message-id", _) => {
                    StopPosition::AfterMessageId(parse_message_id(&o, &e.key, &e.value)?)
                }
                _ => StopPosition::AtPublishTime(UnixMillis(parse_millis(&o, &e.key, &e.value)?)),
            },
        };

        let key_fields: Vec<String> = o
            .get("key.fields")
            .map(|v| {
                v.split(';')
                    .map(|f| f.trim().to_string())
                    .filter(|f| !f.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let key_format = match o.get_choice("key.format") {
            Some("json") => KeyFormat::Json,
            _ => KeyFormat::Raw,
        };
        if key_format == KeyFormat::Raw && key_fields.len() > 1 {
            return Err(o.invalid(
                "key.fields",
                "the raw key format takes one field; set 'key.format' = 'json' for several",
            ));
        }
        let routing = match o.get_choice("sink.topic-routing-mode") {
            Some("message-key-hash") => RoutingMode::MessageKeyHash,
            _ => RoutingMode::RoundRobin,
        };
        let delivery_guarantee = match o.get_choice("sink.delivery-guarantee") {
            Some("none") => DeliveryGuarantee::None,
            Some("at-least-once") => DeliveryGuarantee::AtLeastOnce,
            _ => DeliveryGuarantee::ExactlyOnce,
        };
        let protobuf = match (
            format.kind,
            o.get("protobuf.descriptor-file"),
            o.get("protobuf.message-name"),
        ) {
            (FormatKind::Protobuf, Some(file), Some(name)) => {
                let bytes = std::fs::read(file).map_err(|e| {
                    o.invalid("protobuf.descriptor-file", format!("cannot read it: {e}"))
                })?;
                let descriptor =
                    magnetar_connectors::format::message_in_descriptor_set(&bytes, name)
                        .map_err(|e| o.invalid("protobuf.message-name", e))?;
                Some(ProtobufMessage {
                    descriptor_file: file.to_string(),
                    descriptor,
                })
            }
            (FormatKind::Protobuf, None, _) => {
                return Err(o.invalid(
                    "format",
                    "the protobuf format needs 'protobuf.descriptor-file' (a FileDescriptorSet) and 'protobuf.message-name'",
                ));
            }
            (FormatKind::Protobuf, _, None) => {
                return Err(o.invalid(
                    "format",
                    "the protobuf format needs 'protobuf.message-name' (the message type, e.g. shop.Click)",
                ));
            }
            _ => None,
        };
        let tiered_storage_url = match o.get("source.tiered-storage.url") {
            None => None,
            Some(url) => {
                magnetar_connectors::object_url::object_store_for(url)
                    .map_err(|e| o.invalid("source.tiered-storage.url", e.to_string()))?;
                Some(url.to_string())
            }
        };
        let dead_letter_topic = match o.get("source.dead-letter-topic") {
            None => None,
            Some(name) => Some(
                TopicName::parse(name)
                    .map_err(|e| o.invalid("source.dead-letter-topic", e.to_string()))?,
            ),
        };

        let message_delay = match o.get("sink.message-delay-interval") {
            None => None,
            Some(text) => Some(
                common::parse_duration(text)
                    .map_err(|e| o.invalid("sink.message-delay-interval", e))?,
            )
            .filter(|d| !d.is_zero()),
        };

        let partition_discovery = match o.get("pulsar.source.partitionDiscoveryIntervalMs") {
            Some(text) => match text.trim().parse::<i64>() {
                Ok(ms) if ms <= 0 => None,
                Ok(ms) if ms as u64 > common::MAX_DURATION_MS => {
                    return Err(o.invalid(
                        "pulsar.source.partitionDiscoveryIntervalMs",
                        "out of range: at most 3650 days of milliseconds",
                    ));
                }
                Ok(ms) => Some(Duration::from_millis(ms as u64)),
                Err(_) => {
                    return Err(o.invalid(
                        "pulsar.source.partitionDiscoveryIntervalMs",
                        "expected milliseconds",
                    ));
                }
            },
            None => None,
        };

        Ok(Self {
            topics,
            topic_patterns,
            service_url: o.get("service-url").map(str::to_string),
            admin_url: o.get("admin-url").map(str::to_string),
            tiered_storage_url,
            format,
            emit,
            idle_timeout,
            scan_parallelism,
            subscription_name: o.get("source.subscription-name").map(str::to_string),
            subscription_type,
            start,
            stop,
            key_fields,
            key_format,
            routing,
            delivery_guarantee,
            dead_letter_topic,
            protobuf,
            client,
            message_delay,
            partition_discovery,
        })
    }

    /// Whether reads of this table end by themselves.
    pub fn is_bounded(&self) -> bool {
        self.stop.is_bounded()
    }
}

fn parse_millis(o: &ValidatedOptions<'_>, key: &str, value: &str) -> Result<u64> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| o.invalid(key, "expected milliseconds since the epoch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> Vec<OptionEntry> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| OptionEntry {
                key: k.to_string(),
                value: v.to_string(),
                key_location: Some(Location {
                    line: i as u64 + 1,
                    column: 3,
                }),
                value_location: Some(Location {
                    line: i as u64 + 1,
                    column: 20,
                }),
            })
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<PulsarTableOptions> {
        PulsarTableOptions::parse("t", &entries(pairs), None)
    }

    #[test]
    fn accepts_a_flink_ddl() {
        let o = parse(&[
            ("connector", "pulsar"),
            ("topics", "persistent://public/default/a;b"),
            ("service-url", "pulsar://localhost:6650"),
            ("format", "json"),
            ("source.subscription-name", "s"),
            ("source.subscription-type", "key_shared"),
            ("source.start.message-id", "1:2:-1"),
            ("source.stop.at-message-id", "latest"),
        ])
        .expect("valid");
        assert_eq!(o.topics.len(), 2);
        assert_eq!(o.topics[1].to_string(), "persistent://public/default/b");
        assert_eq!(o.subscription_type, SubscriptionType::KeyShared);
        assert_eq!(
            o.start,
            StartPosition::MessageId {
                id: MessageId::new(1, 2, -1),
                inclusive: true
            }
        );
        assert_eq!(o.stop, StopPosition::Latest);
        assert!(o.is_bounded());
    }

    #[test]
    fn unknown_keys_name_the_nearest_valid_one_and_its_place() {
        let err = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("source.subscription-nam", "s"),
        ])
        .expect_err("typo");
        match &err {
            SqlError::UnknownOption {
                key,
                suggestion,
                location,
                ..
            } => {
                assert_eq!(key, "source.subscription-nam");
                assert_eq!(suggestion.as_deref(), Some("source.subscription-name"));
                assert_eq!(location.map(|l| l.line), Some(3));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            err.to_string()
                .contains("did you mean 'source.subscription-name'")
        );
    }

    #[test]
    fn bad_values_are_explained() {
        let err = parse(&[("connector", "pulsar"), ("topics", "a"), ("format", "jsn")])
            .expect_err("bad format");
        assert!(err.to_string().contains("did you mean 'json'"), "{err}");
        let err = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("source.start.message-id", "1:x:0"),
        ])
        .expect_err("bad id");
        assert!(
            err.to_string().contains("ledgerId:entryId:partition"),
            "{err}"
        );
        assert_eq!(err.location().map(|l| l.column), Some(20));
        let err = parse(&[("connector", "kafka"), ("topics", "a")]).expect_err("connector");
        assert!(err.to_string().contains("expected one of pulsar"), "{err}");
        let err = parse(&[("connector", "pulsar")]).expect_err("no topics");
        assert!(matches!(err, SqlError::MissingOption { .. }), "{err:?}");
        let err = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("source.stop.at-message-id", "latest"),
            ("source.stop.at-publish-time", "5"),
        ])
        .expect_err("two stops");
        assert!(err.to_string().contains("give one stop option"), "{err}");
    }

    #[test]
    fn defaults_are_unbounded_exclusive_earliest_json() {
        let o = parse(&[("connector", "pulsar"), ("topics", "a")]).expect("valid");
        assert_eq!(o.format.kind, magnetar_connectors::format::FormatKind::Json);
        assert_eq!(o.subscription_type, SubscriptionType::Exclusive);
        assert_eq!(o.start, StartPosition::Earliest);
        assert_eq!(o.stop, StopPosition::Never);
        assert!(!o.format.ignore_parse_errors);
    }

    #[test]
    fn regex_topics_are_patterns_and_literal_ones_names() {
        let o = parse(&[
            ("connector", "pulsar"),
            ("topics", "persistent://public/default/click-.*;views"),
        ])
        .expect("valid");
        assert_eq!(o.topics.len(), 1);
        assert_eq!(
            o.topic_patterns[0].to_string(),
            "persistent://public/default/click-.*"
        );
        let o = parse(&[("connector", "pulsar"), ("topic-pattern", "t1/ns/a.b")]).expect("valid");
        assert!(o.topics.is_empty());
        assert_eq!(o.topic_patterns[0].namespace(), "t1/ns");
        let err = parse(&[("connector", "pulsar"), ("topic-pattern", "a(")]).expect_err("bad");
        assert!(err.to_string().contains("regular expression"), "{err}");
        let err = parse(&[("connector", "pulsar")]).expect_err("none");
        assert!(err.to_string().contains("topic-pattern"), "{err}");
    }

    #[test]
    fn flink_client_keys_are_honoured_or_refused_by_name() {
        let o = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("pulsar.client.tlsTrustCertsFilePath", "/ca.pem"),
            ("pulsar.client.tlsHostnameVerificationEnable", "false"),
            (
                "pulsar.client.authPluginClassName",
                "org.apache.pulsar.client.impl.auth.AuthenticationToken",
            ),
            ("pulsar.client.authParams", "token:abc.def"),
            ("pulsar.client.operationTimeoutMs", "5000"),
        ])
        .expect("valid");
        let security = &o.client.security;
        assert_eq!(
            security.tls.trust_certs_file.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        assert!(!security.tls.hostname_verification);
        assert_eq!(
            security.auth,
            Some(magnetar_connectors::pulsar::Authentication::Token(
                "abc.def".into()
            ))
        );
        assert_eq!(o.client.operation_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.client.batch_messages, 1000);
        let tuned = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("pulsar.consumer.receiverQueueSize", "50"),
            ("pulsar.producer.batchingEnabled", "false"),
        ])
        .expect("valid");
        assert_eq!(tuned.client.receiver_queue_size, Some(50));
        assert_eq!(tuned.client.batch_messages, 1);
        let err = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("pulsar.producer.batchingMaxMessages", "0"),
        ])
        .expect_err("no zero batches");
        assert!(err.to_string().contains("from 1 to"), "{err}");
        let from_file = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("pulsar.client.authPluginClassName", "token"),
            ("pulsar.client.authParams", "file:///etc/token"),
        ])
        .expect("valid");
        assert_eq!(
            from_file.client.security.auth,
            Some(magnetar_connectors::pulsar::Authentication::TokenFile(
                "/etc/token".into()
            ))
        );
        let err = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("pulsar.consumer.ackTimeoutMillis", "10"),
        ])
        .expect_err("not used");
        assert!(matches!(err, SqlError::UnusedOption { .. }), "{err:?}");
        assert!(err.to_string().contains("does not use"), "{err}");
        let err = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            (
                "pulsar.client.authPluginClassName",
                "org.apache.pulsar.client.impl.auth.oauth2.AuthenticationOAuth2",
            ),
            (
                "pulsar.client.authParams",
                "{\"privateKey\": \"data:s3cr3t\"}",
            ),
        ])
        .expect_err("oauth2 without an issuer");
        assert!(err.to_string().contains("issuerUrl"), "{err}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        let o = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("pulsar.client.authPluginClassName", "oauth2"),
            (
                "pulsar.client.authParams",
                "{\"issuerUrl\": \"https://auth\", \"privateKey\": \"file:///creds.json\", \"audience\": \"urn:pulsar\"}",
            ),
        ])
        .expect("oauth2");
        match &o.client.security.auth {
            Some(magnetar_connectors::pulsar::Authentication::OAuth2(settings)) => {
                assert_eq!(settings.issuer_url, "https://auth");
                assert_eq!(settings.audience.as_deref(), Some("urn:pulsar"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn secret_values_never_appear_in_errors() {
        let err = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("pulsar.client.authParams", "token:s3cr3t"),
        ])
        .expect_err("params without a plugin");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert!(err.to_string().contains("******"), "{err}");
        let err = parse(&[
            ("connector", "pulsar"),
            ("topics", "a"),
            ("pulsar.client.authPluginClassName", "token"),
            ("pulsar.client.authParamMap", "tokn:s3cr3t"),
        ])
        .expect_err("no token in the map");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
