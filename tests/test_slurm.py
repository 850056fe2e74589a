"""The smoke study on a real single-node Slurm, submitted through profiles/slurm.

Runs tests/slurm/run_slurm_test.sh, which installs Debian's Slurm and munge,
starts a throw-away loopback cluster with one generic GPU, runs the workflow and
checks each sbatch call. It needs root and apt-get; set CLIPSTUDY_SKIP_SLURM=1
to skip it. CI sets CLIPSTUDY_REQUIRE_SLURM=1, which turns every skip into a
failure, so the test cannot pass there without running. Takes a few minutes.
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


def skip_reason(output: str) -> str:
    """The reason run_slurm_test.sh gave on its `SKIP:` line (cleanup prints more)."""
    for line in output.splitlines():
        if line.startswith("SKIP:"):
            return line.removeprefix("SKIP:").strip()
    return "the script exited with the skip status but printed no SKIP: line"


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it where CLIPSTUDY_REQUIRE_SLURM says it must run."""
    if os.environ.get("CLIPSTUDY_REQUIRE_SLURM"):
        pytest.fail(
            f"CLIPSTUDY_REQUIRE_SLURM is set but the Slurm test cannot run: {reason}"
        )
    pytest.skip(reason)


@pytest.mark.slow
@pytest.mark.slurm
def test_smoke_study_runs_on_slurm_with_gpu_requests(tmp_path):
    why_not = _why_not()
    if why_not is not None:
        skip_or_fail(why_not)
    env = {"CLIPSTUDY_SLURM_TIMEOUT": "1500", **os.environ}
    result = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "slurm")],
        capture_output=True,
        text=True,
        env=env,
        # the script stops the workflow itself; this only guards against a hang
        timeout=int(env["CLIPSTUDY_SLURM_TIMEOUT"]) + 600,
    )
    output = result.stdout + result.stderr
    if result.returncode == SKIPPED:
        skip_or_fail(skip_reason(output))
    assert result.returncode == 0, output[-6000:]
    assert "FAIL:" not in output
    # every GPU rule was submitted with a GPU, and timings were recorded
    assert "(--gpus=1)" in output and "(no GPU)" in output
    times = (tmp_path / "slurm" / "times.txt").read_text()
    assert "run_s=" in times


def test_skip_reason_is_the_skip_line_not_the_cleanup_after_it():
    output = (
        "[slurm-test 10:00:00] work folder /tmp/x\n"
        "SKIP: apt-get update failed (no package mirror?)\n"
        "[slurm-test 10:00:01] stopped the daemons this test started (0)\n"
    )
    assert skip_reason(output) == "apt-get update failed (no package mirror?)"
    assert "no SKIP: line" in skip_reason("[slurm-test] stopped\n")


def test_required_slurm_test_fails_instead_of_skipping(monkeypatch):
    monkeypatch.setenv("CLIPSTUDY_REQUIRE_SLURM", "1")
    with pytest.raises(pytest.fail.Exception, match="cannot run: no root"):
        skip_or_fail("no root")
    monkeypatch.delenv("CLIPSTUDY_REQUIRE_SLURM")
    with pytest.raises(pytest.skip.Exception, match="no root"):
        skip_or_fail("no root")


def _checker():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "check_submissions", SCRIPT.with_name("check_submissions.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sbatch(rule: str, *flags: str) -> str:
    return (
        f"--parsable --job-name x --comment rule_{rule}_wildcards_a -p main "
        f"-t 10 --mem 4000 {' '.join(flags)} -D /w --wrap=snakemake\\ ..."
    )


def test_checker_flags_wrong_gpu_requests(tmp_path):
    """The check the Slurm test relies on catches each way a submission goes wrong."""
    check = _checker().check
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.smk").write_text(
        "rule encode_images:\n    threads: 2\n    resources:\n        gpu=1,\n"
        "    script:\n        'x.py'\n\n\n"
        "rule prepare_tfds:\n    resources:\n        mem_mb=1,\n\n\n"
        "rule download_tfds:\n    localrule: True\n"
    )
    output = tmp_path / "snakemake.out"
    output.write_text(
        "Job stats:\njob count\n--- ---\nencode_images 1\nprepare_tfds 1\n"
        "download_tfds 1\ntotal 3\n"
    )
    log = tmp_path / "work" / "logs" / "encode_images" / "a.log"
    log.parent.mkdir(parents=True)
    log.write_text(
        "INFO clipstudy.gpu: Slurm job 7: using its GPUs as allocated "
        "(CUDA_VISIBLE_DEVICES=0)\n"
    )
    calls = tmp_path / "calls.txt"

    calls.write_text(
        _sbatch("encode_images", "--cpus-per-task=2", "--gpus=1")
        + "\n"
        + _sbatch("prepare_tfds", "--ntasks=1", "--cpus-per-task=1")
        + "\n"
    )
    assert check(calls, rules, tmp_path / "work", output) == []

    calls.write_text(
        _sbatch("encode_images", "--cpus-per-task=2")
        + "\n"
        + _sbatch("prepare_tfds", "--gres=gpu:1")
        + "\n"
        + _sbatch("download_tfds")
        + "\n"
    )
    problems = check(calls, rules, tmp_path / "work", output)
    assert problems == [
        "GPU rule encode_images submitted with no GPU",
        "CPU rule prepare_tfds submitted with ['--gres=gpu:1']",
        "local rule download_tfds was submitted to Slurm",
    ]

    calls.write_text(_sbatch("prepare_tfds") + "\n")
    log.write_text("no GPU here\n")
    assert check(calls, rules, tmp_path / "work", output) == [
        "GPU rule encode_images was never submitted"
    ]
