//! `CREATE TABLE` in Flink's form:
//!
//! ```sql
//! CREATE TABLE [IF NOT EXISTS] name (
//!   col TYPE [NOT NULL] [COMMENT '...'],
//!   col TYPE METADATA [FROM 'key'] [VIRTUAL],
//!   WATERMARK FOR col AS expr,
//!   PRIMARY KEY (col, ...) NOT ENFORCED
//! ) [COMMENT '...'] WITH ('key' = 'value', ...)
//! ```

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::types::parse_type;
use super::{ident_name, location_of, object_name, parser_error};
use crate::error::{Location, Result, SqlError};
use crate::statement::{ColumnDecl, ColumnKind, CreateTable, OptionEntry, WatermarkDecl};

fn word_is(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.value.eq_ignore_ascii_case(word))
}

/// Parses what follows `CREATE TABLE`.
pub(super) fn parse_create_table(
    parser: &mut Parser<'_>,
    start: Option<Location>,
) -> Result<CreateTable> {
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser
        .parse_object_name(false)
        .map_err(|e| parser_error(e, parser))?;
    let mut table = CreateTable {
        name: object_name(&name),
        if_not_exists,
        columns: Vec::new(),
        watermark: None,
        primary_key: Vec::new(),
        comment: None,
        options: Vec::new(),
        location: start.unwrap_or(Location::START),
    };
    if parser.consume_token(&Token::LParen) {
        loop {
            parse_element(parser, &mut table)?;
            if parser.consume_token(&Token::Comma) {
                continue;
            }
            let token = parser.next_token();
            if token.token != Token::RParen {
                return Err(SqlError::syntax(
                    format!(
                        "expected ',' or ')' in the column list, found {}",
                        token.token
                    ),
                    location_of(&token),
                ));
            }
            break;
        }
    }
    if parser.parse_keyword(Keyword::COMMENT) {
        table.comment = Some(
            parser
                .parse_literal_string()
                .map_err(|e| parser_error(e, parser))?,
        );
    }
    if parser.parse_keyword(Keyword::PARTITIONED) {
        return Err(SqlError::unsupported(
            "PARTITIONED BY does not apply to Pulsar tables (topics have their own partitions)",
            location_of(parser.peek_token_ref()),
        ));
    }
    let with = parser.peek_token();
    if !parser.parse_keyword(Keyword::WITH) {
        return Err(SqlError::syntax(
            format!(
                "expected WITH ('connector' = '...', ...), found {}",
                with.token
            ),
            location_of(&with),
        ));
    }
    parser
        .expect_token(&Token::LParen)
        .map_err(|e| parser_error(e, parser))?;
    if !parser.consume_token(&Token::RParen) {
        loop {
            table.options.push(parse_option(parser)?);
            if parser.consume_token(&Token::Comma) {
                continue;
            }
            parser
                .expect_token(&Token::RParen)
                .map_err(|e| parser_error(e, parser))?;
            break;
        }
    }
    if let Some(dup) = duplicate_key(&table.options) {
        return Err(SqlError::InvalidOption {
            key: dup.key.clone(),
            value: dup.value.clone(),
            reason: "the option is given twice".into(),
            location: dup.key_location,
        });
    }
    Ok(table)
}

fn duplicate_key(options: &[OptionEntry]) -> Option<&OptionEntry> {
    options
        .iter()
        .enumerate()
        .find(|(i, o)| options[..*i].iter().any(|p| p.key == o.key))
        .map(|(_, o)| o)
}

fn parse_option(parser: &mut Parser<'_>) -> Result<OptionEntry> {
    let key_token = parser.next_token();
    let key = match &key_token.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
        other => {
            return Err(SqlError::syntax(
                format!("expected a quoted option key such as 'connector', found {other}"),
                location_of(&key_token),
            ));
        }
    };
    parser
        .expect_token(&Token::Eq)
        .map_err(|e| parser_error(e, parser))?;
    let value_token = parser.next_token();
    let value = match &value_token.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
        Token::Number(n, _) => n.clone(),
        Token::Word(w) if w.keyword == Keyword::TRUE || w.keyword == Keyword::FALSE => {
            w.value.to_ascii_lowercase()
        }
        other => {
            return Err(SqlError::syntax(
                format!("expected a quoted value for option '{key}', found {other}"),
                location_of(&value_token),
            ));
        }
    };
    Ok(OptionEntry {
        key,
        value,
        key_location: location_of(&key_token),
        value_location: location_of(&value_token),
    })
}

