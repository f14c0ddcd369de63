//! Pulsar's KEY_VALUE schema: a key and a value, each with its own schema, read into key
//! columns and value columns side by side. INLINE puts both in the payload
//! (`[int32 keyLen][key][int32 valueLen][value]`, −1 for null); SEPARATED sends the value as
//! the payload and the key as the message key (base64 when `partition_key_b64_encoded`).

use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::take;
use arrow_schema::{Field, Schema, SchemaRef};
use base64::Engine as _;
use bytes::Bytes;

use super::{DecodedRows, PayloadDecoder};
use crate::error::Result;
use crate::pulsar::ReceivedMessage;
use crate::schema::KeyValueEncoding;

/// Decodes KEY_VALUE messages with one decoder for keys and one for values.
pub struct KeyValueDecoder {
    encoding: KeyValueEncoding,
    key: Box<dyn PayloadDecoder>,
    value: Box<dyn PayloadDecoder>,
    /// Names of the key columns (renamed where a value column has the same name).
    key_names: Vec<String>,
    schema: SchemaRef,
}

impl std::fmt::Debug for KeyValueDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyValueDecoder")
            .field("encoding", &self.encoding)
            .finish()
    }
}

impl KeyValueDecoder {
    /// A decoder producing the key decoder's columns (named `key_names`), then the value
    /// decoder's columns.
    pub fn new(
        encoding: KeyValueEncoding,
        key: Box<dyn PayloadDecoder>,
        value: Box<dyn PayloadDecoder>,
        key_names: Vec<String>,
    ) -> Self {
        let fields: Vec<Field> = key
            .schema()
            .fields()
            .iter()
            .zip(&key_names)
            .map(|(f, name)| f.as_ref().clone().with_name(name))
            .chain(value.schema().fields().iter().map(|f| f.as_ref().clone()))
            .collect();
        KeyValueDecoder {
            encoding,
            key,
            value,
            key_names,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    /// Key bytes and value bytes of one message (`None` for a null side).
    fn split(
        &self,
        m: &ReceivedMessage,
    ) -> std::result::Result<(Option<Bytes>, Option<Bytes>), String> {
        match self.encoding {
            KeyValueEncoding::Separated => {
                let key = match &m.key {
                    None => None,
                    Some(k) if m.key_is_base64 => Some(Bytes::from(
                        base64::engine::general_purpose::STANDARD
                            .decode(k)
                            .map_err(|e| format!("the message key is not base64: {e}"))?,
                    )),
                    Some(k) => Some(Bytes::copy_from_slice(k.as_bytes())),
                };
                let value = (!m.null_value).then(|| m.payload.clone());
                Ok((key, value))
            }
            KeyValueEncoding::Inline => {
                let p = &m.payload;
                let mut at = 0usize;
                let mut part = |side: &str| -> std::result::Result<Option<Bytes>, String> {
                    let len_bytes: [u8; 4] = p
                        .get(at..at + 4)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| {
                            format!("truncated before the {side} length at byte {at}")
                        })?;
                    at += 4;
                    let len = i32::from_be_bytes(len_bytes);
                    if len < 0 {
                        return Ok(None);
                    }
                    let end = at + len as usize;
                    if end > p.len() {
                        return Err(format!(
                            "the {side} is {len} bytes but only {} remain",
                            p.len() - at
                        ));
                    }
                    let slice = p.slice(at..end);
                    at = end;
                    Ok(Some(slice))
                };
                let key = part("key")?;
                let value = part("value")?;
                if at != p.len() {
                    return Err(format!("{} bytes follow the value", p.len() - at));
                }
                Ok((key, value))
            }
        }
    }
}

/// A message carrying one side's bytes, at the same place (for error reports) and nothing
/// else: no version (it describes the whole KEY_VALUE schema, not the side), no properties.
fn side(m: &ReceivedMessage, bytes: Option<Bytes>) -> ReceivedMessage {
    let null_value = bytes.is_none();
    let mut side = ReceivedMessage::local(
        m.id,
        m.topic.clone(),
        m.producer_name.clone(),
        bytes.unwrap_or_default(),
    );
    side.null_value = null_value;
    side
}

impl PayloadDecoder for KeyValueDecoder {
    fn decode(&mut self, messages: &[ReceivedMessage]) -> Result<DecodedRows> {
        let mut errors = Vec::new();
        let mut split_ok = Vec::with_capacity(messages.len());
        let mut keys = Vec::with_capacity(messages.len());
        let mut values = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            match self.split(m) {
                Ok((k, v)) => {
                    split_ok.push(i);
                    keys.push(side(m, k));
                    values.push(side(m, v));
                }
                Err(reason) => errors.push((i, format!("not a KEY_VALUE payload: {reason}"))),
            }
        }
        let key_rows = self.key.decode(&keys)?;
        let value_rows = self.value.decode(&values)?;
        // Row of each side's batch for each split message, when that side decoded.
        let mut key_at = vec![None; split_ok.len()];
        for (row, &p) in key_rows.rows.iter().enumerate() {
            key_at[p] = Some(row as u32);
        }
        let mut value_at = vec![None; split_ok.len()];
        for (row, &p) in value_rows.rows.iter().enumerate() {
            value_at[p] = Some(row as u32);
        }
        for (p, reason) in &key_rows.errors {
            errors.push((split_ok[*p], format!("key: {reason}")));
        }
        for (p, reason) in &value_rows.errors {
            if key_at[*p].is_some() {
                errors.push((split_ok[*p], format!("value: {reason}")));
            }
        }
        let mut rows = Vec::with_capacity(split_ok.len());
        let mut key_take = Vec::with_capacity(split_ok.len());
        let mut value_take = Vec::with_capacity(split_ok.len());
        for (p, &i) in split_ok.iter().enumerate() {
            if let (Some(k), Some(v)) = (key_at[p], value_at[p]) {
                rows.push(i);
                key_take.push(k);
                value_take.push(v);
            }
        }
        errors.sort_by_key(|(i, _)| *i);
        let key_take = UInt32Array::from(key_take);
        let value_take = UInt32Array::from(value_take);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for c in key_rows.batch.columns() {
            columns.push(take(c, &key_take, None)?);
        }
        for c in value_rows.batch.columns() {
            columns.push(take(c, &value_take, None)?);
        }
        let fields: Vec<Field> = key_rows
            .batch
            .schema()
            .fields()
            .iter()
            .zip(&self.key_names)
            .map(|(f, name)| f.as_ref().clone().with_name(name))
            .chain(
                value_rows
                    .batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone()),
            )
            .collect();
        DecodedRows::from_columns(Arc::new(Schema::new(fields)), columns, rows, errors)
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    use super::*;
    use crate::format::PrimitiveDecoder;
    use crate::message_id::MessageId;
    use crate::schema::SchemaKind;

