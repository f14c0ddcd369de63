//! The shell's history file: in the user's data directory, readable by its owner only
//! (statements may carry credentials in `WITH` options).

use std::path::Path;

use rustyline::Editor;
use rustyline::history::DefaultHistory;

/// Loads the history, if there is one.
pub fn load<H: rustyline::Helper>(editor: &mut Editor<H, DefaultHistory>, path: &Path) {
    let _ = editor.load_history(path);
}

/// Saves the history, creating the file owner-only before anything is written to it.
pub fn save<H: rustyline::Helper>(editor: &mut Editor<H, DefaultHistory>, path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if create_owner_only(path).is_ok()
        && let Err(e) = editor.save_history(path)
    {
        tracing::debug!("cannot save history to {}: {e}", path.display());
    }
}

fn create_owner_only(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        options.open(path)?;
        // An older file may have been created with wider permissions.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}
