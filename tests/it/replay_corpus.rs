//! `recoverydesk replay` over real-world mail: every folder of the shared
//! corpus and mail-parser's own test messages. No panic, every message kept.
//! Skips (with a message) when a corpus is not on this machine.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_recoverydesk");
/// The shared corpus beside the checkout (CI clones with `shared/` beside it).
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");

/// What the replay summary line says.
#[derive(Debug)]
struct Summary {
    line: String,
    replayed: usize,
    kept: usize,
    panics: usize,
}

fn number_after(line: &str, key: &str) -> Option<usize> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn summary(stderr: &str) -> Summary {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("replayed "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"))
        .to_owned();
    Summary {
        replayed: number_after(&line, "replayed").expect("message count"),
        kept: number_after(&line, "kept").expect("kept count"),
        panics: number_after(&line, "panics").expect("panic count"),
        line,
    }
}

/// Regular, non-hidden files under a folder (what replay reads).
fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            n += count_files(&entry.path());
        } else if kind.is_file() {
            n += 1;
        }
    }
    n
}

/// Runs replay over a path and checks the invariants; returns the summary.
fn replay(path: &Path) -> Summary {
    let out = Command::new(BIN)
        .arg("replay")
        .arg(path)
        .env_remove("RECOVERYDESK_CONFIG")
        .env("RUST_LOG", "error")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "replay {} failed:\n{stderr}",
        path.display()
    );
    assert!(
        !stderr.contains("PANIC"),
        "a message made the pipeline panic in {}:\n{stderr}",
        path.display()
    );
    let s = summary(&stderr);
    assert_eq!(s.panics, 0, "{}", s.line);
    assert_eq!(s.kept, s.replayed, "every message kept: {}", s.line);
    // Each file is at least one message (an mbox is several).
    assert!(
        s.replayed >= count_files(path),
        "{} files, {}",
        count_files(path),
        s.line
    );
    println!("{}: {}", path.display(), s.line);
    s
}

#[test]
fn replay_keeps_every_message_of_every_shared_corpus_folder() {
    let root = Path::new(CORPUS);
    if !root.is_dir() {
        println!("skipped: {CORPUS} is not on this machine");
        return;
    }
    let mut folders: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    assert!(!folders.is_empty(), "the corpus has folders");
    let mut total = 0;
    for folder in &folders {
        total += replay(folder).replayed;
    }
    println!(
        "corpus: {total} message(s) in {} folder(s), all kept",
        folders.len()
    );
}

/// mail-parser's resources folder in the cargo registry, if present.
fn mail_parser_resources() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let src = home.join("registry/src");
    let mut found = Vec::new();
    for index in std::fs::read_dir(src).ok()?.flatten() {
        for krate in std::fs::read_dir(index.path()).ok()?.flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if name.starts_with("mail-parser-0.11.") && krate.path().join("resources").is_dir() {
                found.push(krate.path().join("resources"));
            }
        }
    }
    found.sort();
    found.pop()
}

fn copy_messages(from: &Path, to: &Path, n: &mut usize) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_messages(&path, to, n);
        } else if path.extension().is_some_and(|e| e == "eml")
            || path
                .parent()
                .is_some_and(|p| p.ends_with("cur") || p.ends_with("new"))
        {
            *n += 1;
            std::fs::copy(&path, to.join(format!("{n:04}.eml"))).unwrap();
        }
    }
}

#[test]
fn replay_keeps_every_message_of_mail_parsers_own_test_set() {
    let Some(resources) = mail_parser_resources() else {
        println!("skipped: mail-parser 0.11 sources are not in the cargo registry here");
        return;
    };
    // Only the messages: the folder also holds the expected parses as JSON.
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    copy_messages(&resources, dir.path(), &mut n);
    assert!(
        n > 50,
        "found only {n} messages under {}",
        resources.display()
    );
    let s = replay(dir.path());
    assert_eq!(s.replayed, n, "{}", s.line);
    println!(
        "mail-parser resources ({}): {n} message(s), all kept",
        resources.display()
    );
}

#[test]
fn replay_of_hostile_input_keeps_it_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("random.eml"),
        (0..2048u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.eml"), b"").unwrap();
    std::fs::write(
        dir.path().join("nofrom.eml"),
        b"Subject: x\r\n\r\nUsername: alice\r\n",
    )
    .unwrap();
    // Deeply nested multiparts.
    let mut nested = String::from(
        "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=\"a\"\r\n\r\n",
    );
    for i in 0..60 {
        nested.push_str(&format!(
            "--{}\r\nContent-Type: multipart/mixed; boundary=\"{}\"\r\n\r\n",
            "a".repeat(i + 1),
            "a".repeat(i + 2)
        ));
    }
    std::fs::write(dir.path().join("nested.eml"), nested).unwrap();
    let s = replay(dir.path());
    assert_eq!(s.replayed, 4, "{}", s.line);
}
