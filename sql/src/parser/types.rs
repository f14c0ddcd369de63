//! SQL column types (Flink's names) to Arrow types.
//!
//! Parsed here rather than by sqlparser because Flink's DDL uses forms the generic dialect
//! does not read (`TIMESTAMP_LTZ(3)`, `ROW<a INT>`, `TIMESTAMP(3) WITH LOCAL TIME ZONE`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::{ident_name, location_of};
use crate::error::{Result, SqlError};

/// The zone Magnetar gives `TIMESTAMP_LTZ` values (instants).
pub const LTZ_ZONE: &str = "UTC";

/// Reads a type at the parser's position.
pub fn parse_type(parser: &mut Parser<'_>) -> Result<DataType> {
    TypeParser {
        parser,
        pending_gt: false,
    }
    .parse()
}

struct TypeParser<'p, 'a> {
    parser: &'p mut Parser<'a>,
    /// A `>>` token was split and one `>` is still to be consumed.
    pending_gt: bool,
}

fn unit_for_precision(p: u64) -> TimeUnit {
    match p {
        0 => TimeUnit::Second,
        1..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

impl TypeParser<'_, '_> {
    fn parse(&mut self) -> Result<DataType> {
        let token = self.parser.next_token();
        let location = location_of(&token);
        let Token::Word(word) = &token.token else {
            return Err(SqlError::syntax(
                format!("expected a column type, found {}", token.token),
                location,
            ));
        };
        let name = word.value.to_ascii_uppercase();
        let ty = match name.as_str() {
            "BOOLEAN" | "BOOL" => DataType::Boolean,
            "TINYINT" => DataType::Int8,
            "SMALLINT" => DataType::Int16,
            "INT" | "INTEGER" => DataType::Int32,
            "BIGINT" => DataType::Int64,
            "FLOAT" | "REAL" => DataType::Float32,
            "DOUBLE" => {
                let _ = self
                    .parser
                    .parse_keyword(datafusion::sql::sqlparser::keywords::Keyword::PRECISION);
                DataType::Float64
            }
            "DECIMAL" | "DEC" | "NUMERIC" => {
                let args = self.parse_args()?;
                let precision = args.first().copied().unwrap_or(10);
                let scale = args.get(1).copied().unwrap_or(0);
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(SqlError::syntax(
                        format!(
                            "DECIMAL({precision}, {scale}) is out of range: precision 1..38, scale 0..precision"
                        ),
                        location,
                    ));
                }
                DataType::Decimal128(precision as u8, scale as i8)
            }
            "CHAR" | "VARCHAR" | "STRING" | "TEXT" => {
                self.parse_args()?;
                DataType::Utf8
            }
            "BINARY" | "VARBINARY" | "BYTES" | "BYTEA" => {
                self.parse_args()?;
                DataType::Binary
            }
            "DATE" => DataType::Date32,
            "TIME" => {
                let p = self.parse_args()?.first().copied().unwrap_or(0);
                self.parse_zone_suffix()?;
                match unit_for_precision(p) {
                    TimeUnit::Second => DataType::Time32(TimeUnit::Second),
                    TimeUnit::Millisecond => DataType::Time32(TimeUnit::Millisecond),
                    unit => DataType::Time64(unit),
                }
            }
            "TIMESTAMP" => {
                let p = self.parse_args()?.first().copied().unwrap_or(6);
                let zone = self.parse_zone_suffix()?;
                DataType::Timestamp(unit_for_precision(p), zone.then(|| Arc::from(LTZ_ZONE)))
            }
            "TIMESTAMP_LTZ" => {
                let p = self.parse_args()?.first().copied().unwrap_or(6);
                DataType::Timestamp(unit_for_precision(p), Some(Arc::from(LTZ_ZONE)))
            }
            "ARRAY" => {
                self.expect_lt()?;
                let item = self.parse()?;
                self.expect_gt()?;
                DataType::List(Arc::new(Field::new("item", item, true)))
            }
            "MAP" => {
                self.expect_lt()?;
                let key = self.parse()?;
                self.expect(Token::Comma)?;
                let value = self.parse()?;
                self.expect_gt()?;
                let entries = Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", key, false),
                        Field::new("value", value, true),
                    ])),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
            "ROW" => {
                let angle = if self.parser.consume_token(&Token::LParen) {
                    false
                } else {
                    self.expect_lt()?;
                    true
                };
                let mut fields = Vec::new();
                loop {
                    let name = ident_name(&self.parser.parse_identifier().map_err(|e| {
                        SqlError::syntax(crate::error::parser_message(&e.to_string()), location)
                    })?);
                    let ty = self.parse()?;
                    fields.push(Field::new(name, ty, true));
                    if !self.parser.consume_token(&Token::Comma) {
                        break;
                    }
                }
                if angle {
                    self.expect_gt()?;
                } else {
                    self.expect(Token::RParen)?;
                }
                DataType::Struct(Fields::from(fields))
            }
            other => {
                return Err(SqlError::syntax(
                    format!(
                        "unknown column type {other}; known types: BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p, s), STRING, VARCHAR, BYTES, VARBINARY, DATE, TIME, TIMESTAMP(p), TIMESTAMP_LTZ(p), ARRAY<t>, MAP<k, v>, ROW<name t, ...>"
                    ),
                    location,
                ));
            }
        };
        Ok(ty)
    }

    /// `(n)` or `(n, m)` after a type name; empty when absent.
    fn parse_args(&mut self) -> Result<Vec<u64>> {
        if self.pending_gt || !self.parser.consume_token(&Token::LParen) {
            return Ok(Vec::new());
        }
        let mut args = Vec::new();
        loop {
            let token = self.parser.next_token();
            match &token.token {
                Token::Number(n, _) => args.push(n.parse::<u64>().map_err(|_| {
                    SqlError::syntax(
                        format!("expected a whole number, found {n}"),
                        location_of(&token),
                    )
                })?),
                other => {
                    return Err(SqlError::syntax(
                        format!("expected a whole number, found {other}"),
                        location_of(&token),
                    ));
                }
            }
            if !self.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        self.expect(Token::RParen)?;
        Ok(args)
    }

    /// `WITH [LOCAL] TIME ZONE` (true) or `WITHOUT TIME ZONE` / nothing (false).
    fn parse_zone_suffix(&mut self) -> Result<bool> {
        use datafusion::sql::sqlparser::keywords::Keyword;
        if self.pending_gt {
            return Ok(false);
        }
        if self.parser.parse_keywords(&[
            Keyword::WITH,
            Keyword::LOCAL,
            Keyword::TIME,
            Keyword::ZONE,
        ]) || self
            .parser
            .parse_keywords(&[Keyword::WITH, Keyword::TIME, Keyword::ZONE])
        {
            return Ok(true);
        }
        let _ = self
            .parser
            .parse_keywords(&[Keyword::WITHOUT, Keyword::TIME, Keyword::ZONE]);
        Ok(false)
    }

    fn expect_lt(&mut self) -> Result<()> {
        self.expect(Token::Lt)
    }

    fn expect_gt(&mut self) -> Result<()> {
        if self.pending_gt {
            self.pending_gt = false;
            return Ok(());
        }
        let token = self.parser.next_token();
        match &token.token {
            Token::Gt => Ok(()),
            // `ARRAY<ARRAY<INT>>`: the tokenizer reads `>>` as one token.
            Token::ShiftRight => {
                self.pending_gt = true;
                Ok(())
            }
            other => Err(SqlError::syntax(
                format!("expected >, found {other}"),
                location_of(&token),
            )),
        }
    }

    fn expect(&mut self, expected: Token) -> Result<()> {
        let token = self.parser.next_token();
        if token.token == expected {
            Ok(())
        } else {
            Err(SqlError::syntax(
                format!("expected {expected}, found {}", token.token),
                location_of(&token),
            ))
        }
    }
}

