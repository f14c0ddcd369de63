//! Parsing one statement. Our own statements (DDL with `WITH` and `WATERMARK`, `SHOW JOBS`,
//! `STOP JOB`, Flink's `SET 'k' = 'v'`) are read here on sqlparser's token stream; queries
//! and `INSERT` go to sqlparser's parser for DataFusion to plan.

mod create_table;
mod create_view;
pub mod limits;
pub mod types;
mod window_tvf;

pub use window_tvf::rewrite_window_tvfs;
pub(crate) use window_tvf::{offset, significant_tokens};

use datafusion::sql::sqlparser::ast::{self, Ident};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{Location, Result, SqlError, parser_message};
use crate::statement::Statement;

/// The dialect Magnetar parses: generic, so backquoted and double-quoted identifiers work.
pub const DIALECT: GenericDialect = GenericDialect {};

/// Where a token starts.
pub(crate) fn location_of(token: &TokenWithSpan) -> Option<Location> {
    Location::from_parser(token.span.start)
}

/// An identifier's name: unquoted identifiers are lower-cased, as DataFusion does.
pub(crate) fn ident_name(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

/// An object name (`a.b.c`) as one string, normalised.
pub(crate) fn object_name(name: &ast::ObjectName) -> String {
    name.0
        .iter()
        .filter_map(|part| part.as_ident().map(ident_name))
        .collect::<Vec<_>>()
        .join(".")
}

/// Turns a sqlparser error into ours, locating it at the parser's current token when the
/// message has no position of its own.
pub(crate) fn parser_error(e: ParserError, parser: &Parser<'_>) -> SqlError {
    let text = e.to_string();
    let location = position_in_message(&text).or_else(|| location_of(parser.peek_token_ref()));
    SqlError::syntax(parser_message(&text), location)
}

/// sqlparser puts "at Line: L, Column: C" in some messages.
fn position_in_message(text: &str) -> Option<Location> {
    let rest = &text[text.find("at Line: ")? + "at Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(Location {
        line: line.trim().parse().ok()?,
        column: column.parse().ok()?,
    })
}

/// A string literal or a (possibly dotted) bare word, e.g. a setting key.
fn parse_key_or_word(parser: &mut Parser<'_>) -> Result<String> {
    let token = parser.next_token();
    match &token.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s.clone()),
        Token::Word(w) => {
            let mut key = w.value.clone();
            while parser.consume_token(&Token::Period) {
                let next = parser.next_token();
                match &next.token {
                    Token::Word(w) => {
                        key.push('.');
                        key.push_str(&w.value);
                    }
                    other => {
                        return Err(SqlError::syntax(
                            format!("expected a name after '.', found {other}"),
                            location_of(&next),
                        ));
                    }
                }
            }
            Ok(key)
        }
        other => Err(SqlError::syntax(
            format!("expected a quoted key, found {other}"),
            location_of(&token),
        )),
    }
}

/// A value after `=`: a string, a number or a bare word.
fn parse_value_text(parser: &mut Parser<'_>) -> Result<String> {
    let token = parser.next_token();
    match &token.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s.clone()),
        Token::Number(n, _) => Ok(n.clone()),
        Token::Word(w) => Ok(w.value.clone()),
        other => Err(SqlError::syntax(
            format!("expected a value, found {other}"),
            location_of(&token),
        )),
    }
}

fn expect_end(parser: &mut Parser<'_>) -> Result<()> {
    let token = parser.peek_token();
    match &token.token {
        Token::EOF | Token::SemiColon => Ok(()),
        other => Err(SqlError::syntax(
            format!("unexpected {other} after the end of the statement"),
            location_of(&token),
        )),
    }
}

/// Parses one statement (without its `;`). Locations are relative to `sql`.
pub fn parse_statement(sql: &str) -> Result<Statement> {
    limits::check_statement_shape(sql)?;
    let rewritten = rewrite_window_tvfs(sql)?;
    let rewritten = crate::match_recognize::rewrite_within(&rewritten)?;
    let mut parser = Parser::new(&DIALECT)
        .try_with_sql(&rewritten)
        .map_err(|e| {
            SqlError::syntax(
                parser_message(&e.to_string()),
                position_in_message(&e.to_string()),
            )
        })?;
    let statement = parse_with(&mut parser).map_err(|e| match e {
        // Errors at the end of input (EOF has no position): point just past the text.
        SqlError::Syntax {
            message,
            location: None,
        } => SqlError::Syntax {
            message,
            location: Some(end_of(sql)),
        },
        other => other,
    })?;
    Ok(match statement {
        Statement::CreateView(mut view) => {
            view.text = sql.trim().to_string();
            Statement::CreateView(view)
        }
        other => other,
    })
}

