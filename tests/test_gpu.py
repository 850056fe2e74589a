"""GPU jobs: one device per process through lock files, offline checkpoint checks."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipstudy import gpu

REPO = Path(__file__).resolve().parent.parent

# A GPU job in miniature: bind, report the device, hold it until told to stop.
HOLDER = """
import os, sys, time
from clipstudy.gpu import bind_gpu
lease = bind_gpu()
print(os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
stop = sys.argv[1]
while not os.path.exists(stop):
    time.sleep(0.05)
"""


def job_env(lockdir: Path, count: int | None = 2, wait: float = 0, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.update(
        {
            "PYTHONPATH": str(REPO),
            gpu.LOCKDIR_ENV: str(lockdir),
            gpu.WAIT_ENV: str(wait),
            **extra,
        }
    )
    if count is not None:
        env[gpu.COUNT_ENV] = str(count)
    return env


def start_holder(env: dict, stop: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(stop)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def stop_file(tmp_path):
    path = tmp_path / "stop"
    yield path
    path.touch()


def test_concurrent_jobs_get_different_gpus_and_a_third_fails(tmp_path, stop_file):
    env = job_env(tmp_path / "locks", count=2, wait=0)
    first, second = start_holder(env, stop_file), start_holder(env, stop_file)
    devices = {first.stdout.readline().strip(), second.stdout.readline().strip()}
    assert devices == {"0", "1"}

    third = subprocess.run(
        [sys.executable, "-c", HOLDER, str(stop_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert third.returncode != 0
    assert "GpuBusyError: all 2 GPU(s) stayed busy" in third.stderr
    assert f"pid {first.pid}" in third.stderr and f"pid {second.pid}" in third.stderr

    stop_file.touch()
    assert first.wait(timeout=30) == 0 and second.wait(timeout=30) == 0


def test_waiting_job_takes_the_gpu_a_finished_job_releases(tmp_path, stop_file):
    env = job_env(tmp_path / "locks", count=1, wait=60)
    holder = start_holder(env, stop_file)
    assert holder.stdout.readline().strip() == "0"

    waiter = start_holder(env, tmp_path / "stop-waiter")
    time.sleep(1.0)
    assert waiter.poll() is None, "the second job should wait for the busy GPU"
    holder.kill()
    holder.wait(timeout=30)
    # the lock goes with the killed process; the waiter gets the device
    assert waiter.stdout.readline().strip() == "0"
    (tmp_path / "stop-waiter").touch()
    assert waiter.wait(timeout=30) == 0


def test_binding_picks_among_devices_cuda_visible_devices_allows(tmp_path, stop_file):
    env = job_env(tmp_path / "locks", count=None, CUDA_VISIBLE_DEVICES="2,3")
    first, second = start_holder(env, stop_file), start_holder(env, stop_file)
    devices = {first.stdout.readline().strip(), second.stdout.readline().strip()}
    assert devices == {"2", "3"}
    assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == [
        "gpu2.lock",
        "gpu3.lock",
    ]


def test_slurm_job_keeps_its_allocation(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    monkeypatch.setenv(gpu.COUNT_ENV, "8")
    assert gpu.bind_gpu(lockdir=tmp_path) is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    assert list(tmp_path.iterdir()) == []


def test_no_gpu_binds_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    monkeypatch.delenv(gpu.COUNT_ENV, raising=False)
    assert gpu.visible_devices() == []
    assert gpu.bind_gpu(lockdir=tmp_path) is None


def test_lease_release_frees_the_device(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    # restored after the test; the count override decides the devices
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    monkeypatch.setenv(gpu.COUNT_ENV, "1")
    lease = gpu.bind_gpu(lockdir=tmp_path, wait=0)
    assert lease.device == "0" and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    with pytest.raises(gpu.GpuBusyError, match="all 1 GPU"):
        gpu.bind_gpu(lockdir=tmp_path, wait=0)
    lease.release()
    again = gpu.bind_gpu(lockdir=tmp_path, wait=0)
    assert again.device == "0"
    again.release()


def test_bad_override_names_the_variable(monkeypatch):
    monkeypatch.setenv(gpu.COUNT_ENV, "two")
    with pytest.raises(ValueError, match=gpu.COUNT_ENV):
        gpu.visible_devices()


def write_info(tmp_path: Path, weights: Path, size: int | None = None) -> Path:
    info = tmp_path / "checkpoint.json"
    info.write_text(
        json.dumps(
            {
                "model": "ViT-B-32",
                "pretrained": "laion2b_s34b_b79k",
                "path": str(weights),
                "bytes": weights.stat().st_size if size is None else size,
            }
        )
    )
    return info


def test_missing_checkpoint_fails_with_the_fix(tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"0123")
    info = write_info(tmp_path, weights)
    weights.unlink()
    with pytest.raises(gpu.CheckpointMissingError) as error:
        gpu.require_checkpoint_file(info)
    message = str(error.value)
    assert str(weights) in message and "fetch_checkpoint" in message
    assert "never download" in message


def test_changed_checkpoint_fails(tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"0123")
    info = write_info(tmp_path, weights, size=99)
    with pytest.raises(gpu.CheckpointMissingError, match="recorded 99"):
        gpu.require_checkpoint_file(info)


def test_gpu_job_goes_offline_and_finds_the_fetched_hub_file(tmp_path):
    snapshot = tmp_path / "cache" / "models--timm--clip" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    weights = snapshot / "open_clip_model.safetensors"
    weights.write_bytes(b"weights")
    info = write_info(tmp_path, weights)
    script = (
        "import os, huggingface_hub.constants as c\n"
        "print(os.environ['HF_HUB_OFFLINE'], c.HF_HUB_OFFLINE, c.HF_HUB_CACHE)\n"
    )
    env = job_env(tmp_path / "locks", count=0)
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_HUB_CACHE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from clipstudy.gpu import gpu_job\ngpu_job({str(info)!r})\n{script}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.split() == ["1", "True", str(tmp_path / "cache")]
