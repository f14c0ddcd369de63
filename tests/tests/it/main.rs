//! End-to-end tests against a real pulsar-lite broker and the official Python client.

mod broker_facts;
mod checkpoint_store_s3;
mod cli;
mod custom_connector;
mod delayed_delivery;
mod e2e_checkpoints;
mod e2e_graph;
mod e2e_insert;
mod e2e_interval_join;
mod e2e_match_recognize;
mod e2e_schemas;
mod e2e_windows;
mod embedded_broker;
mod embedding;
mod errors;
mod hostile_input;
mod positions;
mod queries;
mod secrets;
mod secure_connections;
mod show_jobs;
mod sink_compression;
mod terminal;
mod tiered_storage;
mod topic_patterns;
