//! Table definitions: what `CREATE TABLE` declared, validated and typed.

mod metadata;
mod provider;
mod show_create;
mod view;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use magnetar_connectors::format::FormatKind;
use magnetar_connectors::schema::{SchemaInfo, columns_of};

pub use metadata::MetadataKey;
pub use provider::{MagnetarTable, ScanFactory};
pub use view::ViewDef;

use crate::error::{Result, SqlError};
use crate::options::{Connector, CustomConnectors, PulsarTableOptions, ValueFormat};
use crate::statement::{ColumnKind, CreateTable, OptionEntry};

/// Where a column's values come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnSource {
    /// The message value, through the format.
    Payload,
    /// Pulsar metadata of the message.
    Metadata {
        /// Which metadata.
        key: MetadataKey,
        /// Read-only (`VIRTUAL`).
        is_virtual: bool,
    },
}

/// Whether a registry field of type `from` can be read into a declared column of type `to`:
/// the same kind of value (numbers as numbers, text as text, times as times...), so that a
/// declaration that disagrees with the schema is an error, not a column of NULLs or garbage.
fn readable_as(from: &DataType, to: &DataType) -> bool {
    fn text(t: &DataType) -> bool {
        matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
    }
    fn binary(t: &DataType) -> bool {
        matches!(
            t,
            DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
        )
    }
    from == to
        || widens(from, to)
        || (text(from) && text(to))
        || (binary(from) && binary(to))
        || (from.is_temporal() && to.is_temporal())
        || (matches!(
            from,
            DataType::Struct(_) | DataType::List(_) | DataType::Map(..)
        ) && std::mem::discriminant(from) == std::mem::discriminant(to))
}

/// Whether every value of number type `from` fits `to` (a cast never yields NULL).
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    /// Bits and signedness of an integer type.
    fn int(t: &DataType) -> Option<(u32, bool)> {
        Some(match t {
            Int8 => (8, true),
            Int16 => (16, true),
            Int32 => (32, true),
            Int64 => (64, true),
            UInt8 => (8, false),
            UInt16 => (16, false),
            UInt32 => (32, false),
            UInt64 => (64, false),
            _ => return None,
        })
    }
    /// Decimal digits an integer type needs.
    fn digits(bits: u32) -> i16 {
        match bits {
            8 => 3,
            16 => 5,
            32 => 10,
            _ => 20,
        }
    }
    let integer_digits = |t: &DataType| -> Option<i16> {
        match t {
            Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) | Decimal256(p, s) => {
                Some(*p as i16 - *s as i16)
            }
            _ => None,
        }
    };
    match (int(from), int(to)) {
        (Some((fb, fs)), Some((tb, ts))) => {
            return if fs == ts { tb >= fb } else { ts && tb > fb };
        }
        (Some((fb, _)), None) => {
            return match to {
                Float64 => true,
                Float32 => fb <= 16,
                _ => integer_digits(to).is_some_and(|d| d >= digits(fb)),
            };
        }
        _ => {}
    }
    match (from, to) {
        (Float32, Float64) => true,
        (Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..), Float64) => true,
        (
            Decimal32(_, fs) | Decimal64(_, fs) | Decimal128(_, fs) | Decimal256(_, fs),
            Decimal32(_, ts) | Decimal64(_, ts) | Decimal128(_, ts) | Decimal256(_, ts),
        ) => ts >= fs && integer_digits(to) >= integer_digits(from),
        _ => false,
    }
}

/// A column of a table.
#[derive(Clone, Debug)]
pub struct ColumnDef {
    /// The column's Arrow field (name, type, nullability).
    pub field: Field,
    /// Where values come from.
    pub source: ColumnSource,
    /// `COMMENT`.
    pub comment: Option<String>,
}

/// The event-time declaration of a table.
#[derive(Clone, Debug)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: String,
    /// The watermark expression as written.
    pub expr: String,
}

/// A table over Pulsar topics.
#[derive(Clone, Debug)]
pub struct TableDef {
    /// Name.
    pub name: String,
    /// Columns in declared order.
    pub columns: Vec<ColumnDef>,
    /// Schema of all columns.
    pub schema: SchemaRef,
    /// Schema of the payload columns, as the format decodes them.
    pub payload_schema: SchemaRef,
    /// `WATERMARK FOR`.
    pub watermark: Option<WatermarkDef>,
    /// `PRIMARY KEY` columns.
    pub primary_key: Vec<String>,
    /// Table comment.
    pub comment: Option<String>,
    /// The connector and its options.
    pub connector: Connector,
    /// The topic's registry schema the payload is read by, when the table has one.
    pub value_schema: Option<Arc<SchemaInfo>>,
    /// The `WITH` options as written (with session defaults added), for `SHOW CREATE TABLE`.
    pub options: Vec<OptionEntry>,
}

