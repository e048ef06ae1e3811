//! bash-god: bash command analysis, optimization and policy-guarded execution.
