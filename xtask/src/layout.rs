//! Checks the dependency invariants of DESIGN.md section 1 on the manifests:
//! dependencies point down the crate table, `vision` and `text` never depend on
//! each other, `core` and `data` never depend on each other, and only `xtask`
//! stays free of tch.

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The crate table, top to bottom; a crate may depend only on crates above it.
    const ORDER: [&str; 6] = ["core", "data", "train", "vision", "text", "cli"];

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
            ("vision", "text"),
            ("text", "vision"),
        ];
        for (index, name) in ORDER.iter().enumerate() {
            let deps = internal_deps(&root().join("crates").join(name).join("Cargo.toml"));
            for dep in deps.iter().filter_map(|d| d.strip_prefix("selfsup-")) {
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
}
