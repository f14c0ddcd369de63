//! Frame codec for the Pulsar binary protocol, consumer side.
//!
//! pulsar-rs 6.9.1's decoder requires the `0x0e01` + CRC32C prefix on every MESSAGE frame,
//! although the protocol makes it optional and pulsar-lite omits it; a stock pulsar-rs
//! consumer therefore reads nothing from pulsar-lite. This decoder accepts both forms and
//! leaves the checksum check to [`super::entry::parse_entry`], which verifies it when present.
//! Outgoing frames are encoded by pulsar-rs's own [`pulsar::message::Codec`].

use bytes::{Buf, Bytes, BytesMut};
use prost::Message as _;
use pulsar::proto::BaseCommand;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::ConnectorError;

/// Largest frame we accept; Pulsar's default is 5 MiB plus headers.
const MAX_FRAME_SIZE: usize = 64 << 20;

/// A decoded frame: the command and, for MESSAGE frames, the raw headers-and-payload bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The command.
    pub command: BaseCommand,
    /// Everything after the command, unparsed (`None` for simple commands).
    pub payload: Option<Bytes>,
}

/// Codec for [`Frame`]s in, pulsar-rs [`pulsar::message::Message`]s out.
#[derive(Debug, Default)]
pub struct FrameCodec;

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = ConnectorError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ConnectorError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let total = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if total > MAX_FRAME_SIZE {
            return Err(ConnectorError::Frame(format!(
                "frame of {total} bytes exceeds the {MAX_FRAME_SIZE}-byte limit"
            )));
        }
        if src.len() < 4 + total {
            src.reserve(4 + total - src.len());
            return Ok(None);
        }
        src.advance(4);
        let mut frame = src.split_to(total).freeze();
        if frame.len() < 4 {
            return Err(ConnectorError::Frame(
                "frame shorter than its command size".into(),
            ));
        }
        let command_size = frame.get_u32() as usize;
        if command_size > frame.len() {
            return Err(ConnectorError::Frame(format!(
                "command of {command_size} bytes overruns the {}-byte frame",
                frame.len()
            )));
        }
        let command = BaseCommand::decode(frame.split_to(command_size))
            .map_err(|e| ConnectorError::Frame(format!("command: {e}")))?;
        let payload = (!frame.is_empty()).then_some(frame);
        Ok(Some(Frame { command, payload }))
    }
}

impl Encoder<pulsar::message::Message> for FrameCodec {
    type Error = ConnectorError;

    fn encode(
        &mut self,
        item: pulsar::message::Message,
        dst: &mut BytesMut,
    ) -> Result<(), ConnectorError> {
        pulsar::message::Codec
            .encode(item, dst)
            .map_err(|e| ConnectorError::Frame(format!("encoding a command: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use pulsar::proto::{CommandPing, base_command::Type};

    fn ping() -> BaseCommand {
        BaseCommand {
            r#type: Type::Ping as i32,
            ping: Some(CommandPing {}),
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_a_simple_command_split_across_reads() {
        let mut buf = BytesMut::new();
        FrameCodec
            .encode(
                pulsar::message::Message {
                    command: ping(),
                    payload: None,
                },
                &mut buf,
            )
            .expect("encode");
        let bytes = buf.split().freeze();
        let mut partial = BytesMut::from(&bytes[..3]);
        assert!(FrameCodec.decode(&mut partial).expect("ok").is_none());
        partial.extend_from_slice(&bytes[3..]);
        let frame = FrameCodec.decode(&mut partial).expect("ok").expect("frame");
        assert_eq!(frame.command.r#type, Type::Ping as i32);
        assert!(frame.payload.is_none());
        assert!(partial.is_empty());
    }

    #[test]
    fn keeps_a_payload_without_checksum() {
        let cmd = ping();
        let mut body = Vec::new();
        body.put_u32(cmd.encoded_len() as u32);
        cmd.encode(&mut body).expect("encode");
        body.extend_from_slice(b"\x00\x00\x00\x00rest");
        let mut buf = BytesMut::new();
        buf.put_u32(body.len() as u32);
        buf.extend_from_slice(&body);
        let frame = FrameCodec.decode(&mut buf).expect("ok").expect("frame");
        assert_eq!(frame.payload.as_deref(), Some(&b"\x00\x00\x00\x00rest"[..]));
    }

    #[test]
    fn rejects_oversized_and_inconsistent_frames() {
        let mut huge = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(FrameCodec.decode(&mut huge).is_err());
        let mut bad = BytesMut::new();
        bad.put_u32(8);
        bad.put_u32(100);
        bad.put_u32(0);
        assert!(FrameCodec.decode(&mut bad).is_err());
    }
}
