"""The natural-gradient step with its batch sharded over 4 (host CPU) devices equals the step on
one device, to float32 rounding, and reduces over the devices inside the compiled step.

The devices exist only if XLA_FLAGS is set before jax starts, so the check runs in a child process
(benchmarks/bench_data_parallel.py, the recipe of docs/training_loop.md)."""
import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_data_parallel.py"


def test_sharded_step_equals_the_one_device_step():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--batch", "256", "--features", "64",
                          "--hidden", "32", "--steps", "3"],
                         env=env, capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 4
    assert result["all_reduce"], "the compiled step does not reduce over devices"
    assert result["max_relative_difference"] < 1e-4
