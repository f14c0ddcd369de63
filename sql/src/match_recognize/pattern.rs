//! The `PATTERN` of a `MATCH_RECOGNIZE`: a concatenation of quantified variables, as Flink
//! accepts it, checked and flattened from sqlparser's tree.

use std::fmt;

use datafusion::sql::sqlparser::ast::{
    Ident, MatchRecognizePattern, MatchRecognizeSymbol, RepetitionQuantifier,
};

use crate::error::{Location, Result, SqlError};
use crate::parser::ident_name;

/// A pattern variable: its index in [`Pattern::variables`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub usize);

/// One element of the pattern: a variable and how often it repeats.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quantified {
    /// The variable.
    pub var: VarId,
    /// Fewest rows.
    pub min: u32,
    /// Most rows; `None` for no bound.
    pub max: Option<u32>,
    /// Greedy (the default) or reluctant (`*?`, `+?`, `{n,m}?`).
    pub greedy: bool,
}

impl Quantified {
    /// Whether the element can repeat without bound.
    pub fn unbounded(&self) -> bool {
        self.max.is_none()
    }
}

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    /// Variable names (normalised), in order of first appearance in the pattern.
    pub variables: Vec<String>,
    /// The same names as written, for messages and plans.
    pub written: Vec<String>,
    /// The elements, in order.
    pub elements: Vec<Quantified>,
}

impl Pattern {
    /// The variable called `name` (as normalised), if the pattern has it.
    pub fn var(&self, name: &str) -> Option<VarId> {
        self.variables.iter().position(|v| v == name).map(VarId)
    }

    /// A variable's name as written.
    pub fn name(&self, var: VarId) -> &str {
        &self.written[var.0]
    }
}

impl Pattern {
    /// Variables `v0`, `v1`, ... with these `(min, max, greedy)` bounds, in order (for
    /// tests of what runs patterns).
    pub fn of_bounds(bounds: &[(u32, Option<u32>, bool)]) -> Pattern {
        let names: Vec<String> = (0..bounds.len()).map(|i| format!("v{i}")).collect();
        Pattern {
            variables: names.clone(),
            written: names,
            elements: bounds
                .iter()
                .enumerate()
                .map(|(i, &(min, max, greedy))| Quantified {
                    var: VarId(i),
                    min,
                    max,
                    greedy,
                })
                .collect(),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.elements.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            write!(f, "{}", self.name(e.var))?;
            match (e.min, e.max) {
                (1, Some(1)) => {}
                (0, None) => write!(f, "*")?,
                (1, None) => write!(f, "+")?,
                (0, Some(1)) => write!(f, "?")?,
                (n, None) => write!(f, "{{{n},}}")?,
                (n, Some(m)) if n == m => write!(f, "{{{n}}}")?,
                (n, Some(m)) => write!(f, "{{{n},{m}}}")?,
            }
            if !e.greedy {
                write!(f, "?")?;
            }
        }
        Ok(())
    }
}

/// Whether an element is greedy in Flink's sense: a repetition with a choice (`?` and
/// `{n}` never are).
pub fn greedy_applies(e: &Quantified) -> bool {
    e.greedy && !(e.min == 0 && e.max == Some(1)) && e.max != Some(e.min)
}

/// Why Flink refuses a pattern, where Magnetar follows it (their semantics are Flink's
/// compiler's, so a pattern it cannot compile has none to follow).
pub fn refusal(pattern: &Pattern) -> Option<String> {
    if pattern.elements.iter().all(|e| e.min == 0) {
        return Some(
            "the pattern can match no rows at all (every element is optional); at least one must need a row".into(),
        );
    }
    if let Some(last) = pattern.elements.last()
        && greedy_applies(last)
    {
        return Some(format!(
            "a greedy quantifier cannot end the pattern ({} is the last element): end it with a single variable or a reluctant quantifier such as {}{}?",
            pattern.name(last.var),
            pattern.name(last.var),
            quantifier_text(last)
        ));
    }
    for e in &pattern.elements {
        if !e.greedy && e.min == 0 && e.max == Some(1) {
            return Some(format!(
                "a reluctant optional variable ({}??) is not supported",
                pattern.name(e.var)
            ));
        }
    }
    None
}

fn quantifier_text(e: &Quantified) -> String {
    match (e.min, e.max) {
        (0, None) => "*".into(),
        (1, None) => "+".into(),
        (n, None) => format!("{{{n},}}"),
        (n, Some(m)) => format!("{{{n},{m}}}"),
    }
}

fn at(ident: &Ident) -> Option<Location> {
    Location::from_parser(ident.span.start)
}

/// The first named symbol in `p`, for error positions.
fn first_ident(p: &MatchRecognizePattern) -> Option<&Ident> {
    match p {
        MatchRecognizePattern::Symbol(MatchRecognizeSymbol::Named(i))
        | MatchRecognizePattern::Exclude(MatchRecognizeSymbol::Named(i)) => Some(i),
        MatchRecognizePattern::Symbol(_) | MatchRecognizePattern::Exclude(_) => None,
        MatchRecognizePattern::Permute(symbols) => symbols.iter().find_map(|s| match s {
            MatchRecognizeSymbol::Named(i) => Some(i),
            _ => None,
        }),
        MatchRecognizePattern::Concat(ps) | MatchRecognizePattern::Alternation(ps) => {
            ps.iter().find_map(first_ident)
        }
        MatchRecognizePattern::Group(p) | MatchRecognizePattern::Repetition(p, _) => first_ident(p),
    }
}

