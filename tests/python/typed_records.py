"""Record classes the typed-schema tests share (official client's pulsar.schema API)."""
from pulsar.schema import Boolean, Double, Long, Record, String


class Click(Record):
    user_id = String(required=True)
    url = String()
    dwell_ms = Long()
    country = String()
    premium = Boolean()
    score = Double()


class ClickKey(Record):
    user_id = String(required=True)
    region = String()


class Alert(Record):
    user_id = String(required=True)
    clicks = Long(required=True)
    total_dwell = Long()
