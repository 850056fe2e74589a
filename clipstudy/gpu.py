"""Set up a GPU job: offline hub, the fetched checkpoint present, one GPU of its own.

Snakemake's `--resources gpu=N` only counts GPU jobs; every job still sees every
device. `bind_gpu` gives each job one device through a lock file per device and
sets CUDA_VISIBLE_DEVICES before CUDA starts; the lock is the process's open file,
so it is released when the job ends, however it ends. Under Slurm the allocation
already names the job's devices, and nothing is rebound.
"""

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Environment variables that tune the binding (documented in docs/cluster.md).
LOCKDIR_ENV = "CLIPSTUDY_GPU_LOCKDIR"
COUNT_ENV = "CLIPSTUDY_GPU_COUNT"
WAIT_ENV = "CLIPSTUDY_GPU_WAIT"
DEFAULT_WAIT = 3600.0
POLL_SECONDS = 2.0

# The leases of this process: their open files hold the locks until exit.
_LEASES: list["GpuLease"] = []


class GpuBusyError(RuntimeError):
    """Every GPU stayed locked by other jobs for longer than the wait allowed."""


class CheckpointMissingError(FileNotFoundError):
    """The weights file that fetch_checkpoint recorded is absent or changed."""


@dataclass
class GpuLease:
    """One device held by this process through an exclusive lock on its lock file."""

    device: str
    lock_path: Path
    handle: int

    def release(self) -> None:
        """Unlock the device now (it is released at process exit anyway)."""
        if self.handle >= 0:
            os.close(self.handle)
            self.handle = -1
        if self in _LEASES:
            _LEASES.remove(self)


def gpu_job(checkpoint_json: str | os.PathLike | None = None) -> GpuLease | None:
    """Prepare a GPU rule's process; call it before torch touches CUDA.

    Loads from the hub go offline, the checkpoint recorded in `checkpoint_json`
    (fetch_checkpoint's output) must be on disk, and the job gets one free GPU.
    """
    go_offline()
    if checkpoint_json is not None:
        require_checkpoint_file(checkpoint_json)
    return bind_gpu()


