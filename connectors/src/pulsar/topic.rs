//! Pulsar topic names, normalised the way Pulsar's clients do.

use std::fmt;

use crate::error::{ConnectorError, Result};

/// A fully qualified topic name such as `persistent://public/default/clicks`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName {
    persistent: bool,
    tenant: String,
    namespace: String,
    local: String,
}

impl TopicName {
    /// Parses a full name, `tenant/namespace/topic`, or a bare `topic` (in `public/default`).
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: &str| ConnectorError::InvalidTopic {
            topic: text.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        let (persistent, rest) = if let Some(rest) = trimmed.strip_prefix("persistent://") {
            (true, rest)
        } else if let Some(rest) = trimmed.strip_prefix("non-persistent://") {
            (false, rest)
        } else if trimmed.contains("://") {
            return Err(invalid(
                "the domain must be persistent:// or non-persistent://",
            ));
        } else {
            (true, trimmed)
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let (tenant, namespace, local) = match parts.as_slice() {
            [local] if !trimmed.contains("://") => ("public", "default", *local),
            [tenant, namespace, local] => (*tenant, *namespace, *local),
            _ => {
                return Err(invalid(
                    "expected persistent://tenant/namespace/topic, tenant/namespace/topic or topic",
                ));
            }
        };
        if tenant.is_empty() || namespace.is_empty() || local.is_empty() {
            return Err(invalid("tenant, namespace and topic must not be empty"));
        }
        Ok(Self {
            persistent,
            tenant: tenant.to_string(),
            namespace: namespace.to_string(),
            local: local.to_string(),
        })
    }

    /// The name of partition `index` of this (partitioned) topic.
    pub fn partition(&self, index: u32) -> TopicName {
        TopicName {
            local: format!("{}-partition-{index}", self.local),
            ..self.clone()
        }
    }

    /// The topic's local name (the part after the namespace).
    pub fn local_name(&self) -> &str {
        &self.local
    }

    /// The tenant and the namespace.
    pub fn tenant_and_namespace(&self) -> (&str, &str) {
        (&self.tenant, &self.namespace)
    }

    /// The topic a partition belongs to (the topic itself when it is not a partition).
    pub fn base_topic(&self) -> TopicName {
        TopicName {
            local: self.base_local_name().to_string(),
            ..self.clone()
        }
    }

    /// The local name without a `-partition-N` suffix: the topic a partition belongs to.
    pub fn base_local_name(&self) -> &str {
        match self.local.rsplit_once("-partition-") {
            Some((base, n)) if !base.is_empty() && n.parse::<u32>().is_ok() => base,
            _ => &self.local,
        }
    }

    /// `tenant/namespace`.
    pub fn namespace(&self) -> String {
        format!("{}/{}", self.tenant, self.namespace)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = if self.persistent {
            "persistent"
        } else {
            "non-persistent"
        };
        write!(
            f,
            "{domain}://{}/{}/{}",
            self.tenant, self.namespace, self.local
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_short_forms() {
        assert_eq!(
            TopicName::parse("clicks").expect("valid").to_string(),
            "persistent://public/default/clicks"
        );
        assert_eq!(
            TopicName::parse("acme/web/clicks")
                .expect("valid")
                .to_string(),
            "persistent://acme/web/clicks"
        );
        let full = TopicName::parse("non-persistent://a/b/c").expect("valid");
        assert_eq!(full.to_string(), "non-persistent://a/b/c");
        assert_eq!(
            full.partition(3).to_string(),
            "non-persistent://a/b/c-partition-3"
        );
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["http://a/b/c", "a/b", "persistent://a/b", "a//c", ""] {
            assert!(TopicName::parse(bad).is_err(), "{bad}");
        }
    }
}
