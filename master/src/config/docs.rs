//! The key table of `docs/configuration.md`, generated from the registry so
//! the documentation cannot drift from the code (a test compares them).

use super::registry::KEYS;

/// Marks the start of the generated table in `docs/configuration.md`.
pub const BEGIN: &str = "<!-- BEGIN GENERATED KEY TABLE: edit master/src/config/registry.rs, then run UPDATE_DOCS=1 cargo test -p master config::docs -->";
/// Marks the end of the generated table.
pub const END: &str = "<!-- END GENERATED KEY TABLE -->";

/// The Markdown table of every registered key: name, default, value form,
/// environment variables and description.
pub fn key_table() -> String {
    let mut out = String::from(
        "| key | default | form | environment | description |\n|---|---|---|---|---|\n",
    );
    for d in KEYS {
        let name = if d.aliases.is_empty() {
            format!("`{}`", d.name)
        } else {
            let aliases: Vec<String> = d.aliases.iter().map(|a| format!("`{a}`")).collect();
            format!("`{}` (alias {})", d.name, aliases.join(", "))
        };
        let env: Vec<String> = d.env_names().iter().map(|e| format!("`{e}`")).collect();
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            d.default
                .map_or("(unset)".to_string(), |v| format!("`{v}`")),
            d.kind.describe(),
            env.join(" "),
            d.description.replace('|', "\\|"),
        ));
    }
    out
}

/// `doc` with the text between [`BEGIN`] and [`END`] replaced by the
/// current table; `None` when the markers are missing.
pub fn refresh(doc: &str) -> Option<String> {
    let start = doc.find(BEGIN)? + BEGIN.len();
    let end = doc[start..].find(END)? + start;
    Some(format!("{}\n{}{}", &doc[..start], key_table(), &doc[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when `docs/configuration.md` does not hold the current table.
    /// `UPDATE_DOCS=1 cargo test -p master config::docs` rewrites it.
    #[test]
    fn configuration_doc_lists_every_key() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
        let doc = std::fs::read_to_string(&path).expect("docs/configuration.md");
        let fresh = refresh(&doc).expect("the generated-table markers");
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &fresh).expect("write docs/configuration.md");
            return;
        }
        assert!(
            doc == fresh,
            "docs/configuration.md is out of date; run UPDATE_DOCS=1 cargo test -p master config::docs"
        );
    }
}
