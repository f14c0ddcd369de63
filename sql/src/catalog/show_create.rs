//! `SHOW CREATE TABLE`: a table's definition as a `CREATE TABLE` statement that runs again,
//! with secret option values masked.

use std::fmt::Write;

use datafusion::arrow::datatypes::DataType;

use super::{ColumnSource, TableDef};
use crate::options::shown_value;
use crate::parser::types::sql_type_name;

/// `name` as a backquoted identifier.
fn identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A table's name: each part of a dotted name on its own.
fn table_name(name: &str) -> String {
    name.split('.')
        .map(identifier)
        .collect::<Vec<_>>()
        .join(".")
}

/// `data_type` as the DDL writes it, so that it reads back as the same type: ROW field names
/// quoted (they keep their case), unsigned integers (from registry schemas) as the next signed
/// type that holds every value, which reads them exactly.
fn ddl_type(data_type: &DataType) -> String {
    match data_type {
        DataType::UInt8 => "SMALLINT".into(),
        DataType::UInt16 => "INT".into(),
        DataType::UInt32 => "BIGINT".into(),
        DataType::UInt64 => "DECIMAL(20, 0)".into(),
        DataType::List(f) | DataType::LargeList(f) => format!("ARRAY<{}>", ddl_type(f.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                ddl_type(kv[0].data_type()),
                ddl_type(kv[1].data_type())
            ),
            _ => sql_type_name(data_type),
        },
        DataType::Struct(fields) => format!(
            "ROW<{}>",
            fields
                .iter()
                .map(|f| {
                    let not_null = if f.is_nullable() { "" } else { " NOT NULL" };
                    format!(
                        "{} {}{not_null}",
                        identifier(f.name()),
                        ddl_type(f.data_type())
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => sql_type_name(other),
    }
}

/// `text` as a single-quoted SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl TableDef {
    /// The `CREATE TABLE` statement that defines this table, in Flink's layout; secret
    /// option values are shown as `'******'`.
    pub fn create_statement(&self) -> String {
        let mut elements = Vec::with_capacity(self.columns.len() + 2);
        for c in &self.columns {
            let mut line = format!(
                "{} {}",
                identifier(c.field.name()),
                ddl_type(c.field.data_type())
            );
            if !c.field.is_nullable() {
                line.push_str(" NOT NULL");
            }
            if let ColumnSource::Metadata { key, is_virtual } = &c.source {
                let _ = write!(line, " METADATA FROM {}", literal(key.name()));
                if *is_virtual {
                    line.push_str(" VIRTUAL");
                }
            }
            if let Some(comment) = &c.comment {
                let _ = write!(line, " COMMENT {}", literal(comment));
            }
            elements.push(line);
        }
        if let Some(w) = &self.watermark {
            elements.push(format!(
                "WATERMARK FOR {} AS {}",
                identifier(&w.column),
                w.expr
            ));
        }
        if !self.primary_key.is_empty() {
            let key: Vec<String> = self.primary_key.iter().map(|k| identifier(k)).collect();
            elements.push(format!("PRIMARY KEY ({}) NOT ENFORCED", key.join(", ")));
        }
        let mut out = format!("CREATE TABLE {} (\n", table_name(&self.name));
        out.push_str(
            &elements
                .iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join(",\n"),
        );
        out.push_str("\n)");
        if let Some(comment) = &self.comment {
            let _ = write!(out, "\nCOMMENT {}", literal(comment));
        }
        out.push_str(" WITH (\n");
        out.push_str(
            &self
                .options
                .iter()
                .map(|o| {
                    format!(
                        "  {} = {}",
                        literal(&o.key),
                        literal(&shown_value(&o.key, &o.value))
                    )
                })
                .collect::<Vec<_>>()
                .join(",\n"),
        );
        out.push_str("\n)");
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::TableDef;
    use crate::parser::parse_statement;
    use crate::statement::Statement;

    fn table(sql: &str) -> TableDef {
        match parse_statement(sql).expect("parse") {
            Statement::CreateTable(c) => TableDef::from_create(&c).expect("valid"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_statement_defines_the_same_table_again() {
        let first = table(
            "CREATE TABLE Clicks (
               user_id STRING NOT NULL COMMENT 'who''s it',
               `Url` VARCHAR,
               ts TIMESTAMP(3),
               tags ARRAY<STRING>,
               price DECIMAL(10, 2),
               attrs MAP<STRING, ARRAY<INT>>,
               `a.b` ROW<`Url` STRING, `odd name` BIGINT>,
               pt TIMESTAMP_LTZ(3) METADATA FROM 'publish_time' VIRTUAL,
               `key` STRING METADATA,
               WATERMARK FOR ts AS ts - INTERVAL '5' SECOND,
               PRIMARY KEY (user_id) NOT ENFORCED
             ) COMMENT 'clicks' WITH (
               'connector' = 'pulsar',
               'topics' = 'persistent://public/default/click-events',
               'format' = 'json')",
        );
        let text = first.create_statement();
        let again = table(&text);
        assert_eq!(again.create_statement(), text);
        assert_eq!(again.schema, first.schema);
        assert_eq!(again.primary_key, first.primary_key);
        assert_eq!(again.comment.as_deref(), Some("clicks"));
        assert!(text.contains("`Url` STRING"), "{text}");
        assert!(text.contains("COMMENT 'who''s it'"), "{text}");
        assert!(
            text.contains("`pt` TIMESTAMP_LTZ(3) METADATA FROM 'publish_time' VIRTUAL"),
            "{text}"
        );
    }

    #[test]
    fn secret_values_are_masked() {
        let t = table(
            "CREATE TABLE t (n BIGINT) WITH (
               'connector' = 'pulsar', 'topics' = 't', 'format' = 'json',
               'admin-url' = 'http://me:pw-S3CR3T@127.0.0.1:1',
               'pulsar.client.authPluginClassName' = 'org.apache.pulsar.client.impl.auth.AuthenticationToken',
               'pulsar.client.authParams' = 'token:S3CR3T')",
        );
        let text = t.create_statement();
        assert!(!text.contains("S3CR3T"), "{text}");
        assert!(
            text.contains("'pulsar.client.authParams' = '******'"),
            "{text}"
        );
    }
}
