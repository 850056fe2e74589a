"""The benchmark scripts run; their numbers are read by people, not asserted."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_gpu_throughput_script_runs_its_cpu_fallback(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/gpu_throughput.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    header, row = run.stdout.splitlines()[1:3]
    assert header.split()[:2] == ["model", "GFLOP/img"]
    name, _, tower, _, cache, jpeg = row.split()
    assert name == "tiny-vit"
    assert min(float(tower), float(cache), float(jpeg)) > 0
