//! Drives the real `magnetar` binary in a pseudo-terminal and reads the screen as a
//! terminal would show it (`vt100` interprets the escape sequences), so tests see line
//! editing, completion and in-place redraws the way a user does.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

/// Screen rows and columns of the test terminal.
pub const ROWS: u16 = 40;
/// Screen columns.
pub const COLUMNS: u16 = 140;

/// The screen, updated by a reader thread; waiters are woken on every change.
struct Screen {
    parser: Mutex<vt100::Parser>,
    changed: Condvar,
    closed: Mutex<bool>,
}

/// A `magnetar` process in a pseudo-terminal.
pub struct Terminal {
    screen: Arc<Screen>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
}

impl Terminal {
    /// Starts `magnetar args...` with `env` set, in `cwd`.
    pub fn spawn(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Terminal {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLUMNS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut command = CommandBuilder::new(crate::magnetar_binary());
        command.args(args);
        command.cwd(cwd);
        command.env("TERM", "xterm-256color");
        command.env_remove("NO_COLOR");
        for (k, v) in env {
            command.env(k, v);
        }
        let child = pty.slave.spawn_command(command).expect("start magnetar");
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let writer = pty.master.take_writer().expect("pty writer");
        let screen = Arc::new(Screen {
            parser: Mutex::new(vt100::Parser::new(ROWS, COLUMNS, 1000)),
            changed: Condvar::new(),
            closed: Mutex::new(false),
        });
        let feed = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        feed.parser
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .process(&buf[..n]);
                        feed.changed.notify_all();
                    }
                }
            }
            *feed.closed.lock().unwrap_or_else(|p| p.into_inner()) = true;
            feed.changed.notify_all();
        });
        Terminal {
            screen,
            writer,
            child,
            _master: pty.master,
        }
    }

    /// Types `keys` (`\r` is Enter, `\t` Tab, `\x03` Ctrl-C, `\x04` Ctrl-D).
    pub fn send(&mut self, keys: &str) {
        self.writer
            .write_all(keys.as_bytes())
            .expect("write to the terminal");
        self.writer.flush().expect("flush the terminal");
    }

    /// The screen's text now (without colours).
    pub fn contents(&self) -> String {
        self.screen
            .parser
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .screen()
            .contents()
    }

    /// Waits until the screen satisfies `check` (woken by each output of the program),
    /// failing with the screen after `timeout`. Returns the screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        let mut parser = self.screen.parser.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let text = parser.screen().contents();
            if check(&text) {
                return text;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out after {timeout:?} waiting for {what}; the screen:\n{text}"
            );
            // The reader thread notifies on every chunk of output; the timeout bounds the
            // wait when the program prints nothing more.
            parser = self
                .screen
                .changed
                .wait_timeout(parser, (deadline - now).min(Duration::from_millis(500)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until the screen shows `text`.
    pub fn wait_for_text(&self, text: &str, timeout: Duration) -> String {
        self.wait_for(&format!("{text:?}"), timeout, |s| s.contains(text))
    }

    /// Kills the program with SIGKILL, as a crash or `kill -9` would, and reaps it.
    pub fn kill_9(&mut self) {
        let pid = self.child.process_id().expect("the program runs");
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL {pid}");
        let _ = self.child.wait();
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> u32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "magnetar did not exit within {timeout:?}; the screen:\n{}",
                self.contents()
            );
            // Exit is only observable by polling the child; the screen reader wakes us too.
            let parser = self.screen.parser.lock().unwrap_or_else(|p| p.into_inner());
            let _ = self
                .screen
                .changed
                .wait_timeout(parser, Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
