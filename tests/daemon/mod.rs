//! `recoverydesk run` as a child process for the tests that drive the
//! daemon (signals, logs, the real mail stack): stderr goes to a file, and
//! dropping the handle stops it (SIGTERM, then SIGKILL after 10 s).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The built binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_recoverydesk");

/// A running daemon and the file its log goes to.
pub struct Daemon {
    /// The child process.
    pub child: Child,
    /// Where its stderr (the log) is written.
    pub stderr: PathBuf,
}

impl Daemon {
    /// Waits until the daemon serves its admin socket: before that, a CLI
    /// command would open the store itself and could take the lock the
    /// starting daemon needs.
    pub fn wait_for_socket(&mut self, socket: &Path, within: Duration) {
        let deadline = Instant::now() + within;
        while !socket.exists() {
            self.assert_running();
            assert!(Instant::now() < deadline, "no admin socket: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `recoverydesk --config CONFIG GLOBAL… run`, logging to `stderr`.
    pub fn start(config: &Path, global: &[&str], stderr: PathBuf) -> Daemon {
        let log = std::fs::File::create(&stderr).expect("create stderr log");
        let child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(global)
            .arg("run")
            .env_remove("RECOVERYDESK_CONFIG")
            .env("RECOVERYDESK_LOG", "warn,recoverydesk=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start recoverydesk run");
        Daemon { child, stderr }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Fails the test, with the log, if the daemon has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("recoverydesk run exited ({status}):\n{}", self.log());
        }
    }

    /// Sends a signal by name with `kill` (the crate has no libc dependency).
    pub fn signal(&self, name: &str) -> bool {
        Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One CLI command on the config in `root` (no daemon needed).
pub fn cli(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(root.join("config.toml"))
        .args(args)
        .env_remove("RECOVERYDESK_CONFIG")
        .output()
        .unwrap()
}

/// Its stdout, after checking that it succeeded.
pub fn ok_text(root: &Path, args: &[&str]) -> String {
    let out = cli(root, args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
