//! The engine's layers (DESIGN.md "Engine layers"): each module imports
//! only from layers below it, and modules of one layer form no cycle.
//!
//! Reads every source file of the library under `src/` and every path that
//! starts with `crate::` (in `use` lines, grouped `use crate::{…}` lists and
//! inline paths), outside comments. Fails naming the file, the line and
//! the import that goes up a layer or closes a cycle. Run it alone with
//! `cargo test -p ringway --test layers`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    ("L0 protocol, counters, errors", &["error", "http", "stats"]),
    ("L1 runtime primitives", &["rt"]),
    (
        "L2 concepts",
        &[
            "access_log",
            "cache",
            "policy",
            "router",
            "tls",
            "upstream",
            "ai",
        ],
    ),
    ("L3 snapshot and worker context", &["snapshot", "worker"]),
    ("L4 request pipeline", &["proxy"]),
    (
        "L5 server, control plane, admin",
        &["runtime", "admin", "server", "fuzzing"],
    ),
];

/// Files and folders that belong to the binary, not the library.
const BINARY: &[&str] = &["main.rs", "cli"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// The top-level module a file under `src/` belongs to (`None` for lib.rs).
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    if first == "lib.rs" {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_string())
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The line without its `//` comment (good enough for this code base:
/// string literals holding `//` do not name `crate::` paths).
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The top-level modules a piece of code names through `crate::`.
fn imported(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_group: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let line = code(line);
        let mut rest = line;
        if let Some(depth) = in_group.as_mut() {
            // Inside `use crate::{ … }` spanning lines: each item's first
            // segment is a module.
            for item in line.split(',') {
                let item = item.trim().trim_start_matches('{').trim();
                let name: String = item
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    found.push((n + 1, name));
                }
            }
            *depth += line.matches('{').count();
            *depth = depth.saturating_sub(line.matches('}').count());
            if *depth == 0 {
                in_group = None;
            }
            continue;
        }
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let end = group.find('}');
                let inner = &group[..end.unwrap_or(group.len())];
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push((n + 1, name));
                    }
                }
                if end.is_none() {
                    in_group = Some(1);
                }
                break;
            }
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((n + 1, name));
            }
            rest = after;
        }
    }
    found
}

#[test]
fn imports_go_down_the_layers_and_close_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        if BINARY.iter().any(|b| rel.starts_with(b)) {
            continue;
        }
        let Some(module) = module_of(rel) else {
            continue;
        };
        let Some(layer) = layer_of(&module) else {
            problems.push(format!(
                "{}: module `{module}` is in no layer; add it to LAYERS (and DESIGN.md)",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for (line, target) in imported(&text) {
            if target == module {
                continue;
            }
            let Some(target_layer) = layer_of(&target) else {
                // A crate-root item (re-exports in lib.rs) or a typo the
                // compiler reports.
                continue;
            };
            let at = format!("{}:{line}", rel.display());
            if target_layer > layer {
                problems.push(format!(
                    "{at}: `{module}` ({}) imports `{target}` ({}), a higher layer",
                    LAYERS[layer].0, LAYERS[target_layer].0
                ));
            }
            edges
                .entry(module.clone())
                .or_default()
                .entry(target)
                .or_insert(at);
        }
    }
    problems.extend(cycles(&edges));
    assert!(
        problems.is_empty(),
        "engine layering broken:\n  {}",
        problems.join("\n  ")
    );
}

/// Every cycle among modules, each named once with where its edges are.
fn cycles(edges: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in edges.keys() {
        let mut path = vec![start.clone()];
        walk(edges, start, &mut path, &mut found);
    }
    found
        .into_iter()
        .map(|cycle: Vec<String>| {
            let hops: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} -> {} ({})", w[0], w[1], edges[&w[0]][&w[1]]))
                .collect();
            format!("import cycle: {}", hops.join(", "))
        })
        .collect()
}

fn walk(
    edges: &BTreeMap<String, BTreeMap<String, String>>,
    at: &str,
    path: &mut Vec<String>,
    found: &mut BTreeSet<Vec<String>>,
) {
    let Some(next) = edges.get(at) else {
        return;
    };
    for target in next.keys() {
        if target == &path[0] {
            // Closed a cycle: record it starting from its smallest name.
            let mut cycle = path.clone();
            let min = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| m.as_str())
                .map_or(0, |(i, _)| i);
            cycle.rotate_left(min);
            cycle.push(cycle[0].clone());
            found.insert(cycle);
        } else if !path.contains(target) {
            path.push(target.clone());
            walk(edges, target, path, found);
            path.pop();
        }
    }
}

/// No `&mut [u8]` is ever made over a buffer's spare capacity: that memory
/// may be uninitialised, and a reference to it is undefined behaviour even
/// if nothing reads it (which no test can observe, and Miri cannot run the
/// TLS library). Writes into spare capacity go through raw pointers
/// (`ptr::copy_nonoverlapping`), or through `MaybeUninit`. And a slice
/// over an I/O buffer's bytes is as long as what is initialised
/// (`bytes_init()`), never a count a writer reported.
#[test]
fn no_mutable_slice_is_made_from_raw_parts() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = code(line);
            // A shared slice over an I/O buffer covers exactly its
            // initialised bytes, never a count some writer reported.
            let unbounded = code.contains("from_raw_parts(") && !code.contains("bytes_init()");
            if code.contains("from_raw_parts_mut") || unbounded {
                let rel = file.strip_prefix(&src).expect("under src");
                found.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "a mutable slice over possibly uninitialised memory:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_checker_sees_grouped_and_inline_imports() {
    let text = "use crate::http::head::Header; // crate::proxy in a comment\n\
                use crate::{error::Error, stats};\n\
                use crate::{\n    rt::io,\n    worker::Worker,\n};\n\
                let x = crate::tls::certs::load();\n";
    let names: Vec<String> = imported(text).into_iter().map(|(_, m)| m).collect();
    assert_eq!(names, ["http", "error", "stats", "rt", "worker", "tls"]);
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    edges
        .entry("a".into())
        .or_default()
        .insert("b".into(), "a.rs:1".into());
    edges
        .entry("b".into())
        .or_default()
        .insert("a".into(), "b.rs:2".into());
    let found = cycles(&edges);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("a -> b (a.rs:1), b -> a (b.rs:2)"));
}
