"""Peak resident memory of an evaluation job as the dataset grows.

    .venv/bin/python benchmarks/encode_memory.py --sizes 1000 20000

For each size it generates a prepared split of small JPEG photos, then, in a
fresh process, decodes it into the uint8 cache and encodes it with a tiny
checkpoint, as the workflow's decode_images and encode_images jobs do, and
prints each job's peak resident memory. Features are written in chunks and the
cache is memory-mapped, so the peaks should stay flat.
"""

import argparse
import io
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

JOB = """
import resource, sys, torch, open_clip
from clipstudy.decoded import decode_split, preprocess_config
from clipstudy.evaluate import encode_decoded
from clipstudy.models import Checkpoint, load_checkpoint
from clipstudy.tiny import MODEL_CONFIGS

step, samples, work, checkpoint = sys.argv[1:5]
open_clip.add_model_config(MODEL_CONFIGS)
config = preprocess_config("tiny-vit", checkpoint)
images, index = f"{work}/cache.npy", f"{work}/cache.index.parquet"
if step == "decode":
    decode_split(samples, images, index, config)
else:
    model, _, _ = load_checkpoint(Checkpoint("tiny-vit", checkpoint), "cpu",
                                  [MODEL_CONFIGS])
    encode_decoded(model, images, index, f"{work}/features.parquet",
                   torch.device("cpu"), config["mean"], config["std"], 256)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_split(path: Path, count: int, side: int = 96) -> None:
    """A prepared split of `count` small JPEG photos, written in row groups."""
    from clipstudy.data import write_samples

    rng = np.random.default_rng(0)
    tile = rng.integers(0, 255, (side, side, 3), np.uint8)

    def rows():
        for index in range(count):
            buffer = io.BytesIO()
            Image.fromarray(np.roll(tile, index, axis=0)).save(buffer, "JPEG")
            yield f"{index:07d}", index % 10, buffer.getvalue()

    write_samples(path, rows())


def peak_mib(step: str, samples: Path, work: Path, checkpoint: Path) -> float:
    """Run one job step in a fresh process; return its peak RSS in MiB."""
    run = subprocess.run(
        [sys.executable, "-c", JOB, step, str(samples), str(work), str(checkpoint)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(run.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    args = parser.parse_args()
    from clipstudy.tiny import make_tiny_checkpoint

    print(f"{'images':>8s} {'decode peak MiB':>16s} {'encode peak MiB':>16s}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint = make_tiny_checkpoint("tiny-vit", work / "tiny.pt")
        for size in args.sizes:
            samples = work / f"samples{size}.parquet"
            make_split(samples, size)
            decode = peak_mib("decode", samples, work, checkpoint)
            encode = peak_mib("encode", samples, work, checkpoint)
            print(f"{size:8d} {decode:16.0f} {encode:16.0f}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this driver process peaked at {own:.0f} MiB while writing the data)")


if __name__ == "__main__":
    main()
