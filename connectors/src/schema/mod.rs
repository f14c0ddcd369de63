//! Pulsar schemas: the registry's description of a topic's messages, how to fetch it, and
//! the Arrow columns it makes.

pub mod arrow_columns;
pub mod binary;
pub mod decoder;
pub mod info;
pub mod registry;

pub use arrow_columns::columns_of;
pub use decoder::decoder_for_schema;
pub use info::{KeyValueEncoding, KeyValueSchema, SchemaInfo, SchemaKind, SchemaVersion};
pub use registry::SchemaRegistry;
