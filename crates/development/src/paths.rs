//! Turning optional user paths into confined directories, and paths back into text.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
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

/// Include/exclude globs matched against paths relative to the searched directory.
/// `*` crosses directories (`*.rs` matches `src/a.rs`); a leading `!` excludes.
#[derive(Debug)]
pub(crate) struct GlobFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl GlobFilter {
    pub(crate) fn new(globs: &[String]) -> Result<Self, ToolError> {
        let mut include = GlobSetBuilder::new();
        let mut exclude = GlobSetBuilder::new();
        let (mut includes, mut excludes) = (0, 0);
        for pattern in globs
            .iter()
            .map(|glob| glob.trim())
            .filter(|glob| !glob.is_empty())
        {
            let (negated, body) = match pattern.strip_prefix('!') {
                Some(body) => (true, body),
                None => (false, pattern),
            };
            let glob = GlobBuilder::new(body).build().map_err(|err| {
                ToolError::invalid_input(format!(
                    "invalid glob {pattern:?}: {err}; use shell-style globs such as \"*.rs\", \"src/**/*.py\" or \"!*.min.js\""
                ))
            })?;
            if negated {
                exclude.add(glob);
                excludes += 1;
            } else {
                include.add(glob);
                includes += 1;
            }
        }
        let build = |builder: GlobSetBuilder, count: usize| -> Result<Option<GlobSet>, ToolError> {
            if count == 0 {
                return Ok(None);
            }
            builder
                .build()
                .map(Some)
                .map_err(|err| ToolError::invalid_input(format!("invalid glob set: {err}")))
        };
        Ok(Self {
            include: build(include, includes)?,
            exclude: build(exclude, excludes)?,
        })
    }

    /// True when `relative` passes: matches an include glob (if any) and no exclude glob.
    pub(crate) fn accepts(&self, relative: &Path) -> bool {
        self.include
            .as_ref()
            .is_none_or(|set| set.is_match(relative))
            && self
                .exclude
                .as_ref()
                .is_none_or(|set| !set.is_match(relative))
    }
}

/// Cuts `text` to at most `max_bytes` on a char boundary; true when something was cut.
pub(crate) fn cut_to(text: &str, max_bytes: usize) -> (&str, bool) {
    if text.len() <= max_bytes {
        return (text, false);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_include_and_exclude() {
        let filter = GlobFilter::new(&["*.rs".into(), "!**/generated/**".into()]).unwrap();
        assert!(filter.accepts(Path::new("src/a.rs")));
        assert!(!filter.accepts(Path::new("src/generated/b.rs")));
        assert!(!filter.accepts(Path::new("README.md")));
        let everything = GlobFilter::new(&[]).unwrap();
        assert!(everything.accepts(Path::new("any/thing")));
    }

    #[test]
    fn bad_glob_is_invalid_input() {
        let err = GlobFilter::new(&["a[".into()]).unwrap_err();
        assert!(err.to_string().contains("invalid glob"), "{err}");
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut_to("héllo", 2), ("h", true));
        assert_eq!(cut_to("hi", 10), ("hi", false));
    }
}
