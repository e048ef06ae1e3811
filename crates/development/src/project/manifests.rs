//! Declarative manifests, one module per ecosystem: Cargo.toml (`cargo`), package.json
//! (`npm`), pyproject.toml, setup.cfg and requirements.txt (`python`), go.mod and go.work
//! (`go`), pom.xml (`maven`). The TOML helpers here serve Cargo and Python alike.

use toml::{Table, Value as Toml};

mod cargo;
mod go;
mod maven;
mod npm;
mod python;

pub(super) use self::cargo::cargo;
pub(super) use self::go::{go_mod, go_work};
pub(super) use self::maven::pom;
pub(super) use self::npm::npm;
pub(super) use self::python::{pyproject, requirements, setup_cfg};

pub(super) fn parse_toml(text: &str) -> Result<Table, String> {
    text.parse::<Table>()
        .map_err(|err| format!("invalid TOML: {err}"))
}

pub(super) fn str_at<'a>(table: &'a Table, key: &str) -> Option<&'a str> {
    table.get(key).and_then(Toml::as_str)
}

pub(super) fn string_list(value: Option<&Toml>) -> Vec<&str> {
    value
        .and_then(Toml::as_array)
        .map(|items| items.iter().filter_map(Toml::as_str).collect())
        .unwrap_or_default()
}
