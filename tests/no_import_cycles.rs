//! The files of `cachelock/src` import each other without a cycle: the layers drawn in the
//! CONTRIBUTING "Layout" section stay layers.
//!
//! Each file is a node. A file depends on another when it names an item defined there:
//! `use crate::a::B`, `crate::a::f()`, `super::x`, `self::x`, or a child module's item. Paths
//! are followed through re-exports (`pub use` in `lib.rs` and in `mod.rs` files), so
//! `crate::Lock` is an edge to `lock.rs`, not to `lib.rs`. Declaring a module (`mod x;`) and
//! re-exporting (`pub use`) are not dependencies, and neither is code under `#[cfg(test)]`
//! (unit tests may use the whole crate). A cycle fails the test with the files on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path: `[]` is the crate root, `["tree", "lock"]` is `crate::tree::lock`.
type ModPath = Vec<String>;

struct Source {
    file: PathBuf,
    /// The code, without comments and without the `#[cfg(test)]` tail.
    code: String,
    /// Child modules declared here (`mod x;`, `pub mod x;`).
    children: BTreeSet<String>,
    /// Names re-exported here (`pub use path::name;`, `pub(crate) use ... as name;`), with
    /// the path they stand for (absolute).
    reexports: BTreeMap<String, ModPath>,
    /// Every path named in a `use` that is not a re-export, and in the code (absolute).
    uses: Vec<ModPath>,
}

fn module_path(root: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(root).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    parts
}

fn strip(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break; // tests come last in every file of the crate
        }
        let code = match line.find("//") {
            // A `//` inside a string literal is rare in paths; lines are what matter here.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Splits a `use` tree (`a::{b, c::d as e}`) into flat paths, each with its local name.
fn flatten(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut base = prefix.to_vec();
        base.extend(head);
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    flatten(&inner[start..i], &base, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        flatten(&inner[start..], &base, out);
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((path, alias)) => (path.trim(), Some(alias.trim())),
        None => (tree, None),
    };
    let mut segs = prefix.to_vec();
    segs.extend(path.split("::").map(|s| s.trim().to_owned()));
    let name = alias.map_or_else(|| segs.last().cloned().unwrap_or_default(), str::to_owned);
    out.push((segs, name));
}

/// Makes `segs` absolute as seen from module `here`; `None` for another crate's path.
fn absolute(segs: &[String], here: &ModPath, children: &BTreeSet<String>) -> Option<ModPath> {
    let first = segs.first()?.as_str();
    let mut base = match first {
        "crate" => Vec::new(),
        "self" => here.clone(),
        "super" => {
            let mut up = here.clone();
            let mut rest = segs;
            while rest.first().map(String::as_str) == Some("super") {
                up.pop();
                rest = &rest[1..];
            }
            up.extend(rest.iter().cloned());
            return Some(up);
        }
        child if children.contains(child) => {
            let mut path = here.clone();
            path.extend(segs.iter().cloned());
            return Some(path);
        }
        _ => return None,
    };
    base.extend(segs[1..].iter().cloned());
    Some(base)
}

fn load(root: &Path) -> BTreeMap<ModPath, Source> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut sources = BTreeMap::new();
    for file in files {
        let code = strip(&std::fs::read_to_string(&file).unwrap());
        let mut here = module_path(root, &file);
        if file.file_name().is_some_and(|n| n == "private.rs") && here == ["private"] {
            here = vec!["__private".to_owned()];
        }
        sources.insert(
            here,
            Source {
                file,
                code,
                children: BTreeSet::new(),
                reexports: BTreeMap::new(),
                uses: Vec::new(),
            },
        );
    }
    let paths: Vec<ModPath> = sources.keys().cloned().collect();
    for here in &paths {
        let children: BTreeSet<String> = paths
            .iter()
            .filter(|p| p.len() == here.len() + 1 && p.starts_with(here))
            .map(|p| p.last().unwrap().clone())
            .collect();
        let source = sources.get_mut(here).unwrap();
        source.children = children;
        // `use` statements (they may span lines).
        let code = source.code.clone();
        let mut rest = code.as_str();
        while let Some(at) = find_use(rest) {
            let stmt_start = at.0;
            let public = at.1;
            let end = rest[stmt_start..].find(';').unwrap() + stmt_start;
            let tree = &rest[stmt_start..end];
            let mut flat = Vec::new();
            flatten(tree, &[], &mut flat);
            for (segs, name) in flat {
                let Some(abs) = absolute(&segs, here, &source.children) else {
                    continue;
                };
                if public {
                    source.reexports.insert(name, abs);
                } else {
                    source.uses.push(abs);
                }
            }
            rest = &rest[end + 1..];
        }
        // Paths in the code itself: `crate::a::b`, `super::a`.
        for prefix in ["crate::", "super::"] {
            let mut from = 0;
            while let Some(at) = code[from..].find(prefix) {
                let start = from + at;
                from = start + prefix.len();
                let before = code[..start].chars().next_back().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' || before == '$' {
                    continue;
                }
                let path: String = code[start..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let segs: Vec<String> = path
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if let Some(abs) = absolute(&segs, here, &source.children) {
                    source.uses.push(abs);
                }
            }
        }
    }
    sources
}

/// The start of the next `use` tree in `code` and whether it is a re-export.
fn find_use(code: &str) -> Option<(usize, bool)> {
    let mut from = 0;
    loop {
        let at = code[from..].find("use ")? + from;
        let line_start = code[..at].rfind('\n').map_or(0, |i| i + 1);
        let head = code[line_start..at].trim();
        from = at + 4;
        if !head.is_empty() && !head.starts_with("pub") {
            continue;
        }
        return Some((at + 4, head.starts_with("pub")));
    }
}

/// The file that defines what `path` names.
fn resolve(sources: &BTreeMap<ModPath, Source>, path: &ModPath, depth: usize) -> Option<ModPath> {
    if depth > 16 {
        return None;
    }
    // The longest prefix of `path` that is a module file.
    let mut module = path.clone();
    while !sources.contains_key(&module) {
        module.pop()?;
    }
    let Some(item) = path.get(module.len()) else {
        return Some(module);
    };
    match sources[&module].reexports.get(item) {
        Some(target) if target != path => {
            let mut next = target.clone();
            next.extend(path[module.len() + 1..].iter().cloned());
            resolve(sources, &next, depth + 1).or(Some(module))
        }
        _ => Some(module),
    }
}

#[test]
fn the_files_of_cachelock_import_each_other_without_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("cachelock/src");
    let sources = load(&root);
    assert!(sources.len() > 40, "read {} files", sources.len());
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (here, source) in &sources {
        let out = edges.entry(here.clone()).or_default();
        for used in &source.uses {
            if let Some(target) = resolve(&sources, used, 0) {
                if &target != here {
                    out.insert(target);
                }
            }
        }
    }
    // The crate's own check must see the edges it is about.
    let lock = vec!["lock".to_owned()];
    assert!(
        edges[&lock].contains(&vec!["acquire".to_owned()]),
        "lock.rs -> acquire.rs not seen: {:?}",
        edges[&lock]
    );
    let cycles = cycles(&edges);
    let shown: Vec<Vec<String>> = cycles
        .iter()
        .map(|cycle| {
            cycle
                .iter()
                .map(|m| {
                    sources[m]
                        .file
                        .strip_prefix(&root)
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect()
        })
        .collect();
    assert!(
        shown.is_empty(),
        "import cycles among cachelock/src files: {shown:#?}"
    );
}

/// The strongly connected components with more than one file (Tarjan's algorithm).
fn cycles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        next: usize,
        found: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.found
}
