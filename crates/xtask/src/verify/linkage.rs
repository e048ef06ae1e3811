//! ELF checks besides the instruction audit: a Python module exports exactly its init
//! function; a server is statically linked.

use anyhow::{Context, Result};
use object::Object;

/// Names of the dynamic symbols a shared library defines and exports, sorted.
pub fn exported_symbols(data: &[u8]) -> Result<Vec<String>> {
    let file = object::File::parse(data).context("reading the shared library")?;
    let mut names = Vec::new();
    for export in file.exports().context("reading the dynamic symbol table")? {
        let export = export.context("reading an exported symbol")?;
        match export.name() {
            object::read::NameOrOrdinal::Name(name) => {
                names.push(String::from_utf8_lossy(name).into_owned())
            }
            object::read::NameOrOrdinal::Ordinal(ordinal) => names.push(format!("#{ordinal}")),
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// What is wrong with a Python module's export list: the init function is missing or
/// anything else is exported.
pub fn exports_problems(exports: &[String], module: &str) -> Vec<String> {
    let init = format!("PyInit_{module}");
    let mut problems = Vec::new();
    if !exports.contains(&init) {
        problems.push(format!("does not export {init}; Python cannot import it"));
    }
    let unexpected: Vec<&String> = exports.iter().filter(|name| **name != init).collect();
    if !unexpected.is_empty() {
        problems.push(format!(
            "exports unexpected symbols: {}",
            unexpected
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    problems
}

/// No program interpreter and no needed shared libraries.
pub fn statically_linked(data: &[u8]) -> Result<bool> {
    let file = object::File::parse(data).context("reading the executable")?;
    let has_interpreter = file.section_by_name(".interp").is_some();
    let needed_libraries = file
        .import_libraries()
        .context("reading the needed libraries")?
        .count();
    let imported_symbols = file
        .imports()
        .context("reading the dynamic imports")?
        .count();
    Ok(!has_interpreter && needed_libraries == 0 && imported_symbols == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_must_be_exactly_the_init_function() {
        let good = vec!["PyInit_mcp_rust_core".to_owned()];
        assert!(exports_problems(&good, "mcp_rust_core").is_empty());
        let extra = vec![
            "PyInit_mcp_rust_core".to_owned(),
            "rust_eh_personality".to_owned(),
        ];
        let problems = exports_problems(&extra, "mcp_rust_core");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("rust_eh_personality"), "{problems:?}");
        let missing = exports_problems(&[], "mcp_rust_core");
        assert!(missing[0].contains("PyInit_mcp_rust_core"), "{missing:?}");
    }
}