    fn inline(key: Option<&[u8]>, value: Option<&[u8]>) -> Bytes {
        let mut out = Vec::new();
        for side in [key, value] {
            match side {
                Some(b) => {
                    out.extend((b.len() as i32).to_be_bytes());
                    out.extend(b);
                }
                None => out.extend((-1i32).to_be_bytes()),
            }
        }
        Bytes::from(out)
    }

    fn message(i: u64, payload: Bytes) -> ReceivedMessage {
        ReceivedMessage::local(
            MessageId::new(1, i, -1),
            Arc::from("t"),
            Arc::from("p"),
            payload,
        )
    }

    fn decoder(encoding: KeyValueEncoding) -> KeyValueDecoder {
        KeyValueDecoder::new(
            encoding,
            Box::new(PrimitiveDecoder::new(SchemaKind::String, "key").expect("string")),
            Box::new(PrimitiveDecoder::new(SchemaKind::Int64, "value").expect("int64")),
            vec!["key".into()],
        )
    }

    #[test]
    fn inline_payloads_split_into_key_and_value_columns() {
        let mut d = decoder(KeyValueEncoding::Inline);
        let messages = vec![
            message(0, inline(Some(b"ann"), Some(&7i64.to_be_bytes()))),
            message(1, inline(Some(b"bob"), Some(&[1, 2]))),
            message(2, Bytes::from_static(&[0, 0, 0, 9, b'x'])),
            message(3, inline(None, Some(&9i64.to_be_bytes()))),
        ];
        let rows = d.decode(&messages).expect("decode");
        assert_eq!(rows.rows, vec![0, 3]);
        let keys: Vec<Option<&str>> = rows.batch.column(0).as_string::<i32>().iter().collect();
        assert_eq!(keys, [Some("ann"), None]);
        let values = rows.batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(values.values().to_vec(), vec![7, 9]);
        assert_eq!(rows.errors.len(), 2);
        assert_eq!(rows.errors[0].0, 1);
        assert!(rows.errors[0].1.starts_with("value:"), "{:?}", rows.errors);
        assert_eq!(rows.errors[1].0, 2);
        assert!(
            rows.errors[1].1.contains("only 1 remain"),
            "{:?}",
            rows.errors
        );
    }

    #[test]
    fn separated_keys_come_from_the_message_key() {
        let mut d = decoder(KeyValueEncoding::Separated);
        let mut plain = message(0, Bytes::copy_from_slice(&5i64.to_be_bytes()));
        plain.key = Some("ann".into());
        let mut encoded = message(1, Bytes::copy_from_slice(&6i64.to_be_bytes()));
        encoded.key = Some(base64::engine::general_purpose::STANDARD.encode("bob"));
        encoded.key_is_base64 = true;
        let rows = d.decode(&[plain, encoded]).expect("decode");
        let keys: Vec<&str> = rows
            .batch
            .column(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(keys, ["ann", "bob"]);
    }
}
