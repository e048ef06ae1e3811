//! bash-god: bash command analysis, optimization and policy-guarded execution.

pub mod exec;
pub mod findings;
pub mod parse;
pub mod policy;
pub mod risk;
