//! The fuzzing harness: a counting global allocator, a panic-catching case runner that
//! reports the target, the seed and the input, corpus replay, and the case budget.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use crate::rng::Rng;

/// The system allocator, recording the largest single request and the bytes requested in
/// all since the last reset (allocations of every thread: tokio workers included).
pub struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);

fn record(size: usize) {
    LARGEST.fetch_max(size, Ordering::Relaxed);
    TOTAL.fetch_add(size, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's own arguments, so `System`'s
// guarantees hold unchanged; the counters are lock-free atomics (no allocation, no reentry).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's `layout` contract is passed on to `System` unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through it) with
        // `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: as for `dealloc`, and the caller guarantees `new_size` is valid for it.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The house bound on one allocation: 64 MiB plus 2048 bytes per input byte.
pub fn house_bound(input_len: usize) -> usize {
    (64 << 20) + 2048 * input_len
}

/// Bytes allocated in all by one case (every allocation, freed or not): an expansion that is
/// exponential in the input (a schema whose named types are referenced many times over)
/// shows up here long before it would exhaust memory.
pub fn total_bound(input_len: usize) -> usize {
    (1 << 30) + 65_536 * input_len
}

static PANICKED: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Installs a panic hook noting that some thread panicked (tokio tasks included: their
/// panics are caught by the runtime and would otherwise only show as a closed channel).
fn install_hook() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            default(info);
        }));
    });
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Fuzz tests run one at a time within the binary: the allocation counters are global.
/// (nextest runs each test in its own process, so there they still run in parallel.)
pub fn serial() -> MutexGuard<'static, ()> {
    install_hook();
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The first 200 bytes of an input, in hex.
pub fn hex(input: &[u8]) -> String {
    let shown: String = input.iter().take(200).map(|b| format!("{b:02x}")).collect();
    if input.len() > 200 {
        format!("{shown}… ({} bytes)", input.len())
    } else {
        shown
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".into())
}

/// Runs one case: `body` must not panic (on any thread), must not report a broken property,
/// and must stay within the allocation bounds for an input of `input.len()` bytes.
pub fn check_case(
    target: &str,
    label: &str,
    input: &[u8],
    largest_bound: usize,
    body: impl FnOnce() -> Result<(), String>,
) {
    PANICKED.store(false, Ordering::SeqCst);
    LARGEST.store(0, Ordering::SeqCst);
    TOTAL.store(0, Ordering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(body));
    let largest = LARGEST.load(Ordering::SeqCst);
    let total = TOTAL.load(Ordering::SeqCst);
    let failure = match outcome {
        Err(payload) => Some(format!("panicked: {}", panic_text(payload.as_ref()))),
        Ok(_) if PANICKED.load(Ordering::SeqCst) => {
            Some("a thread panicked (a spawned task?) and the panic was swallowed".into())
        }
        Ok(Err(broken)) => Some(format!("property broken: {broken}")),
        Ok(Ok(())) if largest > largest_bound => Some(format!(
            "allocated {largest} bytes at once, more than the {largest_bound}-byte bound for a \
             {}-byte input",
            input.len()
        )),
        Ok(Ok(())) if total > total_bound(input.len()) => Some(format!(
            "allocated {total} bytes in all, more than the {}-byte bound for a {}-byte input",
            total_bound(input.len()),
            input.len()
        )),
        Ok(Ok(())) => None,
    };
    if let Some(failure) = failure {
        let saved = if target.starts_with("self-test") {
            "(not saved: a self-test)".to_string()
        } else {
            save_failure(target, label, input)
        };
        panic!(
            "fuzz target '{target}', {label}: {failure}\ninput ({} bytes): {}\nsaved to {saved} \
             (copy it to connectors/tests/fuzz_corpus/{target}/ once fixed)",
            input.len(),
            hex(input)
        );
    }
}

fn save_failure(target: &str, label: &str, input: &[u8]) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let name: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = dir.join(format!("{target}-{name}.bin"));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not saved: {e})"),
    }
}

/// The saved inputs of `target` (`tests/fuzz_corpus/<target>/*.bin`), sorted by name.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target);
    let Ok(listing) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("corpus {}: {e}", p.display()));
            let name = p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            (name, bytes)
        })
        .collect()
}

/// A fuzz target: a name (its corpus directory), the function of the input bytes, and its
/// bound on one allocation.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]) -> Result<(), String>,
    pub bound: fn(usize) -> usize,
}

/// Cases per target: the built-in count, or `MAGNETAR_FUZZ_CASES` times it / 1000 for a
/// longer (still deterministic) local run, e.g. `MAGNETAR_FUZZ_CASES=20000` for 20×.
pub fn budget(cases: usize) -> usize {
    match std::env::var("MAGNETAR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(per_mille) => (cases * per_mille / 1000).max(1),
        None => cases,
    }
}

/// Replays the target's corpus, then `cases` generated inputs from seeds derived from
/// `base_seed`; `oracle` adds checks only the generator can make (round trips).
pub fn fuzz(
    target: &Target,
    base_seed: u64,
    cases: usize,
    mut generate: impl FnMut(&mut Rng) -> Vec<u8>,
) -> Duration {
    fuzz_with_oracle(target, base_seed, cases, |rng| (generate(rng), None))
}

/// A generated input and, when the generator knows what it must decode to, a check of that.
pub type Generated = (Vec<u8>, Option<Box<dyn FnOnce() -> Result<(), String>>>);

/// [`fuzz`] with a generator that may attach an oracle to a case.
pub fn fuzz_with_oracle(
    target: &Target,
    base_seed: u64,
    cases: usize,
    mut generate: impl FnMut(&mut Rng) -> Generated,
) -> Duration {
    let _serial = serial();
    let started = Instant::now();
    replay(target);
    let cases = budget(cases);
    for case in 0..cases as u64 {
        let seed = base_seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = Rng::new(seed);
        let (input, oracle) = generate(&mut rng);
        let label = format!("case {case} seed {seed:#018x}");
        if std::env::var_os("MAGNETAR_FUZZ_TRACE").is_some() {
            // The input about to run, for a case that kills the process (OOM, abort).
            let _ = save_failure(target.name, "last", &input);
            eprintln!("{}: {label} ({} bytes)", target.name, input.len());
        }
        check_case(
            target.name,
            &label,
            &input,
            (target.bound)(input.len()),
            || {
                (target.run)(&input)?;
                match oracle {
                    Some(oracle) => oracle(),
                    None => Ok(()),
                }
            },
        );
    }
    let took = started.elapsed();
    println!(
        "fuzz target {}: {} corpus inputs and {cases} generated cases in {took:.2?}",
        target.name,
        corpus(target.name).len()
    );
    took
}

/// Runs every saved input of the target.
pub fn replay(target: &Target) {
    for (name, input) in corpus(target.name) {
        check_case(
            target.name,
            &format!("corpus {name}"),
            &input,
            (target.bound)(input.len()),
            || (target.run)(&input),
        );
    }
}
