//! `CREATE [TEMPORARY] VIEW [IF NOT EXISTS] name [(a, b, ...)] [COMMENT '...'] AS query`,
//! Flink's form; every view is the session's, so `TEMPORARY` changes nothing.

use datafusion::sql::sqlparser::ast;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::{ident_name, location_of, object_name, parser_error};
use crate::error::{Location, Result, SqlError};
use crate::statement::CreateView;

/// Parses what follows `CREATE [TEMPORARY] VIEW`; the caller fills in `text`.
pub(super) fn parse_create_view(
    parser: &mut Parser<'_>,
    start: Option<Location>,
) -> Result<CreateView> {
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser
        .parse_object_name(false)
        .map_err(|e| parser_error(e, parser))?;
    let mut columns = Vec::new();
    if parser.consume_token(&Token::LParen) {
        loop {
            let ident = parser
                .parse_identifier()
                .map_err(|e| parser_error(e, parser))?;
            columns.push(ident_name(&ident));
            if parser.consume_token(&Token::Comma) {
                continue;
            }
            let token = parser.next_token();
            if token.token != Token::RParen {
                return Err(SqlError::syntax(
                    format!(
                        "expected ',' or ')' in the view's column list, found {}",
                        token.token
                    ),
                    location_of(&token),
                ));
            }
            break;
        }
    }
    let comment = if parser.parse_keyword(Keyword::COMMENT) {
        Some(
            parser
                .parse_literal_string()
                .map_err(|e| parser_error(e, parser))?,
        )
    } else {
        None
    };
    let as_token = parser.peek_token();
    if !parser.parse_keyword(Keyword::AS) {
        return Err(SqlError::syntax(
            format!(
                "expected AS <query> in CREATE VIEW, found {}",
                as_token.token
            ),
            location_of(&as_token),
        ));
    }
    let query = parser.parse_query().map_err(|e| parser_error(e, parser))?;
    Ok(CreateView {
        name: object_name(&name),
        if_not_exists,
        columns,
        comment,
        query: Box::new(ast::Statement::Query(query)),
        text: String::new(),
        location: start.unwrap_or(Location::START),
    })
}
