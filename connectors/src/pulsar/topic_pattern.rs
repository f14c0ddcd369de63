//! Topic patterns (`persistent://public/default/click-.*`): a regular expression over the
//! full names of one namespace's topics, matched whole as the Java client's pattern consumer
//! matches it.

use std::fmt;

use regex::Regex;

use super::topic::TopicName;
use crate::error::{ConnectorError, Result};

/// Characters that make a `topics` entry a pattern: none of them is usual in a topic name.
const REGEX_CHARACTERS: &[char] = &[
    '*', '+', '?', '[', ']', '(', ')', '{', '}', '|', '\\', '^', '$',
];

/// A pattern over the topics of one namespace.
#[derive(Clone, Debug)]
pub struct TopicPattern {
    persistent: bool,
    tenant: String,
    namespace: String,
    /// The pattern as written, normalised to a full name.
    text: String,
    /// `^(?:text)$`.
    regex: Regex,
}

impl PartialEq for TopicPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TopicPattern {
    /// Whether a `topics` entry is a pattern rather than a name.
    pub fn looks_like_pattern(text: &str) -> bool {
        text.contains(REGEX_CHARACTERS)
    }

    /// Parses `persistent://tenant/namespace/<regex>`, `tenant/namespace/<regex>` or a bare
    /// `<regex>` (in `public/default`). The namespace part is literal.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: String| ConnectorError::InvalidTopic {
            topic: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        let (persistent, rest) = if let Some(rest) = trimmed.strip_prefix("persistent://") {
            (true, rest)
        } else if let Some(rest) = trimmed.strip_prefix("non-persistent://") {
            (false, rest)
        } else {
            (true, trimmed)
        };
        let (tenant, namespace, local) = match rest.splitn(3, '/').collect::<Vec<_>>()[..] {
            [local] if !trimmed.contains("://") => ("public", "default", local),
            [tenant, namespace, local] => (tenant, namespace, local),
            _ => {
                return Err(invalid(
                    "a topic pattern is persistent://tenant/namespace/<regex>, tenant/namespace/<regex> or <regex>".into(),
                ));
            }
        };
        if tenant.is_empty()
            || namespace.is_empty()
            || local.is_empty()
            || Self::looks_like_pattern(tenant)
            || Self::looks_like_pattern(namespace)
        {
            return Err(invalid(
                "the tenant and namespace of a topic pattern are names, not patterns".into(),
            ));
        }
        let domain = if persistent {
            "persistent"
        } else {
            "non-persistent"
        };
        let text = format!("{domain}://{tenant}/{namespace}/{local}");
        // The namespace part literally, the local part as written (alternations stay inside).
        let regex = Regex::new(&format!(
            "^{}(?:{local})$",
            regex::escape(&text[..text.len() - local.len()])
        ))
        .map_err(|e| invalid(format!("not a regular expression: {e}")))?;
        Ok(Self {
            persistent,
            tenant: tenant.to_string(),
            namespace: namespace.to_string(),
            text,
            regex,
        })
    }

    /// `tenant/namespace`, as the namespace topic lists name it.
    pub fn namespace(&self) -> String {
        format!("{}/{}", self.tenant, self.namespace)
    }

    /// Whether the pattern is over persistent topics.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// The topics among `names` (full names, partitions included, as a namespace's topic list
    /// gives them) that match, as their base topics (a partition stands for its topic),
    /// sorted and without repeats.
    pub fn matching(&self, names: &[String]) -> Vec<TopicName> {
        let mut out: Vec<TopicName> = names
            .iter()
            .filter_map(|n| TopicName::parse(n).ok())
            .map(|t| t.base_topic())
            .filter(|t| self.regex.is_match(&t.to_string()))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_names_of_their_namespace() {
        let p = TopicPattern::parse("persistent://public/default/click-.*").expect("pattern");
        let names: Vec<String> = [
            "persistent://public/default/click-a",
            "persistent://public/default/click-b-partition-0",
            "persistent://public/default/click-b-partition-1",
            "persistent://public/default/view-a",
            "persistent://public/other/click-c",
            "persistent://public/default/xclick-d",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let found: Vec<String> = p.matching(&names).iter().map(|t| t.to_string()).collect();
        assert_eq!(
            found,
            [
                "persistent://public/default/click-a",
                "persistent://public/default/click-b"
            ]
        );
        assert_eq!(p.namespace(), "public/default");
        assert!(TopicPattern::looks_like_pattern("click-.*"));
        assert!(!TopicPattern::looks_like_pattern(
            "persistent://public/default/click.v2"
        ));
        let either = TopicPattern::parse("click-a|click-b").expect("alternation");
        let found = either.matching(&names);
        assert_eq!(found.len(), 2, "{found:?}");
        let short = TopicPattern::parse("click-[0-9]+").expect("short");
        assert_eq!(
            short.to_string(),
            "persistent://public/default/click-[0-9]+"
        );
        assert!(TopicPattern::parse("persistent://public/def.*/x").is_err());
        assert!(TopicPattern::parse("persistent://public/default/click-(").is_err());
    }
}
