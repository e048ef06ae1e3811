//! Turning optional user paths into confined directories, and paths back into text.

use std::path::{Path, PathBuf};

use ignore::overrides::{Override, OverrideBuilder};
use mcp_server_runtime::{Roots, ToolError, confine_path};
use schemars::JsonSchema;
use serde::Deserialize;

/// One glob or a list of globs, as tools accept them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Globs {
    One(String),
    Many(Vec<String>),
}

impl Globs {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Globs::One(glob) => vec![glob],
            Globs::Many(globs) => globs,
        }
    }
}

/// The confined `path`, or the first root when none was given.
pub(crate) fn confine_or_first_root(
    path: Option<&str>,
    roots: &Roots,
) -> Result<PathBuf, ToolError> {
    match path {
        Some(path) if !path.is_empty() => Ok(confine_path(path, roots)?),
        _ => Ok(roots.first().to_path_buf()),
    }
}

/// `path` as the caller should pass it back: relative to the first root when under it
/// (relative inputs are resolved against that root), absolute otherwise.
pub fn display_path(roots: &Roots, path: &Path) -> String {
    roots.display(path)
}

/// Include/exclude globs as an `ignore` override rooted at `base` (ripgrep's `-g`):
/// gitignore syntax, so a glob without `/` matches a name at any depth (`*.rs` matches
/// `src/a.rs`), one with `/` is anchored at `base` (`src/*.rs` matches only direct
/// children of `src`), and a leading `!` excludes. The walker prunes excluded directories
/// instead of visiting and then dropping their files. `None` when there are no globs.
pub(crate) fn glob_overrides(base: &Path, globs: &[String]) -> Result<Option<Override>, ToolError> {
    let mut builder = OverrideBuilder::new(base);
    let mut any = false;
    for pattern in globs
        .iter()
        .map(|glob| glob.trim())
        .filter(|glob| !glob.is_empty())
    {
        builder.add(pattern).map_err(|err| {
            ToolError::invalid_input(format!(
                "invalid glob {pattern:?}: {err}; use shell-style globs such as \"*.rs\", \"src/**/*.py\" or \"!*.min.js\""
            ))
        })?;
        any = true;
    }
    if !any {
        return Ok(None);
    }
    builder
        .build()
        .map(Some)
        .map_err(|err| ToolError::invalid_input(format!("invalid glob set: {err}")))
}

/// True for a dot file: overrides that name a file win over the walker's hidden-file
/// rule (as in ripgrep), so callers that promise to skip hidden files check the name too.
pub(crate) fn is_hidden_name(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(overrides: &Override, path: &str, is_dir: bool) -> bool {
        !overrides.matched(path, is_dir).is_ignore()
    }

    #[test]
    fn globs_include_and_exclude() {
        let base = Path::new("/base");
        let globs = ["*.rs".into(), "!**/generated/**".into(), "!vendor/".into()];
        let overrides = glob_overrides(base, &globs).unwrap().unwrap();
        assert!(matches(&overrides, "/base/src/a.rs", false));
        assert!(!matches(&overrides, "/base/src/generated/b.rs", false));
        assert!(!matches(&overrides, "/base/README.md", false));
        // Directories are not dropped for failing an include glob, only for an exclude.
        assert!(matches(&overrides, "/base/src", true));
        assert!(!matches(&overrides, "/base/vendor", true));
        assert!(glob_overrides(base, &[]).unwrap().is_none());
        assert!(glob_overrides(base, &[" ".into()]).unwrap().is_none());
    }

    #[test]
    fn bad_glob_is_invalid_input() {
        let err = glob_overrides(Path::new("/"), &["a[".into()]).unwrap_err();
        assert!(err.to_string().contains("invalid glob"), "{err}");
    }
}
