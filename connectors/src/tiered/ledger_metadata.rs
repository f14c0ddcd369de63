//! BookKeeper's `LedgerMetadataFormat` (`DataFormats.proto`), as embedded in an offload
//! index object (storage formats §3.2). Field numbers are BookKeeper's; enums are kept as
//! integers so that a value this code does not know still decodes.

/// The ledger's metadata at offload time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LedgerMetadataFormat {
    /// Write quorum.
    #[prost(int32, required, tag = "1")]
    pub quorum_size: i32,
    /// Ensemble size.
    #[prost(int32, required, tag = "2")]
    pub ensemble_size: i32,
    /// Sum of the entries' payload bytes.
    #[prost(int64, required, tag = "3")]
    pub length: i64,
    /// Id of the last entry (entries are `0..=last_entry_id`).
    #[prost(int64, optional, tag = "4")]
    pub last_entry_id: Option<i64>,
    /// OPEN=1, IN_RECOVERY=2, CLOSED=3.
    #[prost(int32, required, tag = "5")]
    pub state: i32,
    /// Ensembles.
    #[prost(message, repeated, tag = "6")]
    pub segment: Vec<Segment>,
    /// CRC32=1, HMAC=2, CRC32C=3, DUMMY=4.
    #[prost(int32, optional, tag = "7")]
    pub digest_type: Option<i32>,
    /// Not written by Pulsar.
    #[prost(bytes = "vec", optional, tag = "8")]
    pub password: Option<Vec<u8>>,
    /// Ack quorum.
    #[prost(int32, optional, tag = "9")]
    pub ack_quorum_size: Option<i32>,
    /// Ledger creation time, ms since the epoch.
    #[prost(int64, optional, tag = "10")]
    pub ctime: Option<i64>,
    /// Custom metadata; Pulsar writes `pulsar/managed-ledger` here.
    #[prost(message, repeated, tag = "11")]
    pub custom_metadata: Vec<CustomMetadata>,
}

/// One ensemble of a ledger.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Segment {
    /// Bookies, `host:port`.
    #[prost(string, repeated, tag = "1")]
    pub ensemble_member: Vec<String>,
    /// First entry written to this ensemble.
    #[prost(int64, required, tag = "2")]
    pub first_entry_id: i64,
}

/// A key/value pair of custom ledger metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CustomMetadata {
    /// Key.
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// Value bytes.
    #[prost(bytes = "vec", required, tag = "2")]
    pub value: Vec<u8>,
}

/// The `customMetadata` key naming the managed ledger (the topic) a ledger belongs to.
pub const MANAGED_LEDGER_KEY: &str = "pulsar/managed-ledger";

/// `state` of a closed ledger.
pub const LEDGER_STATE_CLOSED: i32 = 3;

impl LedgerMetadataFormat {
    /// The managed-ledger name recorded in the custom metadata, if any.
    pub fn managed_ledger_name(&self) -> Option<String> {
        self.custom_metadata
            .iter()
            .find(|m| m.key == MANAGED_LEDGER_KEY)
            .map(|m| String::from_utf8_lossy(&m.value).into_owned())
    }
}
