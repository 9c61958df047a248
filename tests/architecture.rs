//! `docs/ARCHITECTURE.md` declares which rooms of `src/` each room may import;
//! this test reads that table and every `use crate::…` and `crate::…` path of
//! `src/`, and fails on an import the table does not allow, or on a loop
//! between rooms other than the one the document names.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// The loop the document allows for now: `services` and `import`.
const KNOWN_LOOP: (&str, &str) = ("import", "services");

/// Each room's allowed imports, from the document's table; `None` for "every room".
fn declared() -> BTreeMap<String, Option<BTreeSet<String>>> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ARCHITECTURE.md"))
            .unwrap();
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

/// The rooms each room of `src/` refers to.
fn actual() -> BTreeMap<String, BTreeSet<String>> {
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
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
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
        let text = std::fs::read_to_string(&file).unwrap();
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

#[test]
fn no_two_rooms_import_each_other_but_the_named_exception() {
    let actual = actual();
    let mut loops = Vec::new();
    for (room, used) in &actual {
        for target in used {
            let back = actual.get(target).is_some_and(|u| u.contains(room));
            if back && room < target && (room.as_str(), target.as_str()) != KNOWN_LOOP {
                loops.push(format!("{room} <-> {target}"));
            }
        }
    }
    assert!(loops.is_empty(), "rooms that import each other: {loops:?}");
}
