//! The declared MSRV (`rust-version` in the workspace `Cargo.toml`) is honest: no dependency
//! of a published crate (`cachelock`, `cachelock-macros`, `cachelock-cli`), with every
//! feature on and the versions `Cargo.lock` pins, declares a newer `rust-version`.
//!
//! Without a second toolchain on the machine this is the check that can run everywhere: it
//! reads what each locked dependency declares (`cargo metadata`), so it catches a dependency
//! update that raises the floor. (A dependency that declares nothing is not checked.)

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// `1.85` or `1.85.1` as comparable numbers.
fn version(text: &str) -> [u64; 3] {
    let mut parts = text.split('.').map(|p| p.parse().unwrap_or(0));
    [0; 3].map(|_| parts.next().unwrap_or(0))
}

#[test]
fn the_declared_rust_version_covers_every_locked_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--all-features",
            "--locked",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages: BTreeMap<&str, &Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let published = ["cachelock", "cachelock-macros", "cachelock-cli"];
    let mut declared = None;
    let mut todo: Vec<&str> = Vec::new();
    for (id, package) in &packages {
        let name = package["name"].as_str().unwrap();
        if published.contains(&name) {
            declared = package["rust_version"].as_str();
            todo.push(id);
        }
    }
    let declared = declared.expect("the workspace declares rust-version");
    // Everything reachable through normal and build dependencies (not dev-dependencies).
    let mut seen = BTreeSet::new();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal_or_build = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| matches!(k["kind"].as_str(), None | Some("build")));
            if normal_or_build {
                todo.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    let mut above: Vec<String> = Vec::new();
    let mut highest = (version(declared), "the workspace".to_owned());
    for id in &seen {
        let package = packages[id];
        let Some(needs) = package["rust_version"].as_str() else {
            continue;
        };
        let name = format!(
            "{} {}",
            package["name"].as_str().unwrap(),
            package["version"].as_str().unwrap()
        );
        if version(needs) > version(declared) {
            above.push(format!("{name} needs {needs}"));
        }
        if version(needs) > highest.0 {
            highest = (version(needs), name);
        }
    }
    assert!(
        above.is_empty(),
        "rust-version = \"{declared}\" in Cargo.toml is below what locked dependencies declare: {above:?}"
    );
    println!(
        "rust-version {declared}; the highest a dependency declares: {:?} ({})",
        highest.0, highest.1
    );
}