fn bounds(q: &RepetitionQuantifier) -> (u32, Option<u32>) {
    match *q {
        RepetitionQuantifier::ZeroOrMore => (0, None),
        RepetitionQuantifier::OneOrMore => (1, None),
        RepetitionQuantifier::AtMostOne => (0, Some(1)),
        RepetitionQuantifier::Exactly(n) => (n, Some(n)),
        RepetitionQuantifier::AtLeast(n) => (n, None),
        RepetitionQuantifier::AtMost(m) => (0, Some(m)),
        RepetitionQuantifier::Range(n, m) => (n, Some(m)),
    }
}

/// Compiles sqlparser's pattern, refusing what Magnetar does not run (naming it and its
/// place). `location` is the PATTERN clause's, for errors without a symbol to point at.
pub fn compile(p: &MatchRecognizePattern, location: Option<Location>) -> Result<Pattern> {
    let mut pattern = Pattern {
        variables: Vec::new(),
        written: Vec::new(),
        elements: Vec::new(),
    };
    flatten(p, &mut pattern, location)?;
    if pattern.elements.is_empty() {
        return Err(SqlError::unsupported("an empty PATTERN", location));
    }
    if let Some(why) = refusal(&pattern) {
        return Err(SqlError::unsupported(why, location));
    }
    Ok(pattern)
}

fn refuse(what: &str, p: &MatchRecognizePattern, location: Option<Location>) -> SqlError {
    SqlError::unsupported(
        format!("{what} in a MATCH_RECOGNIZE PATTERN (Flink does not run it either)"),
        first_ident(p).and_then(at).or(location),
    )
}

fn flatten(p: &MatchRecognizePattern, out: &mut Pattern, location: Option<Location>) -> Result<()> {
    match p {
        MatchRecognizePattern::Concat(parts) => {
            for part in parts {
                flatten(part, out, location)?;
            }
            Ok(())
        }
        MatchRecognizePattern::Group(inner) => flatten(inner, out, location),
        MatchRecognizePattern::Symbol(MatchRecognizeSymbol::Named(ident)) => {
            push(out, ident, (1, Some(1)), true)
        }
        MatchRecognizePattern::Repetition(inner, q) => {
            // `A+?` reaches us as `(A+)?` without the group: the reluctant form.
            let (inner, q, greedy) = match inner.as_ref() {
                MatchRecognizePattern::Repetition(base, q_inner)
                    if *q == RepetitionQuantifier::AtMostOne =>
                {
                    (base.as_ref(), q_inner, false)
                }
                other => (other, q, true),
            };
            let (min, max) = bounds(q);
            match inner {
                MatchRecognizePattern::Symbol(MatchRecognizeSymbol::Named(ident)) => {
                    if let Some(m) = max
                        && (m < min || m == 0)
                    {
                        return Err(SqlError::unsupported(
                            format!("the quantifier {{{min},{m}}} matches no rows"),
                            at(ident),
                        ));
                    }
                    push(out, ident, (min, max), greedy)
                }
                MatchRecognizePattern::Repetition(..) => Err(refuse(
                    "a quantifier on a quantified variable",
                    inner,
                    location,
                )),
                _ => Err(refuse(
                    "a quantifier on a group of variables",
                    inner,
                    location,
                )),
            }
        }
        MatchRecognizePattern::Symbol(MatchRecognizeSymbol::Start) => {
            Err(refuse("the partition start anchor ^", p, location))
        }
        MatchRecognizePattern::Symbol(MatchRecognizeSymbol::End) => {
            Err(refuse("the partition end anchor $", p, location))
        }
        MatchRecognizePattern::Exclude(_) => Err(refuse("an exclusion {- -}", p, location)),
        MatchRecognizePattern::Permute(_) => Err(refuse("PERMUTE", p, location)),
        MatchRecognizePattern::Alternation(_) => Err(refuse("alternation (|)", p, location)),
    }
}

fn push(
    out: &mut Pattern,
    ident: &Ident,
    (min, max): (u32, Option<u32>),
    greedy: bool,
) -> Result<()> {
    let name = ident_name(ident);
    if out.var(&name).is_some() {
        return Err(SqlError::unsupported(
            format!(
                "the pattern variable {} appears twice in the PATTERN (Flink does not run it either)",
                ident.value
            ),
            at(ident),
        ));
    }
    out.variables.push(name);
    out.written.push(ident.value.clone());
    out.elements.push(Quantified {
        var: VarId(out.variables.len() - 1),
        min,
        max,
        greedy,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(bounds: &[(u32, Option<u32>, bool)]) -> Pattern {
        Pattern::of_bounds(bounds)
    }

    #[test]
    fn flinks_refusals() {
        assert!(refusal(&elements(&[(0, None, false)])).is_some());
        assert!(refusal(&elements(&[(1, Some(1), true), (1, None, true)])).is_some());
        // Flink refuses an optional element after a greedy one; Magnetar runs it (the guard
        // of the greedy element holds on every edge of the optional one).
        assert!(
            refusal(&elements(&[
                (1, None, true),
                (0, Some(1), true),
                (1, Some(1), true)
            ]))
            .is_none()
        );
        assert!(
            refusal(&elements(&[
                (1, None, false),
                (0, Some(1), true),
                (1, Some(1), true)
            ]))
            .is_none()
        );
        assert!(refusal(&elements(&[(1, Some(1), true), (1, None, false)])).is_none());
        assert!(refusal(&elements(&[(1, Some(1), true), (2, Some(2), true)])).is_none());
    }
}
