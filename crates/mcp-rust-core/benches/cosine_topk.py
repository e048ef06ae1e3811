#!/usr/bin/env python3
"""cosine_topk side by side: read bandwidth, numpy (both ways), every runnable build x kernels.

Usage (after `cargo xtask dist`, which writes the wheel to dist/wheels/):

    python3 crates/mcp-rust-core/benches/cosine_topk.py dist/wheels/mcp_rust_core-*_$(uname -m).whl \\
        [--rows 100000,10000,1000] [--dim 384] [--k 10] [--rounds 30] [--markdown]

The argument is a wheel (installed into a fresh venv under target/kernel-bench/ with numpy,
and the script re-runs itself there) or a directory holding the `mcp_rust_core/` package.

In one process, on one data set per size, it times in interleaved rounds (every contender
once per round, so a load spike on a shared machine hits all of them alike):

- `read`: one thread summing the matrix with the widest loads this CPU has
  (`_Kernels.stream_sum`): the single-thread read bandwidth of wherever the data lives.
- `numpy cosine`: `matrix @ query / (row norms * query norm)` + argpartition (same work).
- `numpy pre-normalized`: `unit_rows @ query` + argpartition, rows normalized beforehand
  (the cheapest numpy can do; cosine ranking with the norms' work done once, up front).
- for every build variant installed *and* runnable on this CPU, for every kernel
  instruction set it can run: `cosine_topk` (norms computed per call) and `cosine_topk`
  with `row_norms` (norms computed once, like the pre-normalized numpy rows).

Each result is checked against an exact float64 ranking. numpy runs with the BLAS threads
its environment gives it (OPENBLAS_NUM_THREADS; printed); by default the whole table is
measured twice, with numpy's default threads and with one, since our kernels use one thread
per call. The goals of issue 14: >= 90 % of `read` at DRAM sizes for every contender, and
>= 1.5x `numpy pre-normalized` in cache.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import venv


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", help="a wheel, or a directory holding mcp_rust_core/")
    parser.add_argument("--rows", default="100000,10000,1000",
                        help="comma-separated row counts (default: 100000,10000,1000)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=30,
                        help="interleaved rounds per size (small sizes run 10x as many)")
    parser.add_argument("--numpy-threads", choices=["both", "default", "1"], default="both")
    parser.add_argument("--markdown", action="store_true", help="print tables for BENCHMARKS.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def workspace_target():
    here = pathlib.Path(__file__).resolve()
    return here.parents[3] / "target" / "kernel-bench"


def wheel_python(wheel):
    """A fresh venv with the wheel and numpy; returns its python."""
    env_dir = workspace_target() / "venv"
    if env_dir.exists():
        subprocess.run(["rm", "-rf", str(env_dir)], check=True)
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    str(wheel), "numpy"], check=True)
    return python


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def cpu_name():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def worker(args):
    """Runs in the interpreter that has the package: measures and prints JSON."""
    import numpy as np

    import mcp_rust_core

    info = mcp_rust_core.build_info()
    variants = [v for v in info["variants_runnable"] if v in info["variants_installed"]]
    skipped = [v for v in info["variants_installed"] if v not in variants]
    modules = {v: mcp_rust_core._load_variant(v) for v in variants}
    best = mcp_rust_core._Kernels("auto")
    results = {"python": sys.version.split()[0], "numpy": np.__version__, "sizes": [],
               "skipped_variants": skipped, "cpu": cpu_name(), "cpus": os.cpu_count(),
               "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
               "load_before": load_average()}
    k = args.k
    for rows in (int(r) for r in args.rows.split(",")):
        rng = np.random.default_rng(rows)
        matrix = rng.standard_normal((rows, args.dim), dtype=np.float32)
        query = rng.standard_normal(args.dim, dtype=np.float32)
        unit_rows = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        row_norms = mcp_rust_core.norms(matrix)

        def top(scores):
            best_k = np.argpartition(-scores, k - 1)[:k]
            return best_k[np.argsort(-scores[best_k], kind="stable")]

        contenders = [
            ("read", f"stream_sum ({best.isa})", lambda: best.stream_sum(matrix)),
            ("numpy cosine", "norms per call",
             lambda: top((matrix @ query) / (np.linalg.norm(matrix, axis=1)
                                             * np.linalg.norm(query)))),
            ("numpy pre-normalized", "rows normalized beforehand", lambda: top(unit_rows @ query)),
        ]
        for variant, module in modules.items():
            for isa in module._Kernels.supported():
                kernels = module._Kernels(isa)
                contenders.append((f"{variant}/{isa}", "norms per call",
                                   lambda kernels=kernels: kernels.cosine_topk(matrix, query, k)[0]))
                contenders.append((f"{variant}/{isa} +norms", "row_norms given",
                                   lambda kernels=kernels: kernels.cosine_topk(
                                       matrix, query, k, row_norms=row_norms)[0]))

        exact = (matrix.astype(np.float64) @ query.astype(np.float64)) / (
            np.linalg.norm(matrix.astype(np.float64), axis=1)
            * np.linalg.norm(query.astype(np.float64)))
        want = np.sort(exact)[::-1][:k]
        for name, _, run in contenders[1:]:
            got = np.sort(exact[run()])[::-1]
            if not np.allclose(got, want, atol=1e-5):
                sys.exit(f"{name} returned a wrong top-{k} for {rows} rows")

        rounds = args.rounds * (10 if rows * args.dim <= 4_000_000 else 1)
        times = {name: [] for name, _, _ in contenders}
        for _ in range(3):
            for _, _, run in contenders:
                run()
        for _ in range(rounds):
            for name, _, run in contenders:
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        results["sizes"].append({
            "rows": rows, "dim": args.dim, "k": k, "bytes": matrix.nbytes,
            "contenders": [{"name": name, "what": what, "best": min(times[name]),
                            "median": statistics.median(times[name])}
                           for name, what, _ in contenders],
        })
    results["load_after"] = load_average()
    print(json.dumps(results))


def print_table(result, markdown):
    print(f"\nCPU: {result['cpu']} ({result['cpus']} CPUs); python {result['python']}, "
          f"numpy {result['numpy']} (BLAS threads: {result['blas_threads']}); "
          f"load average {result['load_before']:.1f} -> {result['load_after']:.1f}")
    if result["skipped_variants"]:
        print(f"SKIPPED (this CPU cannot run them): variants {result['skipped_variants']}")
    for size in result["sizes"]:
        by_name = {c["name"]: c for c in size["contenders"]}
        read = by_name["read"]["best"]
        numpy_pre = by_name["numpy pre-normalized"]["best"]
        megabytes = size["bytes"] / 1e6
        title = f"{size['rows']} x {size['dim']} float32 ({megabytes:.1f} MB), k = {size['k']}"
        header = ["contender", "what", "best ms", "median ms", "GB/s (best)", "of read",
                  "x numpy pre-normalized"]
        rows = []
        for c in size["contenders"]:
            rows.append([c["name"], c["what"], f"{c['best'] * 1e3:.3f}", f"{c['median'] * 1e3:.3f}",
                         f"{size['bytes'] / c['best'] / 1e9:.1f}", f"{read / c['best']:.0%}",
                         f"{numpy_pre / c['best']:.2f}x"])
        if markdown:
            print(f"\n{title}\n")
            print("| " + " | ".join(header) + " |")
            print("|" + "---|" * len(header))
            for row in rows:
                print("| " + " | ".join(row) + " |")
        else:
            print(f"\n{title}")
            widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
            for row in [header] + rows:
                print("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)))


def main():
    args = parse_args()
    if args.worker:
        worker(args)
        return
    package = pathlib.Path(args.package).resolve()
    env = dict(os.environ)
    if package.suffix == ".whl":
        python = wheel_python(package)
    elif (package / "mcp_rust_core" / "__init__.py").is_file():
        python = pathlib.Path(sys.executable)
        env["PYTHONPATH"] = str(package)
    else:
        sys.exit(f"{package} is neither a wheel nor a directory holding mcp_rust_core/")
    settings = {"both": ["default", "1"], "default": ["default"], "1": ["1"]}[args.numpy_threads]
    worker_args = [a for a in sys.argv[1:] if a != args.package] + ["--worker", str(package)]
    for threads in settings:
        run_env = dict(env)
        if threads == "1":
            run_env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        result = subprocess.run([str(python), str(pathlib.Path(__file__).resolve())] + worker_args,
                                env=run_env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"benchmark worker failed:\n{result.stderr}")
        print_table(json.loads(result.stdout.strip().splitlines()[-1]), args.markdown)


if __name__ == "__main__":
    main()