/// The location just after the last character of `sql`.
fn end_of(sql: &str) -> Location {
    let text = sql.trim_end();
    let line = text.lines().count().max(1) as u64;
    let last = text.rsplit('\n').next().unwrap_or("");
    Location {
        line,
        column: last.chars().count() as u64 + 1,
    }
}

fn parse_with(parser: &mut Parser<'_>) -> Result<Statement> {
    let start = parser.peek_token();
    let start_location = location_of(&start);
    if parser.parse_keywords(&[Keyword::CREATE, Keyword::TABLE]) {
        let create = create_table::parse_create_table(parser, start_location)?;
        expect_end(parser)?;
        return Ok(Statement::CreateTable(Box::new(create)));
    }
    if parser.parse_keywords(&[Keyword::CREATE, Keyword::VIEW])
        || parser.parse_keywords(&[Keyword::CREATE, Keyword::TEMPORARY, Keyword::VIEW])
    {
        let view = create_view::parse_create_view(parser, start_location)?;
        expect_end(parser)?;
        return Ok(Statement::CreateView(Box::new(view)));
    }
    if parser.parse_keywords(&[Keyword::DROP, Keyword::VIEW])
        || parser.parse_keywords(&[Keyword::DROP, Keyword::TEMPORARY, Keyword::VIEW])
    {
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = parser
            .parse_object_name(false)
            .map_err(|e| parser_error(e, parser))?;
        expect_end(parser)?;
        return Ok(Statement::DropView {
            name: object_name(&name),
            if_exists,
        });
    }
    if parser.parse_keywords(&[Keyword::DROP, Keyword::TABLE]) {
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = parser
            .parse_object_name(false)
            .map_err(|e| parser_error(e, parser))?;
        expect_end(parser)?;
        return Ok(Statement::DropTable {
            name: object_name(&name),
            if_exists,
        });
    }
    if parser.parse_keyword(Keyword::SHOW) {
        let token = parser.next_token();
        let what = match &token.token {
            Token::Word(w) => w.value.to_ascii_uppercase(),
            _ => String::new(),
        };
        let statement = match what.as_str() {
            "TABLES" => Statement::ShowTables,
            "VIEWS" => Statement::ShowViews,
            "JOBS" => Statement::ShowJobs,
            "SET" | "SETTINGS" => Statement::ShowSettings,
            "CREATE" if parser.parse_keyword(Keyword::TABLE) => {
                let name = parser
                    .parse_object_name(false)
                    .map_err(|e| parser_error(e, parser))?;
                Statement::ShowCreateTable {
                    name: object_name(&name),
                }
            }
            "CREATE" if parser.parse_keyword(Keyword::VIEW) => {
                let name = parser
                    .parse_object_name(false)
                    .map_err(|e| parser_error(e, parser))?;
                Statement::ShowCreateView {
                    name: object_name(&name),
                }
            }
            _ => {
                return Err(SqlError::syntax(
                    format!(
                        "expected SHOW TABLES, SHOW VIEWS, SHOW JOBS, SHOW SET, SHOW CREATE TABLE or SHOW CREATE VIEW, found {}",
                        token.token
                    ),
                    location_of(&token),
                ));
            }
        };
        expect_end(parser)?;
        return Ok(statement);
    }
    if let Token::Word(w) = &start.token
        && w.value.eq_ignore_ascii_case("STOP")
    {
        parser.next_token();
        let token = parser.next_token();
        if !matches!(&token.token, Token::Word(w) if w.value.eq_ignore_ascii_case("JOB")) {
            return Err(SqlError::syntax(
                format!("expected STOP JOB 'id', found {}", token.token),
                location_of(&token),
            ));
        }
        let id = parse_value_text(parser)?;
        expect_end(parser)?;
        return Ok(Statement::StopJob { id });
    }
    if parser.parse_keyword(Keyword::SET) {
        if matches!(parser.peek_token().token, Token::EOF | Token::SemiColon) {
            return Ok(Statement::ShowSettings);
        }
        let key = parse_key_or_word(parser)?;
        let token = parser.next_token();
        if !matches!(token.token, Token::Eq)
            && !matches!(&token.token, Token::Word(w) if w.keyword == Keyword::TO)
        {
            return Err(SqlError::syntax(
                format!("expected SET 'key' = 'value', found {}", token.token),
                location_of(&token),
            ));
        }
        let value = parse_value_text(parser)?;
        expect_end(parser)?;
        return Ok(Statement::Set { key, value });
    }
    if parser.parse_keyword(Keyword::RESET) {
        let key = if matches!(parser.peek_token().token, Token::EOF | Token::SemiColon) {
            None
        } else {
            Some(parse_key_or_word(parser)?)
        };
        expect_end(parser)?;
        return Ok(Statement::Reset { key });
    }
    if parser.parse_keyword(Keyword::DESCRIBE) || parser.parse_keyword(Keyword::DESC) {
        // DESCRIBE TABLE t is accepted as well.
        let _ = parser.parse_keyword(Keyword::TABLE);
        let name = parser
            .parse_object_name(false)
            .map_err(|e| parser_error(e, parser))?;
        expect_end(parser)?;
        return Ok(Statement::Describe {
            name: object_name(&name),
        });
    }
    if parser.parse_keyword(Keyword::EXPLAIN) {
        let inner_start = parser.peek_token();
        let inner = parse_with(parser)?;
        return match inner {
            Statement::Query(_) | Statement::Insert(_) | Statement::StatementSet(_) => {
                Ok(Statement::Explain(Box::new(inner)))
            }
            _ => Err(SqlError::unsupported(
                "EXPLAIN works on queries, INSERT INTO statements and statement sets",
                location_of(&inner_start),
            )),
        };
    }
    if parser.parse_keywords(&[Keyword::EXECUTE, Keyword::STATEMENT, Keyword::SET]) {
        return parse_statement_set(parser).map(Statement::StatementSet);
    }
    let statement = parser
        .parse_statement()
        .map_err(|e| parser_error(e, parser))?;
    expect_end(parser)?;
    match statement {
        ast::Statement::Query(_) => Ok(Statement::Query(Box::new(statement))),
        ast::Statement::Insert(_) => Ok(Statement::Insert(Box::new(statement))),
        other => Err(SqlError::unsupported(
            format!(
                "this statement is not supported: {}. Magnetar runs CREATE TABLE, DROP TABLE, CREATE VIEW, DROP VIEW, SELECT, INSERT INTO, EXPLAIN, DESCRIBE, SHOW TABLES, SHOW JOBS, STOP JOB, SET and RESET",
                first_words(&other.to_string())
            ),
            start_location,
        )),
    }
}

