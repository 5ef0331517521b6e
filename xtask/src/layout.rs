//! Checks the dependency invariants of DESIGN.md section 1 on the manifests:
//! dependencies point down the crate table, `vision` and `text` never depend on
//! each other, `core` and `data` never depend on each other, and only `xtask`
//! stays free of tch. And the size rules of the style guide on the sources:
//! no file over 400 lines and no function over 80 (test modules aside), no
//! `too_many_arguments` exemption.

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The crate table, top to bottom; a crate may depend only on crates above it.
    const ORDER: [&str; 7] = ["core", "data", "dist", "train", "vision", "text", "cli"];

    fn internal_deps(manifest: &Path) -> BTreeSet<String> {
        let text = std::fs::read_to_string(manifest).unwrap();
        let table: toml::Table = text.parse().unwrap();
        let mut deps = BTreeSet::new();
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            if let Some(t) = table.get(section).and_then(|v| v.as_table()) {
                deps.extend(t.keys().cloned());
            }
        }
        deps
    }

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
    }

    #[test]
    fn dependencies_point_down_the_crate_table() {
        let forbidden_pairs = [
            ("core", "data"),
            ("data", "core"),
            // The distributed runtime needs nothing of the data path.
            ("dist", "data"),
            ("vision", "text"),
            ("text", "vision"),
        ];
        for (index, name) in ORDER.iter().enumerate() {
            let deps = internal_deps(&root().join("crates").join(name).join("Cargo.toml"));
            // A dev-dependency on itself only turns on a feature for its own
            // integration tests (`selfsup-train`'s `testing`).
            let others = deps.iter().filter_map(|d| d.strip_prefix("selfsup-"));
            for dep in others.filter(|d| d != name) {
                let position = ORDER.iter().position(|c| *c == dep).expect("known crate");
                assert!(
                    position < index,
                    "selfsup-{name} depends on selfsup-{dep}, which is not above it"
                );
                assert!(
                    !forbidden_pairs.contains(&(*name, dep)),
                    "selfsup-{name} must not depend on selfsup-{dep}"
                );
            }
        }
    }

    #[test]
    fn data_and_xtask_do_not_link_tch() {
        for manifest in ["crates/data/Cargo.toml", "xtask/Cargo.toml"] {
            let deps = internal_deps(&root().join(manifest));
            assert!(!deps.contains("tch"), "{manifest} must not depend on tch");
        }
    }

    #[test]
    fn every_crate_is_listed() {
        let mut found: Vec<String> = std::fs::read_dir(root().join("crates"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        let mut expected: Vec<String> = ORDER.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(found, expected, "crates/ and the crate table disagree");
    }

    /// The top-level modules (`crate::<module>`) that the code of the
    /// top-level module `module` of the crate at `src` names.
    fn imports(src: &Path, module: &str) -> std::collections::BTreeSet<String> {
        let (file, dir) = (src.join(format!("{module}.rs")), src.join(module));
        let mut files = vec![file];
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten() {
                let path = entry.unwrap().path();
                match path.is_dir() {
                    true => stack.push(path),
                    false => files.push(path),
                }
            }
        }
        let mut named = std::collections::BTreeSet::new();
        for file in files.iter().filter(|f| f.is_file() && !test_only(f)) {
            for line in code_lines(file) {
                let code = line.split("//").next().unwrap_or_default();
                for (at, _) in code.match_indices("crate::") {
                    let rest = &code[at + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    let after_crate = at == 0
                        || !code[..at]
                            .ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$');
                    if after_crate && !name.is_empty() && name != module {
                        named.insert(name);
                    }
                }
            }
        }
        named
    }

    /// Whether `file` is a module its parent declares under `#[cfg(test)]`
    /// (a test helper such as `methods/smoke.rs`: tests may import anything).
    fn test_only(file: &Path) -> bool {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let parent = file.parent().unwrap();
        let declared = format!("#[cfg(test)]\nmod {stem};");
        ["mod.rs", "lib.rs"].iter().any(|name| {
            std::fs::read_to_string(parent.join(name)).is_ok_and(|text| text.contains(&declared))
        })
    }

    /// No two top-level modules of a crate name each other: a layer's
    /// modules form a hierarchy, as its crates do.
    #[test]
    fn modules_of_a_crate_do_not_import_each_other() {
        let mut problems = Vec::new();
        for name in ORDER {
            let src = root().join("crates").join(name).join("src");
            let modules: Vec<String> = std::fs::read_dir(&src)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
                .filter(|m| m != "lib" && m != "main")
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let graph: Vec<(String, std::collections::BTreeSet<String>)> = modules
                .iter()
                .map(|m| (m.clone(), imports(&src, m)))
                .collect();
            for (a, from_a) in &graph {
                for (b, from_b) in &graph {
                    if a < b && from_a.contains(b) && from_b.contains(a) {
                        problems.push(format!("selfsup-{name}: `{a}` and `{b}` import each other"));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// Every file and folder the crate table of docs/architecture.md names
    /// (`` `name.rs` `` or `` `folder/` `` in a crate's row, found anywhere
    /// in that crate's folder, or a top-level folder; `` `crates/...` ``
    /// paths anywhere in the file) exists: the map is only useful while it
    /// is true.
    #[test]
    fn the_architecture_doc_names_files_that_exist() {
        let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
        let mut missing = Vec::new();
        for line in doc.lines() {
            let tokens: Vec<&str> = line.split('`').skip(1).step_by(2).collect();
            for token in tokens
                .iter()
                .filter(|t| t.starts_with("crates/") && !t.contains(['<', '*', '{', '…']))
            {
                if !root().join(token).exists() {
                    missing.push(token.to_string());
                }
            }
            let Some(folder) = line.strip_prefix("| `selfsup-").and_then(|_| tokens.get(1)) else {
                continue;
            };
            let files = all_paths(&root().join(folder));
            let named = tokens.iter().filter(|t| {
                !t.contains([' ', '<', ':', '*']) && (t.ends_with(".rs") || t.ends_with('/'))
            });
            for token in named {
                let wanted = format!("/{}", token.trim_end_matches('/'));
                let at_top = token.ends_with('/') && root().join(token).is_dir();
                if !at_top && !files.iter().any(|f| f.ends_with(&wanted)) {
                    missing.push(format!("{folder}: {token}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "docs/architecture.md names what is not there: {missing:?}"
        );
    }

    /// Every path under `dir`, as text.
    fn all_paths(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten() {
                let path = entry.unwrap().path();
                found.push(path.display().to_string());
                if path.is_dir() {
                    stack.push(path);
                }
            }
        }
        found
    }

    /// Every `.rs` file of the crates and xtask, except integration tests.
    fn sources() -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![root().join("crates"), root().join("xtask/src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if path.is_dir() && name != "tests" && name != "target" {
                    stack.push(path);
                } else if name.ends_with(".rs") {
                    found.push(path);
                }
            }
        }
        found
    }

    /// The lines before the file's test module.
    fn code_lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .map(str::to_string)
            .collect()
    }

    /// `(first line, length)` of every function with a body, by brace counting.
    fn functions(lines: &[String]) -> Vec<(usize, usize)> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let head = lines[i].trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "const fn ",
            ]
            .iter()
            .any(|p| head.starts_with(p));
            if !is_fn {
                i += 1;
                continue;
            }
            let (mut depth, mut opened, mut j) = (0i64, false, i);
            while j < lines.len() {
                let line = &lines[j];
                depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
                opened |= line.contains('{');
                if (opened && depth <= 0) || (!opened && line.trim_end().ends_with(';')) {
                    break;
                }
                j += 1;
            }
            found.push((i + 1, j - i + 1));
            i = j + 1;
        }
        found
    }

    #[test]
    fn files_and_functions_stay_small() {
        let mut problems = Vec::new();
        for path in sources() {
            let lines = code_lines(&path);
            let shown = path.strip_prefix(root()).unwrap().display().to_string();
            if lines.len() > 400 {
                problems.push(format!("{shown}: {} lines before its tests", lines.len()));
            }
            for (line, length) in functions(&lines) {
                if length > 80 {
                    problems.push(format!("{shown}:{line}: a function of {length} lines"));
                }
            }
            let exemption = concat!("allow(clippy::too_many_", "arguments)");
            if lines.iter().any(|l| l.contains(exemption)) {
                problems.push(format!("{shown}: allows too_many_arguments; make a struct"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_function_scanner_measures_bodies() {
        let lines: Vec<String> =
            "fn a() {\n    x;\n}\nfn b();\npub fn c(\n    y: u8,\n) {\n    {}\n}\n"
                .lines()
                .map(str::to_string)
                .collect();
        assert_eq!(functions(&lines), vec![(1, 3), (4, 1), (5, 5)]);
    }
}
