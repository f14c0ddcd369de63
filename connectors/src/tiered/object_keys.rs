//! Where offloaded ledgers sit in a bucket, and which managed ledger a topic is
//! (storage formats §1.1 and §5.1).

use crate::pulsar::TopicName;

/// Suffix of an index object's key.
const INDEX_SUFFIX: &str = "-index";
/// What separates the offload UUID from the ledger id in a key.
const LEDGER_INFIX: &str = "-ledger-";

/// Key of the data object of `ledger_id` offloaded under `uuid`: `{uuid}-ledger-{id}`.
pub fn data_object_key(uuid: &str, ledger_id: u64) -> String {
    format!("{uuid}{LEDGER_INFIX}{ledger_id}")
}

/// Key of the index object: `{uuid}-ledger-{id}-index`.
pub fn index_object_key(uuid: &str, ledger_id: u64) -> String {
    format!("{}{INDEX_SUFFIX}", data_object_key(uuid, ledger_id))
}

/// The UUID and ledger id of an index object's key (`None` for any other key).
pub fn parse_index_key(key: &str) -> Option<(String, u64)> {
    let stem = key.strip_suffix(INDEX_SUFFIX)?;
    let (uuid, ledger) = stem.rsplit_once(LEDGER_INFIX)?;
    let ledger_id = ledger.parse().ok()?;
    uuid::Uuid::parse_str(uuid).ok()?;
    Some((uuid.to_string(), ledger_id))
}

/// The managed-ledger name of a persistent topic (or partition):
/// `tenant/ns/persistent/{local name, form-encoded as Java's URLEncoder does}`.
pub fn managed_ledger_name(topic: &TopicName) -> String {
    let (tenant, namespace) = topic.tenant_and_namespace();
    // application/x-www-form-urlencoded keeps `*-._` and alphanumerics, space becomes `+`:
    // the same set as java.net.URLEncoder.
    let local: String =
        url::form_urlencoded::byte_serialize(topic.local_name().as_bytes()).collect();
    format!("{tenant}/{namespace}/persistent/{local}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let uuid = "3f1c0b2a-1111-4222-8333-444455556666";
        assert_eq!(data_object_key(uuid, 12345), format!("{uuid}-ledger-12345"));
        let index = index_object_key(uuid, 12345);
        assert_eq!(parse_index_key(&index), Some((uuid.to_string(), 12345)));
        assert_eq!(parse_index_key(&data_object_key(uuid, 1)), None);
        assert_eq!(parse_index_key("notauuid-ledger-1-index"), None);
        assert_eq!(parse_index_key(&format!("{uuid}-ledger-x-index")), None);
    }

    #[test]
    fn managed_ledger_names_encode_like_java() {
        let t = TopicName::parse("persistent://public/default/read-test").expect("topic");
        assert_eq!(
            managed_ledger_name(&t),
            "public/default/persistent/read-test"
        );
        let t = TopicName::parse("persistent://acme/prod/a b:c~d*e.f_g").expect("topic");
        assert_eq!(
            managed_ledger_name(&t),
            "acme/prod/persistent/a+b%3Ac%7Ed*e.f_g"
        );
        let t = TopicName::parse("clicks").expect("topic").partition(3);
        assert_eq!(
            managed_ledger_name(&t),
            "public/default/persistent/clicks-partition-3"
        );
    }
}