/// `EXECUTE STATEMENT SET BEGIN INSERT ...; INSERT ...; END` (Flink's syntax), after its
/// first three words.
fn parse_statement_set(parser: &mut Parser<'_>) -> Result<Vec<ast::Statement>> {
    let begin = parser.next_token();
    if !matches!(&begin.token, Token::Word(w) if w.keyword == Keyword::BEGIN) {
        return Err(SqlError::syntax(
            format!(
                "expected BEGIN after EXECUTE STATEMENT SET, found {}",
                begin.token
            ),
            location_of(&begin),
        ));
    }
    let mut inserts = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let next = parser.peek_token();
        if matches!(&next.token, Token::Word(w) if w.keyword == Keyword::END) {
            parser.next_token();
            break;
        }
        if next.token == Token::EOF {
            return Err(SqlError::syntax(
                "the statement set has no END",
                location_of(&next),
            ));
        }
        let statement = parser
            .parse_statement()
            .map_err(|e| parser_error(e, parser))?;
        if !matches!(statement, ast::Statement::Insert(_)) {
            return Err(SqlError::unsupported(
                format!(
                    "a statement set holds INSERT INTO statements only, not {}",
                    first_words(&statement.to_string())
                ),
                location_of(&next),
            ));
        }
        inserts.push(statement);
        let after = parser.peek_token();
        if !matches!(after.token, Token::SemiColon)
            && !matches!(&after.token, Token::Word(w) if w.keyword == Keyword::END)
        {
            return Err(SqlError::syntax(
                format!(
                    "expected ';' after an INSERT of the statement set, found {}",
                    after.token
                ),
                location_of(&after),
            ));
        }
    }
    if inserts.is_empty() {
        return Err(SqlError::unsupported(
            "the statement set is empty: put INSERT INTO statements between BEGIN and END",
            location_of(&begin),
        ));
    }
    expect_end(parser)?;
    Ok(inserts)
}

