//! Generates the table of shipped templates (`templates/<lang>/*.tera`) that
//! `src/templates/embedded.rs` compiles into the binary, so adding, removing
//! or renaming a template file needs no hand-edited list.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    for language in read_dir_sorted(&root) {
        if !language.is_dir() {
            continue;
        }
        // Listing each folder as well catches a file added or removed
        // there: cargo's scan of the top folder alone missed one.
        println!("cargo:rerun-if-changed={}", language.display());
        for file in read_dir_sorted(&language) {
            let hidden = file
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if file.extension().is_some_and(|e| e == "tera") && !hidden {
                files.push(file);
            }
        }
    }
    let mut table = String::from("&[\n");
    for file in &files {
        let name = file.strip_prefix(&root).expect("below templates/");
        let name = name
            .to_str()
            .expect("template names are UTF-8")
            .replace('\\', "/");
        writeln!(
            table,
            "    ({name:?}, include_str!({:?})),",
            file.display().to_string()
        )
        .expect("write to a String");
    }
    table.push(']');
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_templates.rs");
    std::fs::write(&out, table).expect("write the template table");
}

fn read_dir_sorted(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable directory entry").path())
        .collect();
    entries.sort();
    entries
}
