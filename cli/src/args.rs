//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Streaming SQL over Apache Pulsar topics.
#[derive(Debug, Parser)]
#[command(name = "magnetar", version, about)]
pub struct Args {
    /// Run the statements of this SQL file, then wait while the jobs it started run.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "execute"
    )]
    pub file: Option<PathBuf>,

    /// Run these statements, then wait while the jobs they started run.
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    pub execute: Option<String>,

    /// Run this SQL file first, then continue interactively.
    #[arg(short = 'i', long = "init", value_name = "FILE")]
    pub init: Option<PathBuf>,

    /// Broker URL for tables without 'service-url' (default: $MAGNETAR_SERVICE_URL, or an
    /// embedded pulsar-lite broker).
    #[arg(long, value_name = "URL")]
    pub service_url: Option<String>,

    /// A file holding a Pulsar token: tables that set no 'pulsar.client.*' option send it
    /// (Pulsar's AuthenticationToken with file:..., read again at every connect).
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Pulsar's client configuration file (conf/client.conf): its brokerServiceUrl, authPlugin,
    /// authParams, tlsTrustCertsFilePath and tlsEnableHostnameVerification become this
    /// session's defaults.
    #[arg(long, value_name = "FILE")]
    pub pulsar_conf: Option<PathBuf>,

    /// Where Magnetar keeps history and the embedded broker's data.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// How query results are printed.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Log verbosity (error, warn, info, debug, trace); also $RUST_LOG.
    #[arg(long, default_value = "warn")]
    pub log: String,

    /// Something other than SQL.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a broker, generate click events, run cli/examples/clickstream.sql and show the
    /// fraud alerts it writes; then shut everything down.
    Demo {
        /// Click events to generate.
        #[arg(long, default_value_t = 5000)]
        events: usize,
    },
}

/// Output formats of query results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Boxed tables.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per row.
    Json,
}
