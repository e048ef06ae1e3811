//! The cost of parsing in a helper process: `cargo bench -p bash-god --bench parse`.
//!
//! The server parses every command in a re-executed bash-god (see `parse::helper`) so that
//! no input can hang or crash it. This measures, side by side in one run, a parse in this
//! process (`parse_here`) and the same parse through a helper (spawn, pipe, parse, JSON),
//! for a one-liner, a 4 KiB script and a 40 KiB script. Read the ratios, not the absolute
//! times, on a loaded machine; the helper's fixed cost is the spawn of the binary.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use bash_god::parse::helper::Containment;
use bash_god::parse::parse_here;
use criterion::{Criterion, criterion_group, criterion_main};

const SCRIPT: &str = r#"
deploy() {
  local target="${1:?target}"
  for f in $(find build -name '*.tar.gz'); do
    if [[ -r $f && ! -L $f ]]; then
      case "$target" in
        prod) rsync -a "$f" "host:/srv/$(basename "$f")" || exit 1 ;;
        *) cp "$f" "/tmp/$target/" ;;
      esac
    fi
  done
  echo "$(date +%s) deployed $(ls build | wc -l) files" >> deploy.log
}
"#;

fn bench_parse(c: &mut Criterion) {
    let helper = Containment::new(
        PathBuf::from(env!("CARGO_BIN_EXE_bash-god")),
        Duration::from_secs(30),
    );
    let inputs = [
        ("one_liner", "cat log.txt | grep -c ERROR".to_owned()),
        ("script_4k", SCRIPT.repeat(4096 / SCRIPT.len())),
        ("script_40k", SCRIPT.repeat(40 * 1024 / SCRIPT.len())),
    ];
    let mut group = c.benchmark_group("parse");
    group.sample_size(20);
    for (name, text) in &inputs {
        group.bench_function(format!("{name}/in_process"), |b| {
            b.iter(|| parse_here(black_box(text)).unwrap())
        });
        group.bench_function(format!("{name}/helper_process"), |b| {
            b.iter(|| helper.parse(black_box(text)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
