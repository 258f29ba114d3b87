//! The README's first command, as a newcomer runs it: `recoverydesk demo`
//! on a fresh folder shows both seed scenarios carried through the flow.

use std::process::Command;

#[test]
fn the_demo_runs_the_whole_flow_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .args(["demo", "--dir"])
        .arg(&demo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The 2FA seed: verified by the linked mailbox's "yes", now with staff, high priority (codes reset).
    let tfa = stdout
        .lines()
        .find(|l| l.contains("iineolineii"))
        .expect("2FA case listed");
    assert!(
        tfa.contains("awaiting_staff") && tfa.contains("high"),
        "{tfa}"
    );
    // The password seed: complete after the reply, challenge sent, normal priority.
    let pw = stdout
        .lines()
        .find(|l| l.contains("pwforgetter"))
        .expect("password case listed");
    assert!(
        pw.contains("awaiting_verification") && pw.contains("normal"),
        "{pw}"
    );
    assert!(stdout.contains("replies written to"), "{stdout}");
    let emls = std::fs::read_dir(demo.join("outbox")).unwrap().count();
    assert!(
        emls >= 10,
        "acks, challenges, notifications, relay: {emls} files"
    );

    // A second run on the same folder refuses to overwrite it (exit 2, says why).
    let again = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .args(["demo", "--dir"])
        .arg(&demo)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // The "how to run it again" hint works: `once` on the demo config is a clean pass.
    let once = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .arg("--config")
        .arg(demo.join("config.toml"))
        .arg("once")
        .output()
        .unwrap();
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert!(String::from_utf8_lossy(&once.stdout).contains("handled 0 message(s)"));
}
