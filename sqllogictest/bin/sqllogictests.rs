//! Tests of the `.slt` files in `sqllogictest/test_files`, each run with its own pulsar-lite
//! broker: every file at parallelism 1, 2 and 4 (`<file>::p1`, ...), and the files of
//! continuous jobs also in checkpoint-restore mode at each parallelism
//! (`<file>::checkpoint_restore::p2`) and restored at other parallelisms than they ran at
//! (`<file>::checkpoint_restore::rescaled`: run at 2, restored at 1, then 3, then 1...). Runs
//! under `cargo test` and `cargo nextest` (libtest-compatible).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use libtest_mimic::{Arguments, Failed, Trial};
use magnetar::{Clock, Engine, EngineConfig};
use magnetar_sqllogictest::{CHECKPOINT_RESTORE_LABEL, MagnetarDb};
use magnetar_tests::TestBroker;

/// Files of continuous jobs, run a second time in checkpoint-restore mode.
const STREAMING_FILES: &[&str] = &[
    "streaming",
    "windows",
    "union",
    "match_recognize",
    "interval_join",
    "window_join",
];

/// The parallelisms every file runs at.
const PARALLELISMS: &[usize] = &[1, 2, 4];

/// How a file runs.
#[derive(Clone, Debug)]
struct Mode {
    parallelism: usize,
    /// Checkpoint-restore mode, restoring at these parallelisms in turn (empty: the same).
    restore: Option<Vec<usize>>,
}

fn run_file(path: &Path, mode: Mode) -> Result<(), Failed> {
    let restore = mode.restore.is_some();
    // Engine futures are deep in debug builds: run the file on a worker with a roomy stack
    // rather than on the test thread's.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 << 20)
        .build()
        .map_err(|e| Failed::from(format!("runtime: {e}")))?;
    let path = path.to_path_buf();
    let file = runtime.spawn(async move {
        let path = path.as_path();
        let broker = TestBroker::start().await;
        let url = broker.service_url();
        let data = tempfile::tempdir().map_err(|e| Failed::from(format!("tempdir: {e}")))?;
        let data_dir = data.path().to_path_buf();
        let restores = Arc::new(AtomicUsize::new(0));
        let counter = restores.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let url = url.clone();
            let data_dir = data_dir.clone();
            let counter = counter.clone();
            let mode = mode.clone();
            async move {
                let (clock, manual) = Clock::manual();
                let config = EngineConfig {
                    clock,
                    data_dir: Some(data_dir),
                    parallelism: Some(mode.parallelism),
                    ..EngineConfig::with_service_url(url)
                };
                let db = MagnetarDb::new(Engine::new(config), Some(manual));
                match mode.restore {
                    Some(rescale) => db.with_checkpoint_restore(counter, rescale).await,
                    None => Ok(db),
                }
            }
        });
        if restore {
            runner.add_label(CHECKPOINT_RESTORE_LABEL);
        }
        let result = runner.run_file_async(path).await;
        drop(broker);
        result.map_err(|e| Failed::from(format!("{}", e.display(true))))?;
        if restore && restores.load(Ordering::Relaxed) == 0 {
            return Err(Failed::from(
                "no job reached two checkpoints: the restore mode tested nothing",
            ));
        }
        Ok(())
    });
    runtime
        .block_on(file)
        .map_err(|e| Failed::from(format!("the file's task failed: {e}")))?
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
        .flat_map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut modes: Vec<(String, Mode)> = PARALLELISMS
                .iter()
                .map(|&p| {
                    (
                        format!("{name}::p{p}"),
                        Mode {
                            parallelism: p,
                            restore: None,
                        },
                    )
                })
                .collect();
            if STREAMING_FILES.contains(&name.as_str()) {
                modes.extend(PARALLELISMS.iter().map(|&p| {
                    (
                        format!("{name}::checkpoint_restore::p{p}"),
                        Mode {
                            parallelism: p,
                            restore: Some(Vec::new()),
                        },
                    )
                }));
                modes.push((
                    format!("{name}::checkpoint_restore::rescaled"),
                    Mode {
                        parallelism: 2,
                        restore: Some(vec![1, 3]),
                    },
                ));
            }
            modes
                .into_iter()
                .map(|(trial, mode)| {
                    let path = path.clone();
                    Trial::test(trial, move || run_file(&path, mode))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
