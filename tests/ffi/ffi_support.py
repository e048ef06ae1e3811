"""Helpers shared by the FFI tests: data, and running the package in a fresh interpreter."""

import json
import os
import platform
import shutil
import subprocess
import sys

import numpy as np

# Prints build_info() as JSON, or the ImportError as {"import_error": message}.
IMPORT_AND_REPORT = """
import json
try:
    import mcp_rust_core
except ImportError as error:
    print(json.dumps({"import_error": str(error)}))
else:
    print(json.dumps(mcp_rust_core.build_info()))
"""


def random_matrix(rows, dim, seed=0):
    return np.random.default_rng(seed).standard_normal((rows, dim), dtype=np.float32)


def python_command():
    """How to start a fresh interpreter like this one.

    `MCP_FOUNDRY_PYTHON_EMULATOR` (a JSON list, e.g. ["qemu-aarch64", "-L", "<root>"]) is the
    prefix when this interpreter itself runs under qemu-user without binfmt_misc (the aarch64
    wheel test): its executable cannot be started directly then.
    """
    prefix = json.loads(os.environ.get("MCP_FOUNDRY_PYTHON_EMULATOR") or "[]")
    return prefix + [sys.executable]


def is_x86_64():
    return platform.machine() in ("x86_64", "AMD64")


def run_python(code, env=None, cpu_model=None, timeout=600):
    """Runs `code` in a fresh interpreter (under `qemu-x86_64 -cpu cpu_model` if given).

    `env` entries are added to this process's environment; a value of None removes one.
    """
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    command = python_command() + ["-c", code]
    if cpu_model is not None:
        command = [qemu_x86_64(), "-cpu", cpu_model] + command
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=timeout)


def import_report(env=None, cpu_model=None):
    """build_info() of a fresh import, or {"import_error": ...}; fails on a crash."""
    result = run_python(IMPORT_AND_REPORT, env=env, cpu_model=cpu_model)
    if result.returncode != 0 or not result.stdout.strip():
        raise AssertionError(
            f"importing mcp_rust_core crashed (exit {result.returncode}, env {env}, "
            f"cpu {cpu_model}):\n{result.stderr}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def qemu_x86_64():
    """The qemu user-mode emulator; a clear failure (not a skip) when it is missing."""
    path = shutil.which("qemu-x86_64")
    if path is None:
        raise AssertionError(
            "qemu-x86_64 is required to test the variant choice on CPUs this machine is not "
            "(a forced variant the CPU lacks must be an ImportError); install it: "
            "apt-get install qemu-user"
        )
    return path
