#!/usr/bin/env python3
"""Benchmark cosine_topk: the znver4 build vs the generic build vs numpy, same data, one run.

Usage:
    python benches/cosine_topk.py <pythonpath-generic> <pythonpath-znver4> [--rows 100000,10000]
        [--dim 384] [--k 10] [--repeat 30]

Each <pythonpath-*> is a directory holding the `mcp_rust_core/` package with that variant's
native module (`mcp_rust_core/mcp_rust_core.abi3.so`). Build the two variants with

    MCP_FOUNDRY_VARIANT=generic nice -n 10 cargo build --release -p mcp-rust-core \
        --features python --lib --target x86_64-unknown-linux-gnu --target-dir target/bench-generic
    MCP_FOUNDRY_VARIANT=znver4 RUSTFLAGS="-C target-cpu=znver4" nice -n 10 cargo build --release \
        -p mcp-rust-core --features python --lib --target x86_64-unknown-linux-gnu \
        --target-dir target/bench-znver4

and copy each `libmcp_rust_core.so` next to a copy of `python/mcp_rust_core/*.py*`.

The data set is generated once and written to a temporary .npy file; every contender runs in
its own subprocess (two builds of the same module cannot share one interpreter), loads the
same file, checks its answer against an exact float64 reference, and reports the best and
median wall time of `--repeat` calls. numpy is timed as `matrix @ query` + `argpartition`
(dot-product ranking: it skips the row norms cosine needs) and, for an equal-work comparison,
with the row norms computed in the call as well.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# Runs inside each subprocess: argv = [data.npy, query.npy, k, repeat, contender].
WORKER = r"""
import json, sys, time
import numpy as np

data_path, query_path, k, repeat, contender = sys.argv[1:6]
k, repeat = int(k), int(repeat)
matrix = np.load(data_path)
query = np.load(query_path)

if contender == "numpy-dot":
    def run():
        scores = matrix @ query
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.argsort(-scores[top], kind="stable")]
    variant = "numpy " + np.__version__
elif contender == "numpy-cosine":
    def run():
        scores = (matrix @ query) / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.argsort(-scores[top], kind="stable")]
    variant = "numpy " + np.__version__
else:
    import mcp_rust_core
    info = mcp_rust_core.build_info()
    if info["variant"] != contender:
        sys.exit(f"expected the {contender} build on PYTHONPATH, imported {info['variant']}")
    def run():
        return mcp_rust_core.cosine_topk(matrix, query, k)[0]
    variant = f"{info['variant']} (target-cpu {info['target_cpu']}, profile {info['profile']})"

for _ in range(3):
    indices = run()
times = []
for _ in range(repeat):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({"variant": variant, "indices": [int(i) for i in indices],
                  "best": times[0], "median": times[len(times) // 2]}))
"""


def exact_topk(matrix, query, k, cosine):
    m, q = matrix.astype(np.float64), query.astype(np.float64)
    scores = m @ q
    if cosine:
        scores = scores / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))
    return scores, set(np.argsort(-scores, kind="stable")[:k].tolist())


def run_contender(contender, pythonpath, data_path, query_path, k, repeat):
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.path.abspath(pythonpath)
    result = subprocess.run(
        [sys.executable, "-c", WORKER, data_path, query_path, str(k), str(repeat), contender],
        env=env, capture_output=True, text=True,
    )
    if result.returncode != 0:
        sys.exit(f"{contender} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pythonpath_generic")
    parser.add_argument("pythonpath_znver4")
    parser.add_argument("--rows", default="100000,10000",
                        help="comma-separated row counts (default: 100000,10000)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    contenders = [
        ("generic", args.pythonpath_generic),
        ("znver4", args.pythonpath_znver4),
        ("numpy-dot", None),
        ("numpy-cosine", None),
    ]
    print(f"cosine_topk, dim={args.dim}, k={args.k}, repeat={args.repeat}, "
          f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in (int(r) for r in args.rows.split(",")):
            rng = np.random.default_rng(rows)
            matrix = rng.standard_normal((rows, args.dim), dtype=np.float32)
            query = rng.standard_normal(args.dim, dtype=np.float32)
            data_path = os.path.join(tmp, "matrix.npy")
            query_path = os.path.join(tmp, "query.npy")
            np.save(data_path, matrix)
            np.save(query_path, query)
            results = {}
            for name, pythonpath in contenders:
                result = run_contender(name, pythonpath, data_path, query_path, args.k, args.repeat)
                scores, expected = exact_topk(matrix, query, args.k, cosine=name != "numpy-dot")
                # Rounding may swap near-ties at the k-th place; compare scores, not only ids.
                got = sorted(scores[result["indices"]].tolist(), reverse=True)
                want = sorted(scores[list(expected)].tolist(), reverse=True)
                if not np.allclose(got, want, atol=1e-5):
                    sys.exit(f"{name} returned a wrong top-{args.k} for {rows} rows")
                results[name] = result

            megabytes = matrix.nbytes / 1e6
            print(f"\n{rows} x {args.dim} float32 ({megabytes:.0f} MB), k={args.k}")
            print(f"  {'contender':<14} {'best ms':>9} {'median ms':>10} {'GB/s':>6}  build")
            for name, result in results.items():
                print(f"  {name:<14} {result['best'] * 1e3:9.2f} {result['median'] * 1e3:10.2f} "
                      f"{megabytes / 1e3 / result['best']:6.1f}  {result['variant']}")
            z, g = results["znver4"]["median"], results["generic"]["median"]
            print(f"  znver4 speed-up over generic:      {g / z:5.2f}x (median)")
            print(f"  znver4 vs numpy matrix@query:      {results['numpy-dot']['median'] / z:5.2f}x")
            print(f"  znver4 vs numpy cosine (norms too): {results['numpy-cosine']['median'] / z:5.2f}x")


if __name__ == "__main__":
    main()
