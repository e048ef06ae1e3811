"""Bad input to every entry point: a Python exception, never a crash (issue 11).

The named cases are the ones that aborted the interpreter before (allocation failures);
the property tests (hypothesis) throw generated arguments of every kind at each entry point
and allow only documented exception types. A crash (abort, segfault) kills the test run,
so it cannot pass unnoticed.

Profiles: `ci` (default; derandomized, a few hundred examples per test, no example
database) and `fuzz` (`HYPOTHESIS_PROFILE=fuzz`, tens of thousands, random):

    HYPOTHESIS_PROFILE=fuzz PYTHONPATH=<dir holding mcp_rust_core/> \
        python -m unittest discover -s tests/ffi -p test_bad_input.py
"""

import os
import pathlib
import tempfile
import unittest

import numpy as np

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as error:  # a clear failure, not a skip
    raise ImportError(
        "the FFI tests need hypothesis: pip install -r tests/ffi/requirements.txt "
        "(cargo xtask ci does this in target/ffi-venv)"
    ) from error

import mcp_rust_core

settings.register_profile(
    "ci", max_examples=300, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# What bad arguments may raise: the documented errors, nothing else.
ARGUMENT_ERRORS = (TypeError, ValueError, OverflowError)

counts = st.one_of(
    st.integers(-3, 12),
    st.sampled_from([2**31, 2**32, 2**40, 2**62, 2**63 - 1, 2**63, 2**64, 2**70, -(2**63)]),
)
floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
dtypes = st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.uint8, np.bool_])


@st.composite
def arrays(draw, max_dims=3):
    """Arrays of any dtype and shape (mostly float32), sometimes as non-contiguous views."""
    dtype = draw(st.one_of(st.just(np.float32), dtypes))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=9))
    elements = floats32 if dtype == np.float32 else None
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    view = draw(st.sampled_from(["plain", "transposed", "strided", "readonly"]))
    if view == "transposed":
        array = array.T
    elif view == "strided" and array.ndim >= 1:
        array = array[::2]
    elif view == "readonly":
        array.setflags(write=False)
    return array


not_arrays = st.one_of(st.none(), st.integers(), st.text(max_size=5),
                       st.lists(st.floats(width=32), max_size=4))
any_array_argument = st.one_of(arrays(), not_arrays)


class NamedCasesTest(unittest.TestCase):
    """The inputs that used to abort the interpreter."""

    def test_huge_k_returns_every_record(self):
        store = mcp_rust_core.MemoryStore(8)
        for text in ("a", "b", "c"):
            store.add_text(text)
        query = mcp_rust_core.embed_text("a", 8)
        for k in (2**40, 2**62, 2**63 - 1):
            self.assertEqual(len(store.query(query, k)), 3)
            self.assertEqual(len(store.query_text("a", k)), 3)
        with self.assertRaises(OverflowError):
            store.query(query, 2**64)

    def test_huge_dimensions_are_value_errors(self):
        for dim in (2**20 + 1, 2**40, 2**62, 2**63 - 1):
            with self.assertRaisesRegex(ValueError, "dim must be between 1 and 1048576"):
                mcp_rust_core.embed_text("some text", dim)
            with self.assertRaisesRegex(ValueError, "dim must be between 1 and 1048576"):
                mcp_rust_core.MemoryStore(dim)
        self.assertEqual(mcp_rust_core.embed_text("x", 2**20).shape, (2**20,))

    def test_huge_k_in_cosine_topk_is_a_value_error(self):
        matrix = np.eye(3, dtype=np.float32)
        for k in (2**40, 2**63 - 1):
            with self.assertRaisesRegex(ValueError, "k must be between 1 and the number of rows"):
                mcp_rust_core.cosine_topk(matrix, matrix[0].copy(), k)

    def test_row_norms_must_match_the_matrix(self):
        matrix = np.eye(3, dtype=np.float32)
        with self.assertRaisesRegex(ValueError, "row_norms has 2 values but the matrix has 3"):
            mcp_rust_core.cosine_topk(matrix, matrix[0].copy(), 1, row_norms=np.ones(2, np.float32))
        with self.assertRaisesRegex(TypeError, "row_norms must have dtype float32"):
            mcp_rust_core.cosine_topk(matrix, matrix[0].copy(), 1, row_norms=np.ones(3))


