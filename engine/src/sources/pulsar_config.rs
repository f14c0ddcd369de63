//! A Pulsar table's options as reader settings.

use std::sync::Arc;

use magnetar_connectors::pulsar::{
    PositionStore, SourceConfig, StartPosition, StopPosition, SubscriptionType,
};
use magnetar_sql::catalog::TableDef;

/// The reader settings of a table (a table without Pulsar options reads nothing).
pub fn source_config(
    table: &TableDef,
    receiver_queue_size: u32,
    positions: Arc<dyn PositionStore>,
) -> SourceConfig {
    match table.pulsar() {
        Some(o) => SourceConfig {
            topics: o.topics.clone(),
            subscription_name: o.subscription_name.clone(),
            subscription_type: o.subscription_type,
            start: o.start,
            stop: o.stop,
            receiver_queue_size,
            consumer_name: None,
            positions: Some(positions),
            resume: Default::default(),
            tiered: None,
            share: None,
            discovery: None,
        },
        None => SourceConfig {
            topics: Vec::new(),
            subscription_name: None,
            subscription_type: SubscriptionType::Exclusive,
            start: StartPosition::Earliest,
            stop: StopPosition::Latest,
            receiver_queue_size,
            consumer_name: None,
            positions: None,
            resume: Default::default(),
            tiered: None,
            share: None,
            discovery: None,
        },
    }
}
