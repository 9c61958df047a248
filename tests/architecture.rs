//! `docs/ARCHITECTURE.md` declares which rooms of `src/` each room may import;
//! this test reads that table and every `use crate::…` and `crate::…` path of
//! `src/`, and fails on an import the table does not allow, or on any loop
//! between rooms or between files: each stands above the ones it imports.
//! It holds the tenant scope the same way: clippy refuses a statement that
//! does not start from `db::Scope`, and every file that looks beyond one
//! organisation through `db::unscoped` is listed, with its count of uses.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Each room's allowed imports, from the document's table; `None` for "every room".
fn declared() -> BTreeMap<String, Option<BTreeSet<String>>> {
    let text = architecture();
    let mut rooms = BTreeMap::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("| room |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (names, allowed) = (cells[1], cells[3]);
        let allowed = if allowed == "every room" {
            None
        } else {
            Some(
                allowed
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        };
        for name in names.split('`').skip(1).step_by(2) {
            rooms.insert(name.to_owned(), allowed.clone());
        }
    }
    assert!(rooms.len() > 5, "the table was not found: {rooms:?}");
    rooms
}

/// Every file of `src/`: its path below `src/` and its text.
fn sources() -> Vec<(std::path::PathBuf, String)> {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            (file.strip_prefix(&src).unwrap().to_owned(), text)
        })
        .collect()
}

fn architecture() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ARCHITECTURE.md")).unwrap()
}

/// The rooms each room of `src/` refers to.
fn actual() -> BTreeMap<String, BTreeSet<String>> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (relative, text) in sources() {
        let room = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        if matches!(room.as_str(), "lib" | "main") {
            continue;
        }
        let used = deps.entry(room.clone()).or_default();
        // `crate::room::…` anywhere, and `use crate::{room, room::…}` lists.
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut item = String::new();
                let mut items = Vec::new();
                for c in list.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            items.push(std::mem::take(&mut item));
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                items.push(item);
                for item in items {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        used.insert(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                used.insert(name);
            }
        }
        used.remove(&room);
    }
    deps
}

#[test]
fn every_room_imports_only_what_the_architecture_allows() {
    let declared = declared();
    let actual = actual();
    let mut problems = Vec::new();
    for (room, used) in &actual {
        let Some(allowed) = declared.get(room) else {
            problems.push(format!("src/{room} is not in docs/ARCHITECTURE.md's table"));
            continue;
        };
        let Some(allowed) = allowed else { continue };
        for target in used.difference(allowed) {
            problems.push(format!(
                "{room} imports {target}, which the table does not allow"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The files each file of `src/` refers to, by module path (`services/roles`,
/// `db`): `crate::` paths, each item of a `use crate::{…}` list, and
/// `super::` paths, outside comments. A file's own `#[cfg(test)]` module is
/// left out (its `super` is the file itself), and so is a folder's `mod.rs`
/// declaring its files.
fn files() -> BTreeMap<String, BTreeSet<String>> {
    let sources: Vec<(String, String)> = sources()
        .into_iter()
        .filter_map(|(path, text)| {
            let module = path.to_str().unwrap().trim_end_matches(".rs");
            let module = module.strip_suffix("/mod").unwrap_or(module).to_owned();
            // Comments (doc links included) import nothing.
            let text = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap()
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            (!matches!(module.as_str(), "lib" | "main")).then_some((module, text))
        })
        .collect();
    let modules: BTreeSet<String> = sources.iter().map(|(m, _)| m.clone()).collect();
    // The longest module that `path` (`a::b::c`) names.
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("/"))
            .find(|m| modules.contains(m))
    };
    let word = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect::<String>()
            .trim_end_matches(':')
            .to_owned()
    };
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &sources {
        let used = deps.entry(module.clone()).or_default();
        let parent = module.rsplit_once('/').map(|(p, _)| p.to_owned());
        for (prefix, base) in [
            ("crate::", String::new()),
            ("super::", parent.clone().unwrap_or_default()),
        ] {
            if prefix == "super::" && parent.is_none() {
                continue;
            }
            for (at, _) in text.match_indices(prefix) {
                let rest = &text[at + prefix.len()..];
                let join = |item: &str| {
                    if base.is_empty() {
                        item.to_owned()
                    } else {
                        format!("{}::{item}", base.replace('/', "::"))
                    }
                };
                let head = word(rest);
                let after = &rest[head.len()..];
                let mut paths = Vec::new();
                if let Some(list) = after.strip_prefix("::{").or(rest.strip_prefix('{')) {
                    let list = &list[..list.find('}').unwrap_or(list.len())];
                    for item in list.split(',') {
                        let item = word(item);
                        if !item.is_empty() {
                            paths.push(if head.is_empty() {
                                join(&item)
                            } else {
                                join(&format!("{head}::{item}"))
                            });
                        }
                    }
                }
                if !head.is_empty() {
                    paths.push(join(&head));
                }
                for path in paths {
                    if let Some(target) = resolve(&path)
                        && target != *module
                        && !module.starts_with(&format!("{target}/"))
                    {
                        used.insert(target);
                    }
                }
            }
        }
    }
    deps
}

/// The loops in `deps`: each found once, by depth-first search.
fn loops(deps: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit<'a>(
        node: &'a str,
        deps: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        loops: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|r| *r == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node);
            loops.push(cycle.join(" -> "));
            return;
        }
        if !done.insert(node) {
            return;
        }
        path.push(node);
        for target in deps.get(node).into_iter().flatten() {
            visit(target, deps, path, done, loops);
        }
        path.pop();
    }
    let (mut done, mut found) = (BTreeSet::new(), Vec::new());
    for node in deps.keys() {
        visit(node, deps, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn no_file_imports_itself_through_others() {
    let found = loops(&files());
    assert!(
        found.is_empty(),
        "files that import themselves:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_room_imports_itself_through_others() {
    let found = loops(&actual());
    assert!(found.is_empty(), "rooms that import themselves: {found:?}");
}

#[test]
fn clippy_refuses_a_statement_that_does_not_start_from_the_scope() {
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/clippy.toml")).unwrap();
    for method in [
        "find",
        "find_by_id",
        "update_many",
        "delete_many",
        "delete_by_id",
    ] {
        let path = format!("\"sea_orm::EntityTrait::{method}\"");
        assert!(
            config.contains(&path),
            "clippy.toml no longer refuses {path}"
        );
    }
}

#[test]
fn every_look_beyond_one_organisation_is_declared() {
    let text = architecture();
    let table = text
        .split("## Beyond one organisation")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a section \"Beyond one organisation\"");
    let declared: BTreeMap<String, usize> = table
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].parse().unwrap(),
            )
        })
        .collect();
    let actual: BTreeMap<String, usize> = sources()
        .into_iter()
        .filter(|(path, _)| !path.starts_with("db"))
        .map(|(path, text)| {
            (
                path.to_str().unwrap().to_owned(),
                text.matches("unscoped::").count(),
            )
        })
        .filter(|(_, uses)| *uses > 0)
        .collect();
    assert_eq!(
        actual, declared,
        "db::unscoped uses per file (left) against docs/ARCHITECTURE.md's \"Beyond one organisation\" (right)"
    );
}