impl TableDef {
    /// Validates a `CREATE TABLE`.
    pub fn from_create(create: &CreateTable) -> Result<TableDef> {
        Self::from_create_with_schema(create, None, &CustomConnectors::default())
    }

    /// Whether a `CREATE TABLE` declares no payload column (only metadata, or nothing), so
    /// its columns must come from the topic's registry schema.
    pub fn needs_registry_columns(create: &CreateTable) -> bool {
        !create
            .columns
            .iter()
            .any(|c| matches!(c.kind, ColumnKind::Physical))
    }

    /// Validates a `CREATE TABLE` over a topic whose latest registry schema is `registry`:
    /// without declared payload columns they come from it; declared ones must be readable
    /// from it. `custom` are the connectors registered besides the built-in ones.
    pub fn from_create_with_schema(
        create: &CreateTable,
        registry: Option<Arc<SchemaInfo>>,
        custom: &CustomConnectors,
    ) -> Result<TableDef> {
        let location = Some(create.location);
        let connector = Connector::parse(&create.name, &create.options, location, custom)?;
        let is_pulsar = matches!(connector, Connector::Pulsar(_));
        let topic = match &connector {
            Connector::Pulsar(o) => o.topics.first().map(|t| t.to_string()).unwrap_or_default(),
            _ => String::new(),
        };
        let schema_error = |message: String, location| SqlError::Schema {
            table: create.name.clone(),
            message,
            location,
        };
        let registry_fields = match &registry {
            None => None,
            Some(info) => Some(columns_of(info).map_err(|reason| {
                schema_error(
                    format!("the schema of topic '{topic}' cannot be read: {reason}"),
                    location,
                )
            })?),
        };
        let mut columns = Vec::with_capacity(create.columns.len());
        let needs_registry = Self::needs_registry_columns(create);
        if needs_registry && let Some(fields) = &registry_fields {
            columns.extend(fields.iter().map(|f| ColumnDef {
                field: f.clone(),
                source: ColumnSource::Payload,
                comment: None,
            }));
        } else if let Some((fields, what)) = match (&registry_fields, &registry, &connector) {
            (Some(fields), Some(info), _) => Some((
                fields.clone(),
                format!("the {} schema of topic '{topic}'", info.kind.name()),
            )),
            // The protobuf format reads declared columns by field name, like a registry.
            (None, _, Connector::Pulsar(o)) => match &o.protobuf {
                Some(p) => Some((
                    magnetar_connectors::format::protobuf_columns(&p.descriptor).map_err(
                        |reason| schema_error(format!("protobuf message: {reason}"), location),
                    )?,
                    format!("protobuf message '{}'", p.descriptor.full_name()),
                )),
                None => None,
            },
            _ => None,
        } {
            for decl in create
                .columns
                .iter()
                .filter(|c| matches!(c.kind, ColumnKind::Physical))
            {
                let Some(field) = fields.iter().find(|f| f.name() == &decl.name) else {
                    return Err(schema_error(
                        format!(
                            "column '{}' is not a field of {what} (its fields: {})",
                            decl.name,
                            fields
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        Some(decl.location),
                    ));
                };
                if !readable_as(field.data_type(), &decl.data_type) {
                    return Err(schema_error(
                        format!(
                            "column '{}' is declared {}, but {what} has it as {}",
                            decl.name,
                            crate::parser::types::sql_type_name(&decl.data_type),
                            crate::parser::types::sql_type_name(field.data_type())
                        ),
                        Some(decl.location),
                    ));
                }
            }
        }
        for decl in &create.columns {
            if columns
                .iter()
                .any(|c: &ColumnDef| c.field.name() == &decl.name)
            {
                return Err(SqlError::syntax(
                    format!("column '{}' is declared twice", decl.name),
                    Some(decl.location),
                ));
            }
            let source = match &decl.kind {
                ColumnKind::Physical => ColumnSource::Payload,
                ColumnKind::Metadata { .. } if !is_pulsar => {
                    return Err(SqlError::unsupported(
                        format!(
                            "metadata column '{}': the {} connector has no message metadata",
                            decl.name,
                            connector.name()
                        ),
                        Some(decl.location),
                    ));
                }
                ColumnKind::Metadata { key, is_virtual } => {
                    let key = MetadataKey::parse(key).ok_or_else(|| {
                        SqlError::syntax(
                            format!(
                                "unknown metadata key '{key}'; known keys: {}",
                                MetadataKey::ALL
                                    .iter()
                                    .map(|k| k.name())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            Some(decl.location),
                        )
                    })?;
                    key.check_type(&decl.data_type).map_err(|reason| {
                        SqlError::syntax(
                            format!("metadata column '{}': {reason}", decl.name),
                            Some(decl.location),
                        )
                    })?;
                    ColumnSource::Metadata {
                        key,
                        is_virtual: *is_virtual,
                    }
                }
            };
            columns.push(ColumnDef {
                field: Field::new(&decl.name, decl.data_type.clone(), decl.nullable),
                source,
                comment: decl.comment.clone(),
            });
        }
        if needs_registry && registry_fields.is_none() {
            // After the declared columns are checked, before anything that may name a column
            // the registry would have brought (key fields, the watermark).
            return Err(SqlError::NoColumns {
                table: create.name.clone(),
                location,
            });
        }
        let payload: Vec<Field> = columns
            .iter()
            .filter(|c| c.source == ColumnSource::Payload)
            .map(|c| c.field.clone().with_nullable(true))
            .collect();
        let format = connector.format();
        if registry.is_none() && format.kind == FormatKind::Raw && payload.len() != 1 {
            return Err(SqlError::InvalidOption {
                key: "format".into(),
                value: "raw".into(),
                reason: format!(
                    "the raw format needs exactly one physical column (BYTES or STRING); table '{}' has {}",
                    create.name,
                    payload.len()
                ),
                location,
            });
        }
        let key_fields = match &connector {
            Connector::Pulsar(o) => o.key_fields.as_slice(),
            Connector::Filesystem(_) | Connector::Memory(_) | Connector::Custom(_) => &[],
        };
        if let Connector::Memory(o) = &connector
            && let Some(field) = &o.partition_field
            && !columns
                .iter()
                .any(|c| c.field.name() == field && c.field.data_type().is_integer())
        {
            return Err(SqlError::InvalidOption {
                key: "partition.field".into(),
                value: field.clone(),
                reason: "no integer column of that name".into(),
                location,
            });
        }
        for key in key_fields {
            if !columns.iter().any(|c| c.field.name() == key) {
                return Err(SqlError::InvalidOption {
                    key: "key.fields".into(),
                    value: key_fields.join(";"),
                    reason: format!(
                        "no column '{key}'{}",
                        crate::error::nearest(key, columns.iter().map(|c| c.field.name().as_str()))
                            .map(|n| format!("; did you mean '{n}'?"))
                            .unwrap_or_default()
                    ),
                    location,
                });
            }
        }
        let watermark = match &create.watermark {
            None => None,
            Some(w) => {
                let Some(column) = columns.iter().find(|c| c.field.name() == &w.column) else {
                    return Err(SqlError::syntax(
                        format!("WATERMARK FOR '{}': no such column", w.column),
                        Some(w.location),
                    ));
                };
                // Flink's rule: event time is TIMESTAMP(3) or TIMESTAMP_LTZ(3).
                if !matches!(
                    column.field.data_type(),
                    DataType::Timestamp(TimeUnit::Millisecond, _)
                ) {
                    return Err(SqlError::syntax(
                        format!(
                            "WATERMARK FOR '{}': the event-time column must be TIMESTAMP(3) or TIMESTAMP_LTZ(3), not {}",
                            w.column,
                            crate::parser::types::sql_type_name(column.field.data_type())
                        ),
                        Some(w.location),
                    ));
                }
                Some(WatermarkDef {
                    column: w.column.clone(),
                    expr: w.expr.to_string(),
                })
            }
        };
        for key in &create.primary_key {
            if !columns.iter().any(|c| c.field.name() == key) {
                return Err(schema_error(
                    format!(
                        "PRIMARY KEY column '{key}' is not a column of the table (its columns: {})",
                        columns
                            .iter()
                            .map(|c| c.field.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    location,
                ));
            }
        }
        let schema = Arc::new(Schema::new(
            columns.iter().map(|c| c.field.clone()).collect::<Vec<_>>(),
        ));
        Ok(TableDef {
            name: create.name.clone(),
            schema,
            payload_schema: Arc::new(Schema::new(payload)),
            columns,
            watermark,
            primary_key: create.primary_key.clone(),
            comment: create.comment.clone(),
            connector,
            value_schema: registry,
            options: create.options.clone(),
        })
    }

    /// Whether reads of this table end by themselves.
    pub fn is_bounded(&self) -> bool {
        self.connector.is_bounded()
    }

    /// The value format.
    pub fn format(&self) -> ValueFormat {
        self.connector.format()
    }

    /// The Pulsar options, for a Pulsar table.
    pub fn pulsar(&self) -> Option<&PulsarTableOptions> {
        match &self.connector {
            Connector::Pulsar(o) => Some(o),
            _ => None,
        }
    }

    /// The index of the event-time column, for a table with a watermark.
    pub fn rowtime_index(&self) -> Option<usize> {
        let w = self.watermark.as_ref()?;
        self.columns
            .iter()
            .position(|c| c.field.name() == &w.column)
    }

    /// Columns a sink writes, in order: payload columns and writable metadata columns.
    pub fn writable_columns(&self) -> Vec<&ColumnDef> {
        self.columns
            .iter()
            .filter(|c| match &c.source {
                ColumnSource::Payload => true,
                ColumnSource::Metadata { is_virtual, key } => !is_virtual && key.is_writable(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_statement;
    use crate::statement::Statement;

    fn def(sql: &str) -> Result<TableDef> {
        match parse_statement(sql).expect("parse") {
            Statement::CreateTable(c) => TableDef::from_create(&c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn builds_schemas_for_payload_and_metadata() {
        let t = def("CREATE TABLE t (a INT NOT NULL, k STRING METADATA FROM 'key', pt TIMESTAMP_LTZ(3) METADATA FROM 'publish_time' VIRTUAL) WITH ('connector'='pulsar','topics'='x')")
            .expect("valid");
        assert_eq!(t.schema.fields().len(), 3);
        assert_eq!(t.payload_schema.fields().len(), 1);
        assert!(
            t.payload_schema.field(0).is_nullable(),
            "payload fields may be absent"
        );
        let writable: Vec<&str> = t
            .writable_columns()
            .iter()
            .map(|c| c.field.name().as_str())
            .collect();
        assert_eq!(writable, vec!["a", "k"]);
    }

    #[test]
    fn registry_fields_read_only_into_types_that_hold_every_value() {
        use DataType::*;
        for (from, to) in [
            (Int64, Decimal128(20, 0)),
            (Int32, Int64),
            (UInt32, Int64),
            (Int16, Float32),
            (Int64, Float64),
            (Float32, Float64),
            (Decimal128(10, 2), Decimal128(12, 2)),
            (Utf8, LargeUtf8),
            (Date32, Timestamp(TimeUnit::Millisecond, None)),
        ] {
            assert!(readable_as(&from, &to), "{from} -> {to}");
        }
        for (from, to) in [
            (Int64, Int32),
            (UInt64, Int64),
            (Int64, Decimal128(10, 0)),
            (Float64, Float32),
            (Float64, Int64),
            (Decimal128(10, 2), Decimal128(10, 3)),
            (Utf8, Int64),
            (Boolean, Timestamp(TimeUnit::Millisecond, None)),
        ] {
            assert!(!readable_as(&from, &to), "{from} -> {to}");
        }
    }

    #[test]
    fn rejects_inconsistent_declarations() {
        let err = def(
            "CREATE TABLE t (a INT, b INT) WITH ('connector'='pulsar','topics'='x','format'='raw')",
        )
        .expect_err("raw with two columns");
        assert!(
            err.to_string().contains("exactly one physical column"),
            "{err}"
        );
        let err = def(
            "CREATE TABLE t (a INT METADATA FROM 'nope') WITH ('connector'='pulsar','topics'='x')",
        )
        .expect_err("bad key");
        assert!(
            err.to_string().contains("unknown metadata key 'nope'"),
            "{err}"
        );
        let err = def("CREATE TABLE t (user_id STRING) WITH ('connector'='pulsar','topics'='x','key.fields'='userid')")
            .expect_err("bad key field");
        assert!(err.to_string().contains("did you mean 'user_id'"), "{err}");
        let err = def("CREATE TABLE t (a INT, WATERMARK FOR ts AS ts) WITH ('connector'='pulsar','topics'='x')")
            .expect_err("bad watermark column");
        assert!(err.to_string().contains("no such column"), "{err}");
        let err = def("CREATE TABLE t (ts TIMESTAMP(6), WATERMARK FOR ts AS ts) WITH ('connector'='pulsar','topics'='x')")
            .expect_err("bad rowtime type");
        assert!(
            err.to_string()
                .contains("must be TIMESTAMP(3) or TIMESTAMP_LTZ(3), not TIMESTAMP(6)"),
            "{err}"
        );
        let err = def("CREATE TABLE t (a INT, k STRING METADATA FROM 'key') WITH ('connector'='filesystem','path'='x')")
            .expect_err("metadata on files");
        assert!(err.to_string().contains("has no message metadata"), "{err}");
        let err = def("CREATE TABLE t (a INT) WITH ('connector'='filesytem','path'='x')")
            .expect_err("bad connector");
        assert!(
            err.to_string().contains("did you mean 'filesystem'"),
            "{err}"
        );
    }
}
