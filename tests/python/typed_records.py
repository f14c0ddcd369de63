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


def protobuf_click():
    """The message class of shop.Click, built from a descriptor (no protoc needed):

    enum Device { DEVICE_UNKNOWN = 0; MOBILE = 1; DESKTOP = 2; }
    message Referrer { string host = 1; string path = 2; }
    message Click { string user_id = 1; int64 dwell_ms = 2; bool premium = 3; double score = 4;
      Device device = 5; Referrer referrer = 6; repeated string tags = 7;
      google.protobuf.Timestamp ts = 8; optional string country = 9; }
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2  # noqa: F401
    F = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.Default()
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Click"))
    except KeyError:
        pass
    fdp = descriptor_pb2.FileDescriptorProto(name="shop/click.proto", package="shop", syntax="proto3")
    fdp.dependency.append("google/protobuf/timestamp.proto")
    device = fdp.enum_type.add(name="Device")
    for i, name in enumerate(["DEVICE_UNKNOWN", "MOBILE", "DESKTOP"]):
        device.value.add(name=name, number=i)
    referrer = fdp.message_type.add(name="Referrer")
    referrer.field.add(name="host", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    referrer.field.add(name="path", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    click = fdp.message_type.add(name="Click")
    click.field.add(name="user_id", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    click.field.add(name="dwell_ms", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    click.field.add(name="premium", number=3, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    click.field.add(name="score", number=4, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    click.field.add(name="device", number=5, type=F.TYPE_ENUM, type_name=".shop.Device", label=F.LABEL_OPTIONAL)
    click.field.add(name="referrer", number=6, type=F.TYPE_MESSAGE, type_name=".shop.Referrer", label=F.LABEL_OPTIONAL)
    click.field.add(name="tags", number=7, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    click.field.add(name="ts", number=8, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp", label=F.LABEL_OPTIONAL)
    click.oneof_decl.add(name="_country")
    click.field.add(name="country", number=9, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL,
                    proto3_optional=True, oneof_index=0)
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Click"))