fn parse_element(parser: &mut Parser<'_>, table: &mut CreateTable) -> Result<()> {
    let first = parser.peek_token();
    let location = location_of(&first);
    if word_is(&first.token, "WATERMARK") {
        parser.next_token();
        parser
            .expect_keyword(Keyword::FOR)
            .map_err(|e| parser_error(e, parser))?;
        let column = ident_name(
            &parser
                .parse_identifier()
                .map_err(|e| parser_error(e, parser))?,
        );
        parser
            .expect_keyword(Keyword::AS)
            .map_err(|e| parser_error(e, parser))?;
        let expr = parser.parse_expr().map_err(|e| parser_error(e, parser))?;
        if table.watermark.is_some() {
            return Err(SqlError::syntax(
                "a table has at most one WATERMARK",
                location,
            ));
        }
        table.watermark = Some(WatermarkDecl {
            column,
            expr,
            location: location.unwrap_or(Location::START),
        });
        return Ok(());
    }
    if parser.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY])
        || (parser.parse_keyword(Keyword::CONSTRAINT)
            && parser.parse_identifier().is_ok()
            && parser.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]))
    {
        parser
            .expect_token(&Token::LParen)
            .map_err(|e| parser_error(e, parser))?;
        loop {
            let col = parser
                .parse_identifier()
                .map_err(|e| parser_error(e, parser))?;
            table.primary_key.push(ident_name(&col));
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser
            .expect_token(&Token::RParen)
            .map_err(|e| parser_error(e, parser))?;
        // Flink requires NOT ENFORCED: the key is not checked, only declared.
        if !parser.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]) {
            return Err(SqlError::syntax(
                "PRIMARY KEY must be declared NOT ENFORCED (it is not checked)",
                location_of(parser.peek_token_ref()),
            ));
        }
        return Ok(());
    }

    let name = ident_name(
        &parser
            .parse_identifier()
            .map_err(|e| parser_error(e, parser))?,
    );
    if parser.parse_keyword(Keyword::AS) {
        return Err(SqlError::unsupported(
            format!(
                "computed column '{name}' (name AS expression) is not supported yet; compute it in the query instead"
            ),
            location,
        ));
    }
    let data_type = parse_type(parser)?;
    let mut column = ColumnDecl {
        name,
        data_type,
        nullable: true,
        kind: ColumnKind::Physical,
        comment: None,
        location: location.unwrap_or(Location::START),
    };
    loop {
        let token = parser.peek_token();
        if parser.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
            column.nullable = false;
        } else if parser.parse_keyword(Keyword::NULL) {
            column.nullable = true;
        } else if parser.parse_keyword(Keyword::COMMENT) {
            column.comment = Some(
                parser
                    .parse_literal_string()
                    .map_err(|e| parser_error(e, parser))?,
            );
        } else if word_is(&token.token, "METADATA") {
            parser.next_token();
            let key = if parser.parse_keyword(Keyword::FROM) {
                parser
                    .parse_literal_string()
                    .map_err(|e| parser_error(e, parser))?
            } else {
                column.name.clone()
            };
            let is_virtual = if word_is(&parser.peek_token().token, "VIRTUAL") {
                parser.next_token();
                true
            } else {
                false
            };
            column.kind = ColumnKind::Metadata { key, is_virtual };
        } else {
            break;
        }
    }
    table.columns.push(column);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::parser::parse_statement;
    use crate::statement::{ColumnKind, Statement};
    use datafusion::arrow::datatypes::DataType;

    fn create(sql: &str) -> crate::statement::CreateTable {
        match parse_statement(sql).expect("parse") {
            Statement::CreateTable(c) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_a_flink_ddl() {
        let t = create(
            "CREATE TABLE IF NOT EXISTS Clicks (
               user_id STRING NOT NULL,
               url VARCHAR COMMENT 'page',
               ts TIMESTAMP(3),
               pt TIMESTAMP_LTZ(3) METADATA FROM 'publish_time' VIRTUAL,
               `key` STRING METADATA,
               WATERMARK FOR ts AS ts - INTERVAL '5' SECOND,
               PRIMARY KEY (user_id) NOT ENFORCED
             ) COMMENT 'clicks' WITH (
               'connector' = 'pulsar',
               'topics' = 'persistent://public/default/click-events',
               'source.stop.at-publish-time' = 1700000000000
             )",
        );
        assert_eq!(t.name, "clicks");
        assert!(t.if_not_exists);
        assert_eq!(t.columns.len(), 5);
        assert!(!t.columns[0].nullable);
        assert_eq!(t.columns[1].comment.as_deref(), Some("page"));
        assert_eq!(
            t.columns[3].kind,
            ColumnKind::Metadata {
                key: "publish_time".into(),
                is_virtual: true
            }
        );
        assert_eq!(
            t.columns[4].kind,
            ColumnKind::Metadata {
                key: "key".into(),
                is_virtual: false
            }
        );
        assert_eq!(t.columns[2].data_type.to_string(), "Timestamp(ms)");
        assert!(matches!(t.columns[0].data_type, DataType::Utf8));
        let wm = t.watermark.expect("watermark");
        assert_eq!(wm.column, "ts");
        assert_eq!(wm.location.line, 7);
        assert_eq!(t.primary_key, vec!["user_id"]);
        assert_eq!(t.options.len(), 3);
        assert_eq!(t.options[2].value, "1700000000000");
        assert_eq!(t.options[1].key_location.map(|l| l.line), Some(11));
    }

    #[test]
    fn reports_errors_at_their_place() {
        let err =
            parse_statement("CREATE TABLE t (a INT,\n  b INTEGR) WITH ('connector'='pulsar')")
                .expect_err("bad type");
        assert_eq!(
            err.location().map(|l| (l.line, l.column)),
            Some((2, 5)),
            "{err}"
        );
        let err = parse_statement("CREATE TABLE t (a INT)").expect_err("no WITH");
        assert!(err.to_string().contains("expected WITH"), "{err}");
        let err = parse_statement("CREATE TABLE t (a INT) WITH ('k'='1', 'k'='2')")
            .expect_err("duplicate");
        assert!(err.to_string().contains("given twice"), "{err}");
        let err = parse_statement("CREATE TABLE t (a AS 1 + 1) WITH ('connector'='pulsar')")
            .expect_err("computed");
        assert!(err.to_string().contains("computed column"), "{err}");
    }

    #[test]
    fn the_column_list_may_be_left_out() {
        let t = create("CREATE TABLE t WITH ('connector' = 'pulsar', 'topics' = 'x')");
        assert!(t.columns.is_empty());
    }
}
