//! Runs `code_stats` on a directory and prints the JSON result, so the counts (and the
//! time) can be compared with the `tokei` command line tool (see BENCHMARKS.md).
//!
//! `cargo run --release -p quality --example code_stats -- DIR`

use std::process::ExitCode;

use code_intel::walk::WalkOptions;

fn main() -> ExitCode {
    let Some(root) = std::env::args_os().nth(1) else {
        eprintln!("usage: code_stats DIR");
        return ExitCode::from(2);
    };
    let options = WalkOptions {
        max_files: usize::MAX,
        max_total_bytes: u64::MAX,
        max_file_bytes: u64::MAX,
        ..WalkOptions::default()
    };
    let stats = quality::stats::code_stats(root.as_ref(), &options, || false);
    match serde_json::to_string_pretty(&stats) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cannot serialize the result: {error}");
            ExitCode::FAILURE
        }
    }
}
