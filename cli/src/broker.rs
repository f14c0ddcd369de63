//! The embedded broker: a pulsar-lite process started when no service URL is given.

use std::path::Path;

use anyhow::{Context, Result};
use magnetar::sql::statement::Statement;
use magnetar_connectors::pulsar::{LiteOptions, PulsarLite};

/// Whether running script `sql` needs the default broker: it creates a Pulsar table without
/// a `'service-url'` of its own before any `SET 'pulsar.service-url'`. A script that does not
/// parse gets one, so that its errors are the engine's, not a missing broker's.
pub fn script_needs_broker(sql: &str) -> bool {
    let Ok(statements) = magnetar::sql::split_statements(sql) else {
        return true;
    };
    for statement in statements {
        match magnetar::sql::parse_statement(&statement.text) {
            Err(_) => return true,
            Ok(Statement::Set { key, .. }) if key == "pulsar.service-url" => return false,
            Ok(Statement::CreateTable(create)) => {
                let option = |key: &str| create.options.iter().find(|o| o.key == key);
                let pulsar = option("connector")
                    .is_some_and(|o| o.value.trim().eq_ignore_ascii_case("pulsar"));
                if pulsar && option("service-url").is_none() {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Starts pulsar-lite with its data under `data_dir/broker`; says so in one line on stderr.
pub async fn start_embedded(data_dir: &Path) -> Result<PulsarLite> {
    let dir = data_dir.join("broker");
    let broker = PulsarLite::start(LiteOptions {
        data_dir: dir.clone(),
        ..LiteOptions::default()
    })
    .await
    .context("no --service-url given and the embedded broker could not start")?;
    eprintln!(
        "Started an embedded pulsar-lite broker at {} (data in {}).",
        broker.service_url(),
        dir.display()
    );
    Ok(broker)
}

#[cfg(test)]
mod tests {
    use super::script_needs_broker;

    #[test]
    fn only_pulsar_tables_without_a_service_url_need_the_broker() {
        assert!(!script_needs_broker("SELECT 1; SHOW TABLES;"));
        assert!(!script_needs_broker(
            "CREATE TABLE f (n BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/x');"
        ));
        assert!(!script_needs_broker(
            "CREATE TABLE t (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = 't', 'service-url' = 'pulsar://h:1');"
        ));
        assert!(!script_needs_broker(
            "SET 'pulsar.service-url' = 'pulsar://h:1'; CREATE TABLE t (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = 't');"
        ));
        assert!(script_needs_broker(
            "SELECT 1; CREATE TABLE t (n BIGINT) WITH ('connector' = 'Pulsar', 'topics' = 't');"
        ));
        assert!(script_needs_broker("SELEC oops"));
    }
}
