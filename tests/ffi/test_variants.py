"""Which build the package loads, and which kernels it runs: on this CPU and on emulated ones.

The variants come from the Rust side (the workspace's table, compiled into the baseline
module); nothing here names one. Each forced choice runs in a fresh interpreter because the
choice is made once, on import. CPUs this machine is not are emulated with
`qemu-x86_64 -cpu <model>` (TCG emulates AVX2 but no AVX-512).
"""

import json
import platform
import sys
import unittest

import numpy as np

import mcp_rust_core
from mcp_rust_core import mcp_rust_core as baseline
from ffi_support import import_report, is_x86_64, random_matrix, run_python

PLAN_AND_CHOICE = """
import json
import mcp_rust_core
from mcp_rust_core import mcp_rust_core as baseline
print(json.dumps({"plan": baseline._select_variant("auto"), "info": mcp_rust_core.build_info()}))
"""

# qemu CPU models, with features each certainly has and certainly lacks: the x86-64
# baseline, and AVX2+FMA without AVX-512 (TCG cannot emulate AVX-512 at all, so a model
# with it cannot be tested this way).
EMULATED_MODELS = {
    "qemu64": ({"sse2"}, {"avx", "avx2", "fma", "avx512f"}),
    "Haswell": ({"avx", "avx2", "fma", "bmi2"}, {"avx512f", "sse4a"}),
}


def loud_skip(test, reason):
    print(f"\n  SKIPPED (loudly): {reason}", file=sys.stderr)
    test.skipTest(reason)


class VariantChoiceOnThisCpuTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.plan = baseline._select_variant("auto")
        cls.info = mcp_rust_core.build_info()
        print(f"\n  this CPU runs {cls.plan['candidates']}; installed "
              f"{cls.info['variants_installed']}; loaded {cls.info['variant']}", file=sys.stderr)

    def test_auto_loads_the_best_installed_variant_this_cpu_runs(self):
        report = import_report(env={"MCP_RUST_CORE_VARIANT": None})
        installed = report["variants_installed"]
        expected = next(v for v in self.plan["candidates"] if v in installed)
        self.assertEqual(report["variant"], expected)
        self.assertEqual(report["variant_request"], "auto")
        self.assertEqual(import_report(env={"MCP_RUST_CORE_VARIANT": "AUTO"})["variant"], expected)
        by_name = {v["name"]: v for v in self.plan["variants"]}
        # Best first: no installed candidate needs more features than the chosen one.
        chosen_features = len(by_name[expected]["required_features"])
        for name in installed:
            if name in self.plan["candidates"]:
                self.assertLessEqual(len(by_name[name]["required_features"]), chosen_features)

    def test_every_variant_this_cpu_runs_can_be_forced(self):
        installed = self.info["variants_installed"]
        forced = 0
        for variant in self.plan["candidates"]:
            with self.subTest(variant=variant):
                report = import_report(env={"MCP_RUST_CORE_VARIANT": variant})
                if variant not in installed:
                    self.assertIn(f"this installation has no {variant} build",
                                  report["import_error"])
                    print(f"\n  variant {variant} runs here but is not installed: "
                          f"forcing it is the expected ImportError", file=sys.stderr)
                    continue
                self.assertEqual(report.get("variant"), variant, report)
                self.assertEqual(report["variant_request"], variant)
                forced += 1
                # The forced build really computes.
                code = ("import mcp_rust_core, numpy as np\n"
                        "m = np.eye(4, dtype=np.float32)\n"
                        "print(mcp_rust_core.cosine_topk(m, m[2].copy(), 1)[0][0])\n")
                result = run_python(code, env={"MCP_RUST_CORE_VARIANT": variant})
                self.assertEqual(result.stdout.strip(), "2", result.stderr)
        self.assertGreater(forced, 0)

    def test_unknown_variant_is_an_import_error_listing_the_known_ones(self):
        report = import_report(env={"MCP_RUST_CORE_VARIANT": "no-such-cpu"})
        message = report["import_error"]
        self.assertIn("names no variant", message)
        for variant in self.plan["variants"]:
            self.assertIn(variant["name"], message)

    def test_a_variant_this_cpu_lacks_is_an_import_error(self):
        lacking = [v for v in self.plan["variants"] if v["missing_features"]]
        if not lacking:
            loud_skip(self, "this CPU runs every variant; EmulatedCpuTest forces ones it lacks")
        for variant in lacking:
            report = import_report(env={"MCP_RUST_CORE_VARIANT": variant["name"]})
            for feature in variant["missing_features"]:
                self.assertIn(feature, report["import_error"])