fn first_words(text: &str) -> String {
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_our_commands() {
        assert!(matches!(
            parse_statement("SHOW JOBS").expect("ok"),
            Statement::ShowJobs
        ));
        assert!(matches!(
            parse_statement("show tables").expect("ok"),
            Statement::ShowTables
        ));
        match parse_statement("STOP JOB 'abc123'").expect("ok") {
            Statement::StopJob { id } => assert_eq!(id, "abc123"),
            other => panic!("{other:?}"),
        }
        match parse_statement("SET 'pipeline.name' = 'clicks'").expect("ok") {
            Statement::Set { key, value } => {
                assert_eq!(key, "pipeline.name");
                assert_eq!(value, "clicks");
            }
            other => panic!("{other:?}"),
        }
        match parse_statement("SET table.exec.source.idle-timeout = '5 s'") {
            Err(e) => assert!(e.to_string().contains("expected SET"), "{e}"),
            Ok(other) => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_statement("RESET").expect("ok"),
            Statement::Reset { key: None }
        ));
        match parse_statement("DESCRIBE Clicks").expect("ok") {
            Statement::Describe { name } => assert_eq!(name, "clicks"),
            other => panic!("{other:?}"),
        }
        match parse_statement("DROP TABLE IF EXISTS \"Mixed\"").expect("ok") {
            Statement::DropTable { name, if_exists } => {
                assert_eq!(name, "Mixed");
                assert!(if_exists);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_views() {
        let sql =
            "CREATE TEMPORARY VIEW IF NOT EXISTS Alerts (u, t) COMMENT 'x' AS SELECT a, b FROM t";
        match parse_statement(sql).expect("ok") {
            Statement::CreateView(view) => {
                assert_eq!(view.name, "alerts");
                assert!(view.if_not_exists);
                assert_eq!(view.columns, ["u", "t"]);
                assert_eq!(view.comment.as_deref(), Some("x"));
                assert_eq!(view.text, sql);
                assert!(matches!(*view.query, ast::Statement::Query(_)));
            }
            other => panic!("{other:?}"),
        }
        let err = parse_statement("CREATE VIEW v SELECT 1").expect_err("no AS");
        assert!(err.to_string().contains("expected AS"), "{err}");
        assert_eq!(
            err.location(),
            Some(Location {
                line: 1,
                column: 15
            })
        );
        assert!(matches!(
            parse_statement("DROP TEMPORARY VIEW IF EXISTS v").expect("ok"),
            Statement::DropView {
                if_exists: true,
                ..
            }
        ));
        assert!(matches!(
            parse_statement("SHOW VIEWS").expect("ok"),
            Statement::ShowViews
        ));
        assert!(matches!(
            parse_statement("SHOW CREATE VIEW v").expect("ok"),
            Statement::ShowCreateView { .. }
        ));
    }

    #[test]
    fn hands_queries_and_inserts_to_sqlparser() {
        assert!(matches!(
            parse_statement("SELECT a FROM t WHERE b > 1").expect("ok"),
            Statement::Query(_)
        ));
        assert!(matches!(
            parse_statement("INSERT INTO s SELECT * FROM t").expect("ok"),
            Statement::Insert(_)
        ));
        assert!(matches!(
            parse_statement("EXPLAIN SELECT 1").expect("ok"),
            Statement::Explain(_)
        ));
    }

    #[test]
    fn parses_statement_sets() {
        match parse_statement(
            "EXECUTE STATEMENT SET BEGIN\n INSERT INTO a SELECT * FROM t;\n INSERT INTO b SELECT x FROM t;\nEND",
        )
        .expect("ok")
        {
            Statement::StatementSet(inserts) => assert_eq!(inserts.len(), 2),
            other => panic!("{other:?}"),
        }
        let err = parse_statement("EXECUTE STATEMENT SET BEGIN SELECT 1; END").expect_err("select");
        assert!(
            err.to_string().contains("INSERT INTO statements only"),
            "{err}"
        );
        let err = parse_statement("EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 1;")
            .expect_err("no end");
        assert!(err.to_string().contains("no END"), "{err}");
        let err = parse_statement("EXECUTE STATEMENT SET BEGIN END").expect_err("empty");
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn syntax_errors_carry_positions() {
        let err = parse_statement("SELECT a FROM t WHERE").expect_err("incomplete");
        assert!(matches!(err, SqlError::Syntax { .. }), "{err:?}");
        assert_eq!(
            err.location(),
            Some(Location {
                line: 1,
                column: 22
            }),
            "{err:?}"
        );
        let err = parse_statement("SELEC 1").expect_err("typo");
        assert_eq!(
            err.location(),
            Some(Location { line: 1, column: 1 }),
            "{err:?}"
        );
        let err = parse_statement("UPDATE t SET a = 1").expect_err("unsupported");
        assert!(err.to_string().contains("not supported"), "{err}");
    }
}
