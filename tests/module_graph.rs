//! Each crate's files import one another without a circle (in laser-model: each family file
//! depends on the shared engine files, the registry on the families, and nothing shared on a
//! family; in laser-search: the scan's results and the selection rules below the search that
//! runs them; in the CLI: flag value types below the flags).
//!
//! The graph is read from the sources: an edge `a → b` for every `crate::…`, `super::…` or
//! `self::…` path in file `a` (outside comments and `#[cfg(test)]` modules) that names module
//! `b` or an item in it. A folder module's `mod.rs` and its own files are one module split by
//! idea (`model/` spreads `impl Model` over several files), so a file's paths into the `mod.rs`
//! of a folder that contains it are not edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModulePath = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `[a, b]`; `src/a/mod.rs` → `[a]`; `src/lib.rs` (or `main.rs`) → `[]`.
fn module_of(src: &Path, file: &Path) -> ModulePath {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: ModulePath =
        rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The source without comments and without `#[cfg(test)] mod … { … }` bodies (whose `super::`
/// means the file itself).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("//") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find('\n').map_or("", |j| &rest[i + j..]);
    }
    out.push_str(rest);
    while let Some(i) = out.find("#[cfg(test)]") {
        let Some(open) = out[i..].find('{').map(|j| i + j) else { break };
        let header = &out[i..open];
        if !header.contains("mod ") {
            out.replace_range(i..i + "#[cfg(test)]".len(), "");
            continue;
        }
        let mut depth = 0usize;
        let mut end = out.len();
        for (k, c) in out[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.replace_range(i..end, "");
    }
    out
}

/// Every path the code names from `crate`, `super` or `self`, `use` groups expanded, as
/// segments after the anchor's module.
fn paths_in(code: &str, module: &[String]) -> Vec<ModulePath> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for anchor in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(anchor).map(|i| from + i) {
            from = i + anchor.len();
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let base: ModulePath = match anchor {
                "crate::" => Vec::new(),
                "super::" => module[..module.len().saturating_sub(1)].to_vec(),
                // `self` in a folder's `mod.rs` is the folder; in `a/b.rs` it is `a::b`.
                _ => module.to_vec(),
            };
            expand(&code[from..], base, &mut found);
        }
    }
    found
}

/// Expands `a::b::{c, d::e}` (the text after an anchor) into full paths from `base`.
fn expand(text: &str, mut base: ModulePath, out: &mut Vec<ModulePath>) {
    let mut rest = text;
    loop {
        let ident: String =
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if ident.is_empty() {
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 1;
                let mut start = 0;
                for (k, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 1 => {
                            expand(group[start..k].trim_start(), base.clone(), out);
                            start = k + 1;
                        }
                        _ => {}
                    }
                    if depth == 0 {
                        expand(group[start..k].trim_start(), base.clone(), out);
                        return;
                    }
                }
            }
            out.push(base);
            return;
        }
        base.push(ident.clone());
        rest = &rest[ident.len()..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => {
                out.push(base);
                return;
            }
        }
    }
}

type Edges = BTreeMap<ModulePath, BTreeSet<ModulePath>>;

/// The import graph of the crate whose sources are in `crate_dir/src`.
fn import_graph(crate_dir: &str) -> Edges {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(crate_dir).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<ModulePath, PathBuf> =
        files.iter().map(|f| (module_of(&src, f), f.clone())).collect();
    let folders: BTreeSet<ModulePath> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs"))
        .map(|f| module_of(&src, f))
        .collect();
    let mut edges = Edges::new();
    for (module, file) in &modules {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let targets = edges.entry(module.clone()).or_default();
        for path in paths_in(&code, module) {
            // The longest prefix of the path that is a file's module.
            let Some(target) = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains_key(p))
            else {
                continue;
            };
            // A folder's mod.rs (or lib.rs) holding this file is the same module, not an import.
            let enclosing = folders.contains(&target) && module.starts_with(&target);
            if target != *module && !enclosing {
                targets.insert(target);
            }
        }
    }
    edges
}

fn has_edge(edges: &Edges, from: &str, to: &str) -> bool {
    let path = |m: &str| m.split('/').map(str::to_owned).collect::<ModulePath>();
    edges.get(&path(from)).is_some_and(|t| t.contains(&path(to)))
}

/// Panics naming the first circle a depth-first search finds.
fn assert_no_circle(crate_dir: &str, edges: &Edges) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        m: &ModulePath,
        edges: &Edges,
        marks: &mut BTreeMap<ModulePath, Mark>,
        stack: &mut Vec<ModulePath>,
    ) -> Option<Vec<ModulePath>> {
        match marks.get(m) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|s| s == m).unwrap();
                return Some(stack[start..].to_vec());
            }
            None => {}
        }
        marks.insert(m.clone(), Mark::Open);
        stack.push(m.clone());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, marks, stack) {
                return Some(circle);
            }
        }
        stack.pop();
        marks.insert(m.clone(), Mark::Done);
        None
    }
    let names = |m: &ModulePath| if m.is_empty() { "lib".to_owned() } else { m.join("/") };
    let mut marks = BTreeMap::new();
    for m in edges.keys() {
        let mut stack = Vec::new();
        if let Some(circle) = visit(m, edges, &mut marks, &mut stack) {
            let circle: Vec<String> = circle.iter().map(names).collect();
            panic!("{crate_dir}: import circle: {} → {}", circle.join(" → "), circle[0]);
        }
    }
}

/// Checks `crate_dir` for circles, after checking that the reader sees `edges` (a graph it
/// misread would pass vacuously).
fn check_crate(crate_dir: &str, expected: &[(&str, &str)]) {
    let graph = import_graph(crate_dir);
    for (from, to) in expected {
        assert!(has_edge(&graph, from, to), "{crate_dir}: no edge {from} → {to}");
    }
    assert_no_circle(crate_dir, &graph);
}

#[test]
fn laser_model_files_import_each_other_without_a_circle() {
    check_crate(
        "crates/laser-model",
        &[
            ("model/loading", "families"),
            ("families/phi3", "families/llama"),
            ("gguf/export", "gguf/write"),
        ],
    );
}

#[test]
fn laser_search_files_import_each_other_without_a_circle() {
    check_crate(
        "crates/laser-search",
        &[
            ("search", "report"),
            ("select", "candidate"),
            ("render", "suite/report"),
            ("error", "memory/size"),
        ],
    );
}

#[test]
fn laser_linalg_files_import_each_other_without_a_circle() {
    check_crate("crates/laser-linalg", &[]);
}

#[test]
fn laser_cli_files_import_each_other_without_a_circle() {
    check_crate("crates/laser-cli", &[("config", "args"), ("args", "values")]);
}

#[test]
fn python_binding_files_import_each_other_without_a_circle() {
    check_crate("bindings/python", &[]);
}

/// The checker finds a planted circle (it is not vacuous).
#[test]
fn a_planted_circle_is_found() {
    let path = |m: &str| vec![m.to_owned()];
    let mut edges = Edges::new();
    edges.entry(path("a")).or_default().insert(path("b"));
    edges.entry(path("b")).or_default().insert(path("c"));
    edges.entry(path("c")).or_default().insert(path("a"));
    let found = std::panic::catch_unwind(|| assert_no_circle("planted", &edges));
    let message = *found.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("a → b → c → a"), "{message}");
}
