"""FFI tests of the shipped `mcp_rust_core` Python extension module.

Run (the xtask CI does this for every CPU variant):

    PYTHONPATH=<dir holding mcp_rust_core/> \
    MCP_FOUNDRY_EXPECT_VARIANT=generic|znver4 \
    MCP_FOUNDRY_CDYLIB=<path of the built .so> \
    python -m unittest discover -s tests/ffi -v

Both environment variables are optional: without them the variant is not pinned and the export
check inspects the native module that was imported. Variant selection, the kernels' instruction
sets and bad input have their own files (test_variants.py, test_bad_input.py).
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

import numpy as np

import mcp_rust_core
from ffi_support import python_command

# The native module the package chose for this CPU (the baseline build, or a variant's).
native = mcp_rust_core._native


def random_matrix(rows, dim, seed=0):
    return np.random.default_rng(seed).standard_normal((rows, dim), dtype=np.float32)


def numpy_cosine_topk(matrix, query, k):
    """Reference: exact cosine similarities in float64, full stable sort."""
    m = matrix.astype(np.float64)
    q = query.astype(np.float64)
    denominator = np.linalg.norm(m, axis=1) * np.linalg.norm(q)
    scores = np.divide(m @ q, denominator, out=np.zeros(len(m)), where=denominator != 0)
    order = np.argsort(-scores, kind="stable")[:k]
    return order, scores


class BuildInfoTest(unittest.TestCase):
    def test_build_info_describes_this_build(self):
        info = mcp_rust_core.build_info()
        self.assertEqual(
            set(info),
            {"crate_version", "variant", "target_cpu", "target_features", "rustc_version",
             "git_commit", "profile", "kernels", "kernels_supported", "variant_request",
             "variants_runnable", "variants_installed"},
        )
        self.assertIn(info["kernels"], info["kernels_supported"])
        self.assertIn(info["variant"], info["variants_runnable"])
        self.assertIn(info["variant"], info["variants_installed"])
        self.assertEqual(info["crate_version"], mcp_rust_core.__version__)
        self.assertTrue(info["rustc_version"].startswith("rustc "), info)
        self.assertTrue(info["variant"])
        self.assertIsInstance(info["target_features"], list)
        if sys.platform == "linux" and os.uname().machine == "x86_64":
            self.assertIn("sse2", info["target_features"])

    def test_variant_matches_the_expected_build(self):
        expected = os.environ.get("MCP_FOUNDRY_EXPECT_VARIANT")
        if not expected:
            self.skipTest("MCP_FOUNDRY_EXPECT_VARIANT not set")
        if os.environ.get("MCP_RUST_CORE_VARIANT", "auto") not in ("", "auto"):
            self.skipTest("MCP_RUST_CORE_VARIANT pins the variant instead")
        info = mcp_rust_core.build_info()
        self.assertEqual(info["variant"], expected, info)
        if expected == "znver4":
            self.assertEqual(info["target_cpu"], "znver4")
            self.assertIn("avx512f", info["target_features"])
        elif expected == "generic":
            self.assertNotIn("avx512f", info["target_features"])


class ExportTest(unittest.TestCase):
    """The shared library exports the module init function and nothing else of ours."""

    def test_only_pyinit_is_exported(self):
        # The given library, else every build of the module the package holds (an installed
        # wheel has the baseline and each variant's).
        cdylib = os.environ.get("MCP_FOUNDRY_CDYLIB")
        package = pathlib.Path(mcp_rust_core.__file__).parent
        libraries = [cdylib] if cdylib else sorted(map(str, package.glob("**/mcp_rust_core*.so")))
        if not cdylib:
            self.assertIn(native.__file__, libraries)
        nm = shutil.which("nm")
        if nm is None:
            self.fail("nm (binutils) is required for the export check")
        for library in libraries:
            with self.subTest(library=library):
                self.check_exports(nm, library)

    def check_exports(self, nm, library):
        output = subprocess.run(
            [nm, "-D", "--defined-only", library], check=True, capture_output=True, text=True
        ).stdout
        # Lines are "<address> <type> <name>"; keep the names of global symbols.
        exported = {
            fields[2].split("@")[0]
            for fields in (line.split() for line in output.splitlines())
            if len(fields) == 3 and fields[1].isupper()
        }
        self.assertIn("PyInit_mcp_rust_core", exported)
        unexpected = sorted(name for name in exported - {"PyInit_mcp_rust_core"})
        self.assertEqual(unexpected, [], f"{library} exports more than the module init")


class CosineTopkTest(unittest.TestCase):
    def test_matches_numpy_reference_on_random_data(self):
        for rows, dim, k in [(1000, 384, 10), (257, 33, 7), (50, 1, 3), (5, 100, 5)]:
            with self.subTest(rows=rows, dim=dim, k=k):
                matrix = random_matrix(rows, dim, seed=rows)
                query = random_matrix(1, dim, seed=dim + 1)[0]
                indices, scores = mcp_rust_core.cosine_topk(matrix, query, k)
                self.assertEqual(indices.dtype, np.int64)
                self.assertEqual(scores.dtype, np.float32)
                self.assertEqual(indices.shape, (k,))
                expected_order, expected_scores = numpy_cosine_topk(matrix, query, k)
                np.testing.assert_allclose(scores, expected_scores[expected_order], atol=1e-5)
                # Each returned index really has the returned score.
                np.testing.assert_allclose(expected_scores[indices], scores, atol=1e-5)
                self.assertTrue(np.all(np.diff(scores) <= 0), "scores not best-first")

    def test_exact_match_ranks_first_and_zero_rows_score_zero(self):
        matrix = np.array([[0, 0, 0], [1, 2, 3], [-1, -2, -3]], dtype=np.float32)
        indices, scores = mcp_rust_core.cosine_topk(matrix, np.array([2, 4, 6], np.float32), 3)
        self.assertEqual(indices.tolist(), [1, 0, 2])
        np.testing.assert_allclose(scores, [1.0, 0.0, -1.0], atol=1e-6)

    def test_accepts_read_only_arrays(self):
        matrix = random_matrix(20, 8)
        matrix.setflags(write=False)
        indices, _ = mcp_rust_core.cosine_topk(matrix, matrix[3].copy(), 1)
        self.assertEqual(indices.tolist(), [3])

    def test_wrong_dtype_is_type_error(self):
        matrix = random_matrix(4, 3)
        with self.assertRaisesRegex(TypeError, "matrix must have dtype float32, got float64"):
            mcp_rust_core.cosine_topk(matrix.astype(np.float64), matrix[0], 1)
        with self.assertRaisesRegex(TypeError, "query must have dtype float32"):
            mcp_rust_core.cosine_topk(matrix, matrix[0].astype(np.int32), 1)
        with self.assertRaisesRegex(TypeError, "matrix must be a numpy.ndarray"):
            mcp_rust_core.cosine_topk([[1.0, 2.0]], matrix[0], 1)

    def test_wrong_shape_is_value_error(self):
        matrix = random_matrix(4, 3)
        with self.assertRaisesRegex(ValueError, r"matrix must be of shape \(rows, dim\)"):
            mcp_rust_core.cosine_topk(matrix[0], matrix[0], 1)
        with self.assertRaisesRegex(ValueError, r"query must be of shape \(dim,\)"):
            mcp_rust_core.cosine_topk(matrix, matrix, 1)
        with self.assertRaisesRegex(ValueError, "dimension mismatch: expected .* length 3, got 2"):
            mcp_rust_core.cosine_topk(matrix, matrix[0, :2].copy(), 1)

    def test_non_contiguous_input_is_value_error(self):
        matrix = random_matrix(6, 4)
        with self.assertRaisesRegex(ValueError, "matrix is not C-contiguous.*ascontiguousarray"):
            mcp_rust_core.cosine_topk(matrix.T, np.ones(6, np.float32), 1)
        with self.assertRaisesRegex(ValueError, "query is not C-contiguous"):
            mcp_rust_core.cosine_topk(matrix, random_matrix(1, 8)[0][::2], 1)

    def test_bad_k_and_empty_input_are_value_errors(self):
        matrix = random_matrix(4, 3)
        for k in (0, 5, -1):
            with self.subTest(k=k), self.assertRaisesRegex(ValueError, r"k must be"):
                mcp_rust_core.cosine_topk(matrix, matrix[0], k)
        with self.assertRaisesRegex(ValueError, "matrix is empty"):
            mcp_rust_core.cosine_topk(np.zeros((0, 3), np.float32), matrix[0], 1)
        with self.assertRaisesRegex(ValueError, "matrix is empty"):
            mcp_rust_core.cosine_topk(np.zeros((3, 0), np.float32), np.zeros(0, np.float32), 1)


class DotNormsEmbedTest(unittest.TestCase):
    def test_dot_matches_numpy(self):
        for n in (0, 1, 31, 32, 33, 1000):
            a, b = random_matrix(2, n, seed=n)
            self.assertAlmostEqual(
                mcp_rust_core.dot(a, b), float(a.astype(np.float64) @ b.astype(np.float64)),
                delta=1e-4 * max(1, n),
            )

    def test_dot_errors(self):
        a = np.ones(3, np.float32)
        with self.assertRaisesRegex(ValueError, "dimension mismatch"):
            mcp_rust_core.dot(a, np.ones(4, np.float32))
        with self.assertRaises(TypeError):
            mcp_rust_core.dot(a, np.ones(3, np.float64))
        with self.assertRaisesRegex(ValueError, "must be of shape"):
            mcp_rust_core.dot(np.ones((1, 3), np.float32), a)
        with self.assertRaisesRegex(ValueError, "not C-contiguous"):
            mcp_rust_core.dot(np.ones(6, np.float32)[::2], a)

    def test_norms_match_numpy(self):
        matrix = random_matrix(100, 77)
        np.testing.assert_allclose(
            mcp_rust_core.norms(matrix), np.linalg.norm(matrix, axis=1), rtol=1e-5
        )
        self.assertEqual(mcp_rust_core.norms(np.zeros((0, 4), np.float32)).shape, (0,))

    def test_norms_errors(self):
        with self.assertRaisesRegex(ValueError, "0 columns"):
            mcp_rust_core.norms(np.zeros((2, 0), np.float32))
        with self.assertRaisesRegex(ValueError, "must be of shape"):
            mcp_rust_core.norms(np.zeros(4, np.float32))
        with self.assertRaises(TypeError):
            mcp_rust_core.norms(np.zeros((2, 2), np.float16))
        with self.assertRaisesRegex(ValueError, "not C-contiguous"):
            mcp_rust_core.norms(random_matrix(3, 5).T)

    def test_embed_text(self):
        a = mcp_rust_core.embed_text("git commit -m fix", 64)
        self.assertEqual((a.dtype, a.shape), (np.float32, (64,)))
        self.assertAlmostEqual(float(np.linalg.norm(a)), 1.0, places=5)
        np.testing.assert_array_equal(a, mcp_rust_core.embed_text("GIT COMMIT -M FIX", 64))
        near = mcp_rust_core.embed_text("git commit -m fixes", 64)
        far = mcp_rust_core.embed_text("docker compose up", 64)
        self.assertGreater(float(a @ near), float(a @ far))
        self.assertEqual(mcp_rust_core.embed_text("abc").shape, (256,))
        self.assertFalse(mcp_rust_core.embed_text("", 8).any())
        for dim in (0, -3):
            with self.assertRaisesRegex(ValueError, "dim must be"):
                mcp_rust_core.embed_text("x", dim)


class MemoryStoreTest(unittest.TestCase):
    def make_store(self):
        store = mcp_rust_core.MemoryStore(64)
        for i, text in enumerate(["ls -la", "git status", "git stash pop", "cargo build"]):
            store.add(text, mcp_rust_core.embed_text(text, 64), {"n": i, "tags": ["cli"]})
        return store

    def test_add_query_len_get_remove(self):
        store = self.make_store()
        self.assertEqual(len(store), 4)
        self.assertEqual(store.dim, 64)
        self.assertEqual(repr(store), "MemoryStore(dim=64, records=4)")
        hits = store.query(mcp_rust_core.embed_text("git status", 64), 2)
        self.assertEqual([h["text"] for h in hits], ["git status", "git stash pop"])
        self.assertEqual(hits[0]["metadata"], {"n": 1, "tags": ["cli"]})
        self.assertAlmostEqual(hits[0]["score"], 1.0, places=5)
        self.assertEqual(hits[0]["id"], 2)
        record = store.get(2)
        self.assertEqual(record["text"], "git status")
        np.testing.assert_array_equal(record["embedding"], mcp_rust_core.embed_text("git status", 64))
        self.assertIsNone(store.get(999))
        self.assertTrue(store.remove(2))
        self.assertFalse(store.remove(2))
        self.assertEqual(len(store), 3)
        self.assertEqual(len(store.query(mcp_rust_core.embed_text("x", 64), 10)), 3)

    def test_update_replaces_the_embedding_and_its_cached_norm(self):
        store = mcp_rust_core.MemoryStore(3)
        a = store.add("a", np.array([1, 0, 0], np.float32), {"k": 1})
        # Same direction as the query, 100x its length: a stale norm would not score 1.
        self.assertTrue(store.update(a, np.array([0, 100, 0], np.float32)))
        hits = store.query(np.array([0, 1, 0], np.float32), 1)
        self.assertAlmostEqual(hits[0]["score"], 1.0, places=5)
        self.assertEqual((hits[0]["text"], hits[0]["metadata"]), ("a", {"k": 1}))
        self.assertTrue(store.update(a, np.array([3, 4, 0], np.float32), text="b", metadata=[2]))
        self.assertEqual((store.get(a)["text"], store.get(a)["metadata"]), ("b", [2]))
        with self.assertRaisesRegex(ValueError, "3-dimensional"):
            store.update(a, np.ones(2, np.float32))
        self.assertTrue(store.remove(a))
        self.assertFalse(store.update(a, np.ones(3, np.float32)))
        self.assertEqual(len(store), 0)

    def test_text_helpers_and_default_metadata(self):
        store = mcp_rust_core.MemoryStore(32)
        first = store.add_text("make test")
        second = store.add_text("make build", metadata={"exit": 0})
        self.assertEqual((first, second), (1, 2))
        hits = store.query_text("make tests", k=1)
        self.assertEqual(hits[0]["text"], "make test")
        self.assertIsNone(hits[0]["metadata"])
        self.assertEqual(mcp_rust_core.MemoryStore(4).query(np.ones(4, np.float32)), [])

    def test_errors(self):
        store = mcp_rust_core.MemoryStore(4)
        with self.assertRaisesRegex(ValueError, "4-dimensional"):
            store.add("x", np.ones(3, np.float32))
        with self.assertRaisesRegex(ValueError, "must be finite"):
            store.add("x", np.array([1, np.nan, 0, 0], np.float32))
        with self.assertRaises(TypeError):
            store.add("x", np.ones(4, np.float64))
        with self.assertRaisesRegex(ValueError, "not JSON compliant|JSON"):
            store.add("x", np.ones(4, np.float32), {"bad": float("nan")})
        with self.assertRaisesRegex(TypeError, "not JSON serializable"):
            store.add("x", np.ones(4, np.float32), {"bad": object()})
        with self.assertRaisesRegex(ValueError, "4-dimensional"):
            store.query(np.ones(5, np.float32))
        with self.assertRaisesRegex(ValueError, "k must be >= 0"):
            store.query(np.ones(4, np.float32), -1)
        with self.assertRaisesRegex(ValueError, "dim must be between 1 and 1048576, got 0"):
            mcp_rust_core.MemoryStore(0)
        self.assertEqual(len(store), 0, "failed adds must not store anything")

    def test_save_load_round_trip_and_corruption(self):
        store = self.make_store()
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "store.bin"
            store.save(path)
            loaded = mcp_rust_core.MemoryStore.load(str(path))
            self.assertEqual(len(loaded), 4)
            self.assertEqual(loaded.get(3)["metadata"], {"n": 2, "tags": ["cli"]})
            self.assertEqual(loaded.add_text("new"), 5, "ids continue after the snapshot")
            self.assertEqual(os.listdir(tmp), ["store.bin"], "no temporary file left behind")

            data = path.read_bytes()
            path.write_bytes(data[:-10])
            with self.assertRaisesRegex(mcp_rust_core.SnapshotError, "truncated"):
                mcp_rust_core.MemoryStore.load(path)
            corrupted = bytearray(data)
            corrupted[-1] ^= 0xFF
            path.write_bytes(bytes(corrupted))
            with self.assertRaisesRegex(mcp_rust_core.SnapshotError, "corrupt"):
                mcp_rust_core.MemoryStore.load(path)
            path.write_text("hello")
            with self.assertRaisesRegex(ValueError, "not a learning-store snapshot"):
                mcp_rust_core.MemoryStore.load(path)
            with self.assertRaisesRegex(OSError, "cannot read snapshot"):
                mcp_rust_core.MemoryStore.load(pathlib.Path(tmp) / "missing.bin")
            with self.assertRaises(OSError):
                store.save(pathlib.Path(tmp) / "no-such-dir" / "store.bin")


class ConfinePathTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        base = pathlib.Path(self._tmp.name).resolve()
        self.root = base / "data"
        (self.root / "sub").mkdir(parents=True)
        (self.root / "sub" / "file.txt").write_text("x")
        (base / "data-evil").mkdir()
        (base / "secret.txt").write_text("s")
        os.symlink(base / "secret.txt", self.root / "link-out")

    def tearDown(self):
        self._tmp.cleanup()

    def test_paths_inside_resolve_to_canonical(self):
        expected = str(self.root / "sub" / "file.txt")
        self.assertEqual(mcp_rust_core.confine_path("sub/file.txt", [self.root]), expected)
        self.assertEqual(mcp_rust_core.confine_path(expected, [str(self.root)]), expected)
        self.assertEqual(
            mcp_rust_core.confine_path("sub/../sub/file.txt", [self.root]), expected
        )

    def test_escapes_raise_confinement_error(self):
        base = self.root.parent
        for path in ["../secret.txt", "link-out", str(base / "data-evil"), "a\0b", "missing.txt",
                     str(base / "secret.txt")]:
            with self.subTest(path=path), self.assertRaises(mcp_rust_core.ConfinementError):
                mcp_rust_core.confine_path(path, [self.root])
        self.assertTrue(issubclass(mcp_rust_core.ConfinementError, ValueError))

    def test_invalid_roots_raise_confinement_error(self):
        with self.assertRaises(mcp_rust_core.ConfinementError):
            mcp_rust_core.confine_path("x", [self.root / "nope"])
        with self.assertRaises(TypeError):
            mcp_rust_core.confine_path("x", 42)


class ConcurrencyTest(unittest.TestCase):
    def test_cosine_topk_releases_the_gil(self):
        """Deterministic overlap check, no timing threshold.

        With a huge switch interval the interpreter never preempts a thread that holds the GIL,
        so the main thread can only run while the worker is inside cosine_topk if the call
        released the GIL. If it did not, the worker would finish the call and set `done` before
        the main thread could look, in every attempt. On a loaded machine the OS may not run the
        main thread during one call even when the GIL is free, so one overlap in a few attempts
        is the proof (a held GIL gives none, however often it is tried).
        """
        matrix = random_matrix(20_000, 384)
        query = matrix[7].copy()
        attempts = []
        for _ in range(10):
            started = threading.Event()
            state = {"done": False}

            def worker():
                started.set()
                state["indices"] = mcp_rust_core.cosine_topk(matrix, query, 5)[0]
                state["done"] = True

            previous = sys.getswitchinterval()
            sys.setswitchinterval(1000.0)
            try:
                thread = threading.Thread(target=worker)
                thread.start()
                started.wait()
                overlapped = not state["done"]
            finally:
                sys.setswitchinterval(previous)
            thread.join()
            self.assertEqual(state["indices"][0], 7)
            attempts.append(overlapped)
            if overlapped:
                break
        self.assertTrue(any(attempts), f"cosine_topk held the GIL for the whole call in "
                                       f"{len(attempts)} attempts")

    def test_parallel_calls_agree_and_report_parallelism(self):
        matrix = random_matrix(50_000, 384, seed=3)
        queries = random_matrix(4, 384, seed=4)
        expected = [mcp_rust_core.cosine_topk(matrix, q, 10)[0].tolist() for q in queries]
        results = [None] * len(queries)
        barrier = threading.Barrier(len(queries))

        def worker(i):
            barrier.wait()
            for _ in range(3):
                results[i] = mcp_rust_core.cosine_topk(matrix, queries[i], 10)[0].tolist()

        import time

        wall, cpu = time.perf_counter(), time.process_time()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(queries))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.assertEqual(results, expected)
        # Informational: CPU time / wall time > 1 means threads ran at once (depends on free cores).
        print(f"\n  parallel cosine_topk: cpu/wall = {cpu / wall:.2f} on {os.cpu_count()} cores",
              file=sys.stderr)

    def test_memory_store_is_safe_across_threads(self):
        store = mcp_rust_core.MemoryStore(16)

        def worker(t):
            for i in range(200):
                store.add_text(f"thread {t} item {i}", {"t": t})
                store.query_text(f"thread {t}", 3)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(store), 800)


class PanicSafetyTest(unittest.TestCase):
    def test_rust_panic_becomes_python_exception(self):
        with self.assertRaises(mcp_rust_core.PanicException) as caught:
            native._raise_rust_panic("deliberate panic from the FFI test")
        self.assertIn("deliberate panic from the FFI test", str(caught.exception))
        # The interpreter and the module keep working afterwards.
        indices, _ = mcp_rust_core.cosine_topk(np.eye(3, dtype=np.float32), np.ones(3, np.float32), 1)
        self.assertEqual(indices.tolist(), [0])

    def test_panic_in_a_fresh_interpreter_does_not_abort_it(self):
        code = (
            "import mcp_rust_core\n"
            "try:\n"
            "    mcp_rust_core._native._raise_rust_panic('boom')\n"
            "except mcp_rust_core.PanicException:\n"
            "    print('survived')\n"
        )
        result = subprocess.run(python_command() + ["-c", code], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "survived")


class PackageTest(unittest.TestCase):
    def test_package_layout_and_reexports(self):
        package_dir = pathlib.Path(mcp_rust_core.__file__).parent
        for name in ("__init__.py", "__init__.pyi", "py.typed"):
            self.assertTrue((package_dir / name).is_file(), f"{name} missing from {package_dir}")
        native_dir = pathlib.Path(native.__file__).parent
        self.assertIn(native_dir, (package_dir, package_dir / "_variants" / native_dir.name))
        for name in mcp_rust_core.__all__:
            if name != "build_info":  # wrapped: it adds the facts of the choice
                self.assertIs(getattr(mcp_rust_core, name), getattr(native, name))
        self.assertEqual(mcp_rust_core.MemoryStore.__module__, "mcp_rust_core")
        self.assertTrue(mcp_rust_core.cosine_topk.__doc__)


if __name__ == "__main__":
    unittest.main()