class PropertyTest(unittest.TestCase):
    """Generated arguments: a result that keeps its promises, or a documented error."""

    @given(matrix=any_array_argument, query=any_array_argument, k=counts,
           row_norms=st.one_of(st.none(), any_array_argument))
    def test_cosine_topk(self, matrix, query, k, row_norms):
        try:
            indices, scores = mcp_rust_core.cosine_topk(matrix, query, k, row_norms=row_norms)
        except ARGUMENT_ERRORS:
            return
        self.assertEqual(len(indices), k)
        self.assertEqual(len(set(indices.tolist())), k)
        self.assertTrue(((indices >= 0) & (indices < matrix.shape[0])).all())
        real = scores[~np.isnan(scores)]
        self.assertTrue((np.diff(real) <= 0).all(), scores)
        magnitudes = np.abs(np.concatenate([matrix.ravel(), query.ravel()]))
        if row_norms is None and ((magnitudes == 0) | ((magnitudes > 1e-15) & (magnitudes < 1e15))).all():
            # Cosines of well-scaled data are cosines (subnormal or huge values lose the
            # precision of their squares: a score can then leave [-1, 1], but not crash).
            self.assertTrue((np.abs(real) <= 1.0001).all(), scores)

    @given(a=any_array_argument, b=any_array_argument)
    def test_dot(self, a, b):
        try:
            value = mcp_rust_core.dot(a, b)
        except ARGUMENT_ERRORS:
            return
        self.assertIsInstance(value, float)
        self.assertEqual(np.shape(a), np.shape(b))

    @given(matrix=any_array_argument)
    def test_norms(self, matrix):
        try:
            result = mcp_rust_core.norms(matrix)
        except ARGUMENT_ERRORS:
            return
        self.assertEqual(result.shape, (matrix.shape[0],))
        finite = np.isfinite(result)
        self.assertTrue((result[finite] >= 0).all())

    @given(text=st.text(max_size=200), dim=st.one_of(counts, st.integers(1, 2048)))
    def test_embed_text(self, text, dim):
        try:
            vector = mcp_rust_core.embed_text(text, dim)
        except ARGUMENT_ERRORS:
            return
        self.assertEqual(vector.shape, (dim,))
        norm = float(np.linalg.norm(vector))
        self.assertTrue(norm == 0.0 or abs(norm - 1.0) < 1e-4, norm)

    @given(dim=st.one_of(counts, st.integers(1, 16)),
           operations=st.lists(st.tuples(
               st.sampled_from(["add", "add_text", "query", "query_text", "get", "remove"]),
               st.one_of(arrays(max_dims=2), st.text(max_size=20), counts, st.none()),
               st.one_of(counts, st.none(), st.dictionaries(st.text(max_size=3), floats32)),
           ), max_size=12))
    def test_memory_store(self, dim, operations):
        try:
            store = mcp_rust_core.MemoryStore(dim)
        except ARGUMENT_ERRORS:
            return
        for name, first, second in operations:
            method = getattr(store, name)
            arguments = {"add": (first if isinstance(first, str) else "t", first, second),
                         "add_text": (first, second),
                         "query": (first, second), "query_text": (first, second),
                         "get": (first,), "remove": (first,)}[name]
            arguments = [a for a in arguments if a is not None]
            try:
                method(*arguments)
            except ARGUMENT_ERRORS:
                pass
        self.assertGreaterEqual(len(store), 0)

    @given(data=st.binary(max_size=300), flips=st.lists(st.integers(0, 10_000), max_size=4),
           cut=st.one_of(st.none(), st.integers(0, 10_000)))
    def test_memory_store_load(self, data, flips, cut):
        store = mcp_rust_core.MemoryStore(4)
        store.add_text("alpha", {"k": [1, 2]})
        store.add_text("beta")
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "snapshot.bin"
            store.save(path)
            valid = bytearray(path.read_bytes())
            for flip in flips:
                valid[flip % len(valid)] ^= 0xFF
            for content in (data, bytes(valid), bytes(valid[:cut])):
                path.write_bytes(content)
                try:
                    loaded = mcp_rust_core.MemoryStore.load(path)
                except (mcp_rust_core.SnapshotError, OSError):
                    continue
                self.assertEqual(loaded.dim, 4)

    @given(path=st.text(max_size=40), roots=st.one_of(
        st.lists(st.text(max_size=20), max_size=3), st.integers(), st.none()))
    def test_confine_path(self, path, roots):
        try:
            result = mcp_rust_core.confine_path(path, roots)
        except (mcp_rust_core.ConfinementError, TypeError, ValueError):
            return
        self.assertTrue(os.path.isabs(result))

    @given(name=st.text(max_size=12))
    def test_kernels_by_name(self, name):
        try:
            kernels = mcp_rust_core._Kernels(name)
        except ValueError:
            return
        self.assertIn(kernels.isa, mcp_rust_core._Kernels.supported())


if __name__ == "__main__":
    unittest.main()
