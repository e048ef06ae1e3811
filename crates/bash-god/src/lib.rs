//! bash-god: bash command analysis, optimization and policy-guarded execution, served
//! over MCP.
//!
//! The pipeline: [`parse`] turns the text into simple commands (brush-parser, nested
//! substitutions included), [`risk`] rates them, [`findings`] lints and rewrites them,
//! [`policy`] decides what [`exec`] may run, [`history`] remembers outcomes, and
//! [`server`] exposes it all as MCP tools.

pub mod exec;
pub mod findings;
pub mod history;
pub mod parse;
pub mod policy;
pub mod risk;
pub mod server;
pub mod system;

pub use server::{BashGod, Options};
