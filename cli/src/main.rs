//! `magnetar`: the SQL shell, script runner and demo.

mod args;
mod backfill_bar;
mod broker;
mod client_conf;
mod demo;
mod render;
mod repl;
mod script;
mod views;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use magnetar::{Engine, EngineConfig};

use args::{Args, Command};

fn main() -> ExitCode {
    let args = Args::parse();
    // pulsar-rs logs its internals (reconnect attempts, closes racing a broker shutdown) at
    // warning and error level; Magnetar reports what matters itself. RUST_LOG shows them.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(format!("{},pulsar=off", args.log)));
    // sqlparser logs every statement it parses, option values (secrets) included, at debug
    // level: never shown, whatever the level asked for.
    let filter = match "sqlparser=warn".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match run(args, &runtime) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            1
        }
    };
    runtime.shutdown_timeout(Duration::from_secs(5));
    ExitCode::from(code as u8)
}

fn data_dir(args: &Args) -> PathBuf {
    args.data_dir
        .clone()
        .or_else(|| dirs::data_dir().map(|d| d.join("magnetar")))
        .unwrap_or_else(|| PathBuf::from(".magnetar"))
}

fn run(args: Args, runtime: &tokio::runtime::Runtime) -> Result<i32> {
    if let Some(Command::Demo { events }) = args.command {
        return runtime.block_on(demo::run(events, args.format));
    }
    let data_dir = data_dir(&args);
    let conf = match &args.pulsar_conf {
        Some(path) => client_conf::read(path)?,
        None => client_conf::ClientConf::default(),
    };
    let mut client_settings = conf.settings;
    if let Some(path) = &args.auth_token_file {
        client_settings.retain(|(k, _)| !k.starts_with("pulsar.client.auth"));
        client_settings.extend(client_conf::token_file_settings(path)?);
    }
    let service_url = args
        .service_url
        .clone()
        .or_else(|| {
            std::env::var("MAGNETAR_SERVICE_URL")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .or(conf
            .service_url
            .map(|u| u.trim_end_matches('/').to_string()));
    // What runs: a script (file, -e, or standard input) or the interactive shell.
    let script: Option<(String, Option<String>)> = if let Some(file) = &args.file {
        let sql = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        Some((sql, Some(file.display().to_string())))
    } else if let Some(sql) = &args.execute {
        Some((sql.clone(), None))
    } else if !std::io::stdin().is_terminal() {
        // `magnetar < job.sql`: a script on standard input.
        let mut sql = String::new();
        std::io::stdin()
            .read_to_string(&mut sql)
            .context("cannot read standard input")?;
        Some((sql, Some("<stdin>".to_string())))
    } else {
        None
    };
    let init = match &args.init {
        Some(path) => Some((
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        )),
        None => None,
    };
    // The shell may need the broker at any statement; a script only if one of its Pulsar
    // tables names no service URL of its own.
    let needs_broker = match &script {
        None => true,
        Some((sql, _)) => {
            init.as_ref()
                .is_some_and(|(sql, _)| broker::script_needs_broker(sql))
                || broker::script_needs_broker(sql)
        }
    };
    let broker = match &service_url {
        None if needs_broker => Some(runtime.block_on(broker::start_embedded(&data_dir))?),
        _ => None,
    };
    let url = service_url.or_else(|| broker.as_ref().map(|b| b.service_url()));
    let engine = Engine::new(EngineConfig {
        service_url: url,
        data_dir: Some(data_dir.clone()),
        ..Default::default()
    });
    for (key, value) in &client_settings {
        engine
            .set(key, value)
            .with_context(|| format!("cannot apply '{key}'"))?;
    }

    if let Some((sql, name)) = &init {
        let code = runtime.block_on(script::run_statements(
            &engine,
            sql,
            Some(name),
            args.format,
        ))?;
        if code != script::exit::OK {
            return Ok(code);
        }
    }
    let code = match &script {
        Some((sql, name)) => runtime.block_on(script::run_script(
            &engine,
            sql,
            name.as_deref(),
            args.format,
        ))?,
        None => repl::run(&engine, runtime, &data_dir.join("history"), args.format)?,
    };
    drop(broker);
    Ok(code)
}