def go_offline() -> None:
    """Make every Hugging Face hub call of this process use the local cache only."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    if "huggingface_hub" in sys.modules:
        # the hub reads the variable once, when it is first imported
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True


def require_checkpoint_file(checkpoint_json: str | os.PathLike) -> Path:
    """Raise CheckpointMissingError unless the fetched weights are on disk, intact.

    Points the hub cache at the folder that holds them, so an offline load finds
    them even where this node's HF_HOME differs from the fetching machine's.
    """
    info = json.loads(Path(checkpoint_json).read_text())
    path = Path(info["path"])
    name = f"{info.get('model', '?')} {info.get('pretrained', '?')}"
    refetch = (
        f"fetch it again where the network is reachable (snakemake --forcerun "
        f"fetch_checkpoint, or delete {checkpoint_json}) on a file system this "
        "machine shares"
    )
    if not path.is_file():
        raise CheckpointMissingError(
            f"checkpoint {name}: weights file {path} recorded in {checkpoint_json} "
            f"does not exist here, and GPU jobs never download; {refetch}"
        )
    expected = info.get("bytes")
    if expected is not None and path.stat().st_size != expected:
        raise CheckpointMissingError(
            f"checkpoint {name}: {path} has {path.stat().st_size} bytes, "
            f"{checkpoint_json} recorded {expected}; the file was replaced or "
            f"truncated; {refetch}"
        )
    hub_cache = _hub_cache_of(path)
    if hub_cache is not None and "huggingface_hub" not in sys.modules:
        os.environ["HF_HUB_CACHE"] = str(hub_cache)
    return path


def _hub_cache_of(path: Path) -> Path | None:
    """The hub cache folder holding `path` (…/models--org--name/snapshots/…)."""
    for parent in path.parents:
        if parent.name.startswith("models--"):
            return parent.parent
    return None


def bind_gpu(
    lockdir: str | os.PathLike | None = None, wait: float | None = None
) -> GpuLease | None:
    """Lock one free GPU for this process and make it the only one CUDA sees.

    Returns None, binding nothing, under Slurm (the allocation decides) and where
    no GPU is visible. Waits up to `wait` seconds (CLIPSTUDY_GPU_WAIT, default an
    hour) while every GPU is held, then raises GpuBusyError.
    """
    if os.environ.get("SLURM_JOB_ID"):
        log.info(
            "Slurm job %s: using its GPUs as allocated (CUDA_VISIBLE_DEVICES=%s)",
            os.environ["SLURM_JOB_ID"],
            os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
        )
        return None
    _refuse_if_cuda_started()
    devices = visible_devices()
    if not devices:
        log.info("no GPU visible; nothing to bind")
        return None

    lockdir = Path(lockdir or os.environ.get(LOCKDIR_ENV) or _default_lockdir())
    lockdir.mkdir(parents=True, exist_ok=True)
    wait = _wait_seconds() if wait is None else wait
    start = time.monotonic()
    reported = start
    while True:
        for device in devices:
            lease = _try_lock(lockdir / f"gpu{_safe(device)}.lock", device)
            if lease is not None:
                os.environ["CUDA_VISIBLE_DEVICES"] = device
                _LEASES.append(lease)
                log.info(
                    "bound to GPU %s of %d (lock %s) after %.1f s",
                    device,
                    len(devices),
                    lease.lock_path,
                    time.monotonic() - start,
                )
                return lease
        waited = time.monotonic() - start
        holders = _holders(lockdir, devices)
        if waited >= wait:
            raise GpuBusyError(
                f"all {len(devices)} GPU(s) stayed busy for {waited:.0f} s "
                f"({holders}); run with --resources gpu=N where N is at most the "
                f"number of GPUs, stop the other jobs, or raise {WAIT_ENV}"
            )
        if time.monotonic() - reported >= 60:
            log.info("waiting for a free GPU (%s)", holders)
            reported = time.monotonic()
        time.sleep(min(POLL_SECONDS, max(0.05, wait - waited)))


def visible_devices() -> list[str]:
    """Devices this process may use: CUDA_VISIBLE_DEVICES, else all the host has.

    CLIPSTUDY_GPU_COUNT overrides the count (tests simulate GPUs with it).
    """
    override = os.environ.get(COUNT_ENV)
    if override is not None:
        try:
            count = int(override)
        except ValueError:
            raise ValueError(
                f"{COUNT_ENV}={override!r} is not a whole number; give the number "
                "of GPUs to share out, or unset it to detect them"
            ) from None
        return [str(index) for index in range(count)]
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        devices = [item.strip() for item in given.split(",") if item.strip()]
        # CUDA stops at the first invalid entry; "-1" conventionally hides all
        return [] if devices[:1] == ["-1"] else devices
    return [str(index) for index in range(_count_devices())]


def _count_devices() -> int:
    """GPUs on this host, counted without starting CUDA in this process."""
    if shutil.which("nvidia-smi"):
        result = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60
        )
        if result.returncode == 0:
            return sum(line.startswith("GPU ") for line in result.stdout.splitlines())
    import torch

    if torch.version.cuda is None:
        return 0
    # asking torch here would start CUDA and freeze CUDA_VISIBLE_DEVICES
    result = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return int(result.stdout.strip() or 0) if result.returncode == 0 else 0


def _refuse_if_cuda_started() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise RuntimeError(
            "bind_gpu was called after CUDA started in this process, when "
            "CUDA_VISIBLE_DEVICES no longer applies; call clipstudy.gpu.gpu_job() "
            "at the top of the script, before any model is loaded"
        )


def _try_lock(path: Path, device: str) -> GpuLease | None:
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        # another user's lock file: flock works on a read-only handle too
        handle = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        return None
    note = f"pid {os.getpid()} on {os.uname().nodename} since {time.ctime()}\n"
    try:
        os.ftruncate(handle, 0)
        os.pwrite(handle, note.encode(), 0)
    except OSError:
        pass
    return GpuLease(device, path, handle)


def _holders(lockdir: Path, devices: list[str]) -> str:
    notes = []
    for device in devices:
        path = lockdir / f"gpu{_safe(device)}.lock"
        try:
            holder = path.read_text().strip() or "unknown holder"
        except OSError:
            holder = "unknown holder"
        notes.append(f"GPU {device}: {holder}")
    return "; ".join(notes)


def _default_lockdir() -> Path:
    # not $TMPDIR: Snakemake may give each job its own, and the jobs must share
    return Path("/tmp") / f"clipstudy-gpu-locks-{os.getuid()}"


def _wait_seconds() -> float:
    value = os.environ.get(WAIT_ENV)
    if value is None:
        return DEFAULT_WAIT
    try:
        return float(value)
    except ValueError:
        raise ValueError(
            f"{WAIT_ENV}={value!r} is not a number of seconds; give how long a GPU "
            "job may wait for a free GPU"
        ) from None


def _safe(device: str) -> str:
    return "".join(char if char.isalnum() or char in "-_" else "_" for char in device)
