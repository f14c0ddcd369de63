//! One test per `.slt` file in `sqllogictest/test_files`, each with its own pulsar-lite
//! broker. Runs under `cargo test` and `cargo nextest` (libtest-compatible).

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use magnetar::{Clock, Engine, EngineConfig};
use magnetar_sqllogictest::MagnetarDb;
use magnetar_tests::TestBroker;

fn run_file(path: &Path) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failed::from(format!("runtime: {e}")))?;
    runtime.block_on(async {
        let broker = TestBroker::start().await;
        let url = broker.service_url();
        let mut runner = sqllogictest::Runner::new(move || {
            let url = url.clone();
            async move {
                let (clock, manual) = Clock::manual();
                let config = EngineConfig {
                    clock,
                    ..EngineConfig::with_service_url(url)
                };
                Ok(MagnetarDb::new(Engine::new(config), Some(manual)))
            }
        });
        let result = runner.run_file_async(path).await;
        drop(broker);
        result.map_err(|e| Failed::from(format!("{}", e.display(true))))
    })
}

fn main() {
    let args = Arguments::from_args();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_files");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "slt"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Trial::test(name, move || run_file(&path))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
