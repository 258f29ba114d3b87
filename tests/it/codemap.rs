//! ARCHITECTURE.md's codemap names every module of `src/`: a newcomer who
//! reads it finds each file, and a module added without a line there fails
//! here.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names a codemap line may use for a file: the file itself, a folder
/// holding it (`src/case/`), or a glob of its stem (`src/request_rules*`).
fn named(codemap: &str, file: &str) -> bool {
    let stem = file.trim_end_matches(".rs").trim_end_matches("/mod");
    let quoted = |name: &str| codemap.contains(&format!("`{name}`"));
    let mut folders = file.match_indices('/').map(|(i, _)| &file[..=i]);
    quoted(file)
        || quoted(&format!("{stem}.rs"))
        || quoted(&format!("{stem}/"))
        || quoted(&format!("{stem}*"))
        || folders.any(|folder| folder != "src/" && quoted(folder))
        || file
            .match_indices('/')
            .skip(1)
            .any(|(i, _)| quoted(&format!("{}*", &file[..i])))
}

#[test]
fn every_source_file_is_in_the_codemap() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let codemap = architecture
        .split("## Codemap")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Codemap section");
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .expect("under the checkout")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .filter(|f| !f.ends_with("/tests.rs") && f != "src/lib.rs")
        .filter(|f| !named(codemap, f))
        .collect();
    assert!(
        missing.is_empty(),
        "not in ARCHITECTURE.md's codemap: {missing:?}"
    );
}
