//! Prints every function of the given files as tab-separated
//! `file  start_line  end_line  name  cyclomatic_complexity  nloc  parameters`,
//! the columns lizard reports, for comparing the two (see BENCHMARKS.md).
//!
//! `cargo run -p code-intel --example functions -- FILE...`

use std::path::Path;
use std::process::ExitCode;

use code_intel::Language;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for argument in std::env::args().skip(1) {
        let path = Path::new(&argument);
        let Some(language) = Language::from_path(path) else {
            eprintln!("{argument}: not a supported language (by extension); skipped");
            continue;
        };
        let source = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(error) => {
                eprintln!("{argument}: cannot read: {error}");
                status = ExitCode::FAILURE;
                continue;
            }
        };
        match code_intel::functions(language, &source) {
            Ok(functions) => {
                for function in functions {
                    println!(
                        "{argument}\t{}\t{}\t{}\t{}\t{}\t{}",
                        function.start_line,
                        function.end_line,
                        function.qualified_name,
                        function.cyclomatic_complexity,
                        function.nloc,
                        function.parameters
                    );
                }
            }
            Err(error) => {
                eprintln!("{argument}: {error}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
