//! The house's rules, checked (docs/plan-house.md §2 and §4): which crate may depend on which,
//! no import loop between the files of one crate, and no source file over 800 lines of code
//! (before its `#[cfg(test)]` module) without a reason. Today's violations are listed as
//! exceptions; an exception that is no longer needed fails too, so the lists are the to-do
//! list of issue 19 and only shrink.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The arrows allowed between workspace crates (normal, build and dev dependencies alike):
/// a crate uses only crates above it; the doors use the node and the pure crates only.
const ALLOWED: &[(&str, &[&str])] = &[
    ("cairn-dag", &[]),
    ("cairn-crypt", &[]),
    ("cairn-bench", &[]),
    ("cairn-bitswap", &["cairn-dag"]),
    ("cairn-store", &["cairn-dag"]),
    ("cairn-cluster", &["cairn-dag", "cairn-store"]),
    ("cairn-net", &["cairn-dag", "cairn-crypt", "cairn-bitswap"]),
    (
        "cairn-node",
        &["cairn-dag", "cairn-crypt", "cairn-store", "cairn-cluster"],
    ),
    ("cairn-s3", &["cairn-node", "cairn-dag", "cairn-crypt"]),
    ("cairn-gateway", &["cairn-node", "cairn-dag", "cairn-crypt"]),
    ("cairn-sftp", &["cairn-node", "cairn-dag", "cairn-crypt"]),
    ("cairn-api", &["cairn-node", "cairn-dag", "cairn-crypt"]),
    (
        "cairn",
        &[
            "cairn-api",
            "cairn-node",
            "cairn-bench",
            "cairn-dag",
            "cairn-crypt",
        ],
    ),
];

/// The binary's arrows to the crates only the composition root may know: its `daemon` module
/// (`crates/cairn/src/daemon/`) uses them, and [`only_the_daemon_module_wires`] checks that no
/// other file of the binary does (the CLI goes through `cairn_api` and `cairn_node`).
const ARROW_EXCEPTIONS: &[(&str, &str)] = &[
    ("cairn", "cairn-bitswap"),
    ("cairn", "cairn-cluster"),
    ("cairn", "cairn-gateway"),
    ("cairn", "cairn-net"),
    ("cairn", "cairn-s3"),
    ("cairn", "cairn-sftp"),
    ("cairn", "cairn-store"),
];

