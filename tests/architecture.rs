//! `docs/ARCHITECTURE.md` declares which rooms of `src/` each room may import;
//! this test reads that table and every `use crate::…` and `crate::…` path of
//! `src/`, and fails on an import the table does not allow, or on any loop
//! between rooms: the rooms stand in layers, each above the ones it imports.

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
fn no_room_imports_itself_through_others() {
    let actual = actual();
    // Depth-first, from each room: a room met again on the path it was
    // reached by closes a loop.
    fn visit<'a>(
        room: &'a str,
        actual: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        loops: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|r| *r == room) {
            let mut cycle = path[at..].to_vec();
            cycle.push(room);
            loops.push(cycle.join(" -> "));
            return;
        }
        if !done.insert(room) {
            return;
        }
        path.push(room);
        for target in actual.get(room).into_iter().flatten() {
            visit(target, actual, path, done, loops);
        }
        path.pop();
    }
    let (mut done, mut loops) = (BTreeSet::new(), Vec::new());
    for room in actual.keys() {
        visit(room, &actual, &mut Vec::new(), &mut done, &mut loops);
    }
    assert!(loops.is_empty(), "rooms that import themselves: {loops:?}");
}