/// The SQL name of an Arrow type, as `DESCRIBE` shows it (Flink's names).
pub fn sql_type_name(data_type: &DataType) -> String {
    let precision = |unit: &TimeUnit| match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    };
    match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTES".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(u) | DataType::Time64(u) => format!("TIME({})", precision(u)),
        DataType::Timestamp(u, None) => format!("TIMESTAMP({})", precision(u)),
        DataType::Timestamp(u, Some(_)) => format!("TIMESTAMP_LTZ({})", precision(u)),
        DataType::List(f) | DataType::LargeList(f) => {
            format!("ARRAY<{}>", sql_type_name(f.data_type()))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                sql_type_name(kv[0].data_type()),
                sql_type_name(kv[1].data_type())
            ),
            other => other.to_string(),
        },
        DataType::Struct(fields) => format!(
            "ROW<{}>",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), sql_type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;

    fn ty(sql: &str) -> Result<DataType> {
        let mut parser = Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .expect("tokenize");
        parse_type(&mut parser)
    }

    #[test]
    fn maps_flink_types() {
        assert_eq!(ty("STRING").expect("ok"), DataType::Utf8);
        assert_eq!(ty("varchar(20)").expect("ok"), DataType::Utf8);
        assert_eq!(ty("BIGINT").expect("ok"), DataType::Int64);
        assert_eq!(ty("DOUBLE PRECISION").expect("ok"), DataType::Float64);
        assert_eq!(
            ty("DECIMAL(12, 2)").expect("ok"),
            DataType::Decimal128(12, 2)
        );
        assert_eq!(
            ty("TIMESTAMP(3)").expect("ok"),
            DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        assert_eq!(
            ty("TIMESTAMP_LTZ(3)").expect("ok"),
            DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC")))
        );
        assert_eq!(
            ty("TIMESTAMP(6) WITH LOCAL TIME ZONE").expect("ok"),
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
        );
        assert_eq!(ty("BYTES").expect("ok"), DataType::Binary);
    }

    #[test]
    fn maps_nested_types_including_double_angle_brackets() {
        let nested = ty("ARRAY<ARRAY<INT>>").expect("ok");
        let DataType::List(outer) = nested else {
            panic!("not a list")
        };
        assert!(matches!(outer.data_type(), DataType::List(_)));
        let map = ty("MAP<STRING, ARRAY<BIGINT>>").expect("ok");
        assert!(matches!(map, DataType::Map(_, false)));
        let row = ty("ROW<a INT, b ROW<c STRING>>").expect("ok");
        let DataType::Struct(fields) = row else {
            panic!("not a struct")
        };
        assert_eq!(fields.len(), 2);
        assert!(matches!(fields[1].data_type(), DataType::Struct(_)));
    }

    #[test]
    fn names_round_trip() {
        for sql in [
            "STRING",
            "BIGINT",
            "TIMESTAMP(3)",
            "TIMESTAMP_LTZ(3)",
            "DECIMAL(12, 2)",
            "ARRAY<INT>",
            "MAP<STRING, BIGINT>",
            "ROW<a INT, b STRING>",
        ] {
            assert_eq!(sql_type_name(&ty(sql).expect("type")), sql);
        }
    }

    #[test]
    fn unknown_types_are_located() {
        let err = ty("  BLOB").expect_err("unknown");
        assert!(
            err.to_string().contains("unknown column type BLOB"),
            "{err}"
        );
        assert_eq!(err.location().map(|l| l.column), Some(3));
    }
}
