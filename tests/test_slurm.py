"""The smoke study on a real single-node Slurm, submitted through profiles/slurm.

Runs tests/slurm/run_slurm_test.sh, which installs Debian's Slurm and munge,
starts a throw-away loopback cluster with one generic GPU, runs the workflow and
checks each sbatch call. It needs root and apt-get; set CLIPSTUDY_SKIP_SLURM=1
to skip it. Takes a few minutes.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tests" / "slurm" / "run_slurm_test.sh"
SKIPPED = 77


def _why_not() -> str | None:
    if os.environ.get("CLIPSTUDY_SKIP_SLURM"):
        return "CLIPSTUDY_SKIP_SLURM is set"
    if os.geteuid() != 0:
        return "needs root to install Slurm and run its daemons"
    if shutil.which("apt-get") is None:
        return "needs apt-get (Debian/Ubuntu) to install Slurm"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.slurm,
    pytest.mark.skipif(_why_not() is not None, reason=_why_not() or ""),
]


def test_smoke_study_runs_on_slurm_with_gpu_requests(tmp_path):
    env = {**os.environ, "CLIPSTUDY_SLURM_TIMEOUT": "1500"}
    result = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "slurm")],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    output = result.stdout + result.stderr
    if result.returncode == SKIPPED:
        pytest.skip(output.strip().splitlines()[-1])
    assert result.returncode == 0, output[-6000:]
    assert "FAIL:" not in output
    # every GPU rule was submitted with a GPU, and timings were recorded
    assert "(--gpus=1)" in output and "(no GPU)" in output
    times = (tmp_path / "slurm" / "times.txt").read_text()
    assert "run_s=" in times