class EmulatedCpuTest(unittest.TestCase):
    """The choice on CPUs this machine is not, under qemu's user-mode emulation."""

    def setUp(self):
        if not is_x86_64():
            loud_skip(self, "the emulated CPU models are x86-64 ones; this build is for "
                            f"{platform.machine()}, which has a single variant")
        # What is emulated is the choice of the package's baseline module (the one every
        # CPU loads first). When that module is itself a variant build (dist/znver4/python,
        # tested alone) it cannot even load on the emulated CPUs, by design. An installed
        # wheel's baseline is generic, whatever this CPU's own choice is.
        target_cpu = baseline.build_info()["target_cpu"]
        if target_cpu != "generic":
            loud_skip(self, f"the module under test is the {target_cpu} build; emulated CPUs "
                            "test the choice the generic build makes")

    def emulated(self, model, env=None):
        # The interpreter and numpy must run there first (numpy >= 2.4 needs x86-64-v2, so it
        # dies with SIGILL on qemu64): that is not ours to test, so skip loudly.
        probe = run_python("import numpy", cpu_model=model)
        if probe.returncode != 0:
            loud_skip(self, f"python/numpy itself cannot run under -cpu {model} "
                            f"(exit {probe.returncode}): {probe.stderr.strip()[-200:]}")
        result = run_python(PLAN_AND_CHOICE, env={"MCP_RUST_CORE_VARIANT": None,
                                                  "MCP_RUST_CORE_KERNELS": None, **(env or {})},
                            cpu_model=model)
        self.assertEqual(result.returncode, 0, f"under -cpu {model}: {result.stderr}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def test_each_model_gets_a_variant_it_runs_and_refuses_the_others(self):
        for model, (present, absent) in EMULATED_MODELS.items():
            with self.subTest(model=model):
                emulated = self.emulated(model)
                plan, info = emulated["plan"], emulated["info"]
                by_name = {v["name"]: v for v in plan["variants"]}
                print(f"\n  -cpu {model}: runnable {plan['candidates']}, loaded {info['variant']}, "
                      f"kernels {info['kernels']}", file=sys.stderr)
                self.assertEqual(by_name[info["variant"]]["missing_features"], [])
                expected = next(v for v in plan["candidates"] if v in info["variants_installed"])
                self.assertEqual(info["variant"], expected)
                for variant in plan["variants"]:
                    required, missing = set(variant["required_features"]), variant["missing_features"]
                    self.assertEqual(set(missing) & present, set(), (model, variant))
                    self.assertLessEqual(required & absent, set(missing), (model, variant))
                    self.assertEqual(variant["name"] in plan["candidates"], not missing)
                    if not missing:
                        continue
                    report = import_report(env={"MCP_RUST_CORE_VARIANT": variant["name"]},
                                           cpu_model=model)
                    self.assertIn("needs CPU features this CPU lacks", report["import_error"])
                    for feature in variant["missing_features"]:
                        self.assertIn(feature, report["import_error"])

    def test_kernels_follow_the_emulated_cpu(self):
        # One subtest per model: a model the interpreter cannot run skips only itself.
        with self.subTest(model="Haswell"):
            self.assertEqual(self.emulated("Haswell")["info"]["kernels"], "avx2")
            report = import_report(env={"MCP_RUST_CORE_KERNELS": "avx512",
                                        "MCP_RUST_CORE_VARIANT": None}, cpu_model="Haswell")
            self.assertIn("avx512f", report["import_error"])
        with self.subTest(model="qemu64"):
            self.assertEqual(self.emulated("qemu64")["info"]["kernels"], "portable")
            report = import_report(env={"MCP_RUST_CORE_KERNELS": "avx2",
                                        "MCP_RUST_CORE_VARIANT": None}, cpu_model="qemu64")
            self.assertIn("the avx2 kernels need CPU features this CPU lacks",
                          report["import_error"])


class KernelInstructionSetTest(unittest.TestCase):
    def test_every_supported_instruction_set_ranks_alike(self):
        supported = mcp_rust_core._Kernels.supported()
        self.assertEqual(supported[0], "portable")
        self.assertIn(mcp_rust_core.build_info()["kernels"], supported)
        for rows, dim in [(1000, 384), (257, 33), (64, 1), (9, 1001)]:
            matrix = random_matrix(rows, dim, seed=rows + dim)
            matrix[3] = 0.0  # a zero row scores 0
            query = random_matrix(1, dim, seed=dim)[0]
            row_norms = mcp_rust_core.norms(matrix)
            results = {}
            for isa in supported:
                kernels = mcp_rust_core._Kernels(isa)
                self.assertEqual(kernels.isa, isa)
                indices, scores = kernels.cosine_topk(matrix, query, rows)
                given = kernels.cosine_topk(matrix, query, rows, row_norms=kernels.norms(matrix))
                np.testing.assert_array_equal(scores.view(np.uint32), given[1].view(np.uint32))
                results[isa] = (indices, scores)
            fused = [isa for isa in supported if isa != "portable"]
            for isa in fused[1:]:
                # AVX2+FMA and AVX-512 promise the same bits.
                np.testing.assert_array_equal(results[isa][1].view(np.uint32),
                                              results[fused[0]][1].view(np.uint32))
                np.testing.assert_array_equal(results[isa][0], results[fused[0]][0])
            for isa in supported:
                order = np.argsort(results[isa][0])
                np.testing.assert_allclose(results[isa][1][order],
                                           results["portable"][1][np.argsort(results["portable"][0])],
                                           atol=1e-5)
            # The module's functions use the chosen set.
            chosen = mcp_rust_core.build_info()["kernels"]
            np.testing.assert_array_equal(mcp_rust_core.cosine_topk(matrix, query, 5)[1],
                                          results[chosen][1][:5])
            np.testing.assert_array_equal(mcp_rust_core.norms(matrix), row_norms)

    def test_read_probe_sums_every_value(self):
        data = (np.arange(10_007) % 7).astype(np.float32).reshape(-1, 1)
        for isa in mcp_rust_core._Kernels.supported():
            self.assertEqual(mcp_rust_core._Kernels(isa).stream_sum(data), float(data.sum()))

    def test_unknown_and_unsupported_instruction_sets_are_errors(self):
        with self.assertRaisesRegex(ValueError, "names no kernel instruction set"):
            mcp_rust_core._Kernels("sse9")
        lacking = set(mcp_rust_core._Kernels.known()) - set(mcp_rust_core._Kernels.supported())
        if not lacking:
            print("\n  this CPU runs every kernel instruction set; EmulatedCpuTest covers "
                  "refusal", file=sys.stderr)
        for isa in lacking:
            with self.assertRaisesRegex(ValueError, "need CPU features this CPU lacks"):
                mcp_rust_core._Kernels(isa)

    def test_the_environment_forces_the_instruction_set_on_import(self):
        for isa in mcp_rust_core._Kernels.supported():
            report = import_report(env={"MCP_RUST_CORE_KERNELS": isa})
            self.assertEqual(report["kernels"], isa)
        report = import_report(env={"MCP_RUST_CORE_KERNELS": "sse9"})
        self.assertIn("MCP_RUST_CORE_KERNELS", report["import_error"])


if __name__ == "__main__":
    unittest.main()