#[test]
fn crates_depend_only_downwards() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(workspace().join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    let mut wrong = Vec::new();
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let Some(ok) = allowed.get(name) else {
            wrong.push(format!(
                "{name} is not in the table: place it before using it"
            ));
            continue;
        };
        for dep in package["dependencies"].as_array().unwrap() {
            let dep = dep["name"].as_str().unwrap();
            // (A crate's dev-dependency on itself turns on a test feature: no arrow.)
            if !dep.starts_with("cairn") || ok.contains(&dep) || dep == name {
                continue;
            }
            if ARROW_EXCEPTIONS.contains(&(name, dep)) {
                used.insert((name.to_owned(), dep.to_owned()));
            } else {
                wrong.push(format!("{name} → {dep} is not allowed"));
            }
        }
    }
    for (from, to) in ARROW_EXCEPTIONS {
        if !used.contains(&(from.to_string(), to.to_string())) {
            wrong.push(format!("{from} → {to} is gone: drop its exception"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The crates the binary's CLI may not name: only `crates/cairn/src/daemon/` wires the network,
/// the store, the cluster and the doors together.
const WIRING_ONLY: &[&str] = &[
    "cairn_net",
    "cairn_store",
    "cairn_cluster",
    "cairn_bitswap",
    "cairn_s3",
    "cairn_gateway",
    "cairn_sftp",
];

#[test]
fn only_the_daemon_module_wires() {
    let src = workspace().join("crates/cairn/src");
    let daemon = src.join("daemon");
    let mut wrong = Vec::new();
    let mut seen_in_daemon = BTreeSet::new();
    for file in rust_files(&src) {
        let text = std::fs::read_to_string(&file).unwrap();
        for krate in WIRING_ONLY {
            let named =
                text.contains(&format!("{krate}::")) || text.contains(&format!("use {krate}"));
            if !named {
                continue;
            }
            if file.starts_with(&daemon) {
                seen_in_daemon.insert(*krate);
            } else {
                let rel = file.strip_prefix(&src).unwrap().display().to_string();
                wrong.push(format!("cairn/src/{rel} names {krate}: only daemon/ wires"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The rule reads names: it must see the daemon use what the arrows say it does.
    assert!(seen_in_daemon.contains("cairn_net"), "{seen_in_daemon:?}");
}

/// A source file's code: its lines before the first `#[cfg(test)]`.
fn code_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .map(str::to_owned)
        .collect()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a source file in its crate (`a::b` for `src/a/b.rs` or `src/a/b/mod.rs`;
/// empty for the crate root).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The files of one crate each file names through `crate::…` (or `super::…`) paths, with the
/// line: file → (file it uses → first line).
fn file_edges(src: &Path) -> BTreeMap<String, BTreeMap<String, usize>> {
    let files = rust_files(src);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| {
            (
                module_of(src, f),
                f.strip_prefix(src).unwrap().display().to_string(),
            )
        })
        .collect();
    let mut edges: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for file in &files {
        let me = module_of(src, file);
        if me.is_empty() {
            continue; // the crate root declares and re-exports; it is not a node
        }
        let name = file.strip_prefix(src).unwrap().display().to_string();
        let mut in_group = false;
        for (i, line) in code_of(file).iter().enumerate() {
            let line = line.split("//").next().unwrap_or("");
            let trimmed = line.trim();
            // `use crate::{a::X, b::{Y, Z}};` across several lines: names in a group follow the
            // `crate::{` that opened it.
            let mut paths: Vec<Vec<String>> = Vec::new();
            let mut scan = |text: &str, base: Vec<String>| {
                for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                    let segs: Vec<String> = word
                        .split("::")
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if !segs.is_empty() {
                        let mut full = base.clone();
                        full.extend(segs);
                        paths.push(full);
                    }
                }
            };
            if in_group {
                scan(trimmed, Vec::new());
                if trimmed.contains("};") {
                    in_group = false;
                }
            }
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                if rest.starts_with('{') && !rest.contains('}') {
                    in_group = true;
                }
                scan(rest, Vec::new());
            }
            for (at, _) in line.match_indices("super::") {
                let parent = me[..me.len() - 1].to_vec();
                scan(&line[at + "super::".len()..], parent);
            }
            for path in paths {
                // The longest prefix of the path that is a module file.
                let target = (1..=path.len()).rev().find_map(|n| modules.get(&path[..n]));
                if let Some(target) = target
                    && *target != name
                {
                    edges
                        .entry(name.clone())
                        .or_default()
                        .entry(target.clone())
                        .or_insert(i + 1);
                }
            }
        }
    }
    edges
}

/// The strongly connected components of two or more files (Tarjan), each sorted.
fn loops(edges: &BTreeMap<String, BTreeMap<String, usize>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, usize>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(targets) = s.edges.get(v) {
            for w in targets.keys() {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let l = s.low[w].min(s.low[v]);
                    s.low.insert(v, l);
                } else if s.on_stack.contains(w) {
                    let l = s.index[w].min(s.low[v]);
                    s.low.insert(v, l);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// Import loops between files that are still there (crate, files of the loop), until issue 19
/// breaks them (docs/plan-house.md §3).
const LOOP_EXCEPTIONS: &[(&str, &[&str])] = &[];

#[test]
fn no_import_loop_between_the_files_of_a_crate() {
    let mut wrong = Vec::new();
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let krate = dir.file_name().unwrap().to_string_lossy().into_owned();
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        let edges = file_edges(&src);
        for component in loops(&edges) {
            let excepted = LOOP_EXCEPTIONS.iter().any(|(c, files)| {
                *c == krate
                    && files.len() == component.len()
                    && files.iter().all(|f| component.contains(&f.to_string()))
            });
            if !excepted {
                let detail: Vec<String> = component
                    .iter()
                    .flat_map(|f| {
                        edges[f]
                            .iter()
                            .filter(|(t, _)| component.contains(t))
                            .map(move |(t, line)| format!("  {f}:{line} uses {t}"))
                    })
                    .collect();
                wrong.push(format!(
                    "{krate}: a loop between {component:?}\n{}",
                    detail.join("\n")
                ));
            }
            found.push((krate.clone(), component));
        }
    }
    for (krate, files) in LOOP_EXCEPTIONS {
        let still = found.iter().any(|(c, comp)| {
            c == krate
                && comp.len() == files.len()
                && files.iter().all(|f| comp.contains(&f.to_string()))
        });
        if !still {
            wrong.push(format!(
                "{krate}: the loop {files:?} is gone: drop its exception"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Files over 800 lines of code, each with a ceiling it must not pass and the reason it is
/// still that long. None since issue 19 split the last two (`cairn-net/src/lib.rs`,
/// `cairn/src/backup.rs`); a file that needs the length says why here.
const LONG_FILES: &[(&str, usize, &str)] = &[];

#[test]
fn no_source_file_over_800_lines_of_code_without_a_reason() {
    let mut wrong = Vec::new();
    for file in rust_files(&workspace().join("crates")) {
        if !file.components().any(|c| c.as_os_str() == "src") {
            continue;
        }
        let rel = file
            .strip_prefix(workspace().join("crates"))
            .unwrap()
            .display()
            .to_string();
        let lines = code_of(&file).len();
        match LONG_FILES.iter().find(|(f, _, _)| *f == rel) {
            Some((_, ceiling, _)) if lines > *ceiling => wrong.push(format!(
                "{rel}: {lines} lines of code, past its ceiling {ceiling}"
            )),
            Some(_) if lines <= 800 => {
                wrong.push(format!("{rel}: {lines} lines now: drop its exception"))
            }
            Some(_) => {}
            None if lines > 800 => wrong.push(format!(
                "{rel}: {lines} lines of code (more than 800): split it, or give it a reason"
            )),
            None => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every `Type::function` `docs/architecture.md` names in code spans exists under that name:
/// a type of that name is declared in the workspace and a function of that name is defined in
/// a file that declares or implements the type. The PUT and GET paths are read by function
/// name, so a rename that leaves the doc behind fails here.
#[test]
fn the_architecture_names_functions_that_exist() {
    let root = workspace();
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let sources: Vec<(PathBuf, String)> = rust_files(&root.join("crates"))
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "node_modules"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut named = BTreeSet::new();
    for span in doc.split('`').skip(1).step_by(2) {
        for path in span.split(|c: char| !(word(c) || c == ':')) {
            let segments: Vec<&str> = path.split("::").collect();
            for pair in segments.windows(2) {
                let (ty, f) = (pair[0], pair[1]);
                let camel = ty.starts_with(|c: char| c.is_ascii_uppercase());
                let func = f.starts_with(|c: char| c.is_ascii_lowercase() || c == '_');
                if camel && func && ty.chars().all(word) && f.chars().all(word) {
                    named.insert(format!("{ty}::{f}"));
                }
            }
        }
    }
    assert!(named.len() > 40, "too few names found: {named:?}");
    // Types of other crates the doc names beside ours.
    named.retain(|n| !n.starts_with("Bytes::"));
    let mut missing = Vec::new();
    for name in &named {
        let (ty, f) = name.split_once("::").unwrap();
        let declares = |t: &str| {
            [
                format!("struct {ty}"),
                format!("enum {ty}"),
                format!("trait {ty}"),
                format!("type {ty}"),
                format!(" as {ty}"),
                format!("impl {ty}"),
                format!("impl {ty}<"),
                format!("impl crate::{ty}"),
                format!("for {ty}"),
                format!("{ty}<'_>"),
            ]
            .iter()
            .any(|d| {
                t.match_indices(d.as_str())
                    .any(|(i, _)| !t[i + d.len()..].starts_with(word))
            })
        };
        let defines = |t: &str| {
            t.match_indices(&format!("fn {f}"))
                .any(|(i, m)| !t[i + m.len()..].starts_with(word))
        };
        if !sources.iter().any(|(_, t)| declares(t) && defines(t)) {
            missing.push(name.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "docs/architecture.md names functions that do not exist (renamed?): {missing:?}"
    );
}
