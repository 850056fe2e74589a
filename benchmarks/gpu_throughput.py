"""Image-tower throughput on a GPU and its fraction of the chip's bf16 peak.

    python benchmarks/gpu_throughput.py --peak-tflops 989

For ViT-B-32, ViT-B-16 and ViT-L-14 with random weights (speed does not depend
on them) it prints, at bf16 autocast:
- tower: images/s of encode_image on pixels already on the GPU, the FLOPs per
  image counted by torch's FLOP counter, and the fraction of the bf16 peak;
- cache: images/s of the workflow's path from the decoded uint8 cache
  (memory-mapped, normalised on the device);
- jpeg: images/s when every image is decoded and resized on the CPU per batch.
On a machine without CUDA it runs the same steps on the CPU with a tiny model
and a few images, so the script itself stays tested (tests/test_benchmarks.py).
"""

import argparse
import io
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clipstudy.data import write_samples
from clipstudy.decoded import (
    cache_key,
    decode_split,
    inference_transform,
    preprocess_config,
)
from clipstudy.evaluate import autocast, encode_decoded, encode_images


def flops_per_image(model, size: int, device: torch.device) -> float:
    """Floating-point operations of one image through the image tower."""
    from torch.utils.flop_counter import FlopCounterMode

    pixels = torch.zeros(1, 3, size, size, device=device)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode(), autocast(device):
        model.encode_image(pixels)
    return float(counter.get_total_flops())


def tower_rate(model, size: int, batch: int, device: torch.device, steps: int):
    """Images/s of encode_image alone, timed with CUDA events after a warm-up."""
    pixels = torch.randn(batch, 3, size, size, device=device)
    with torch.inference_mode(), autocast(device):
        for _ in range(2):
            model.encode_image(pixels)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            model.encode_image(pixels)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def photos(path: Path, count: int, side: int) -> Path:
    """A prepared split of `count` smooth random JPEG photos of `side` px."""
    rng = np.random.default_rng(0)
    tiles = [
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).resize(
            (side, side), Image.BICUBIC
        )
        for _ in range(16)
    ]

    def rows():
        for index in range(count):
            buffer = io.BytesIO()
            tiles[index % 16].save(buffer, "JPEG", quality=90)
            yield f"{index:07d}", index % 10, buffer.getvalue()

    write_samples(path, rows())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ViT-B-32,ViT-B-16,ViT-L-14")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import open_clip

    from clipstudy.tiny import MODEL_CONFIGS

    open_clip.add_model_config(MODEL_CONFIGS)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        args.models, args.images, args.batch_size, args.steps = "tiny-vit", 64, 16, 2
        args.workers = 1
    chip = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(
        f"device {chip}, bf16 peak {args.peak_tflops:g} TFLOP/s, "
        f"batch {args.batch_size}, {args.images} images, {args.workers} workers"
    )
    print(
        f"{'model':10s} {'GFLOP/img':>10s} {'tower img/s':>12s} {'% peak':>7s} "
        f"{'cache img/s':>12s} {'jpeg img/s':>11s}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        samples = photos(work / "samples.parquet", args.images, 256)
        caches = set()
        for name in args.models.split(","):
            model = open_clip.create_model(name, device=device).eval()
            config = preprocess_config(name, None)
            size = config["size"]
            flops = flops_per_image(model, size, device)
            rate = tower_rate(model, size, args.batch_size, device, args.steps)
            peak = rate * flops / (args.peak_tflops * 1e12)
            key = cache_key(config)
            images, index = work / f"{key}.npy", work / f"{key}.index.parquet"
            if key not in caches:
                decode_split(samples, images, index, config, workers=args.workers)
                caches.add(key)
            start = time.perf_counter()
            encode_decoded(
                model,
                images,
                index,
                work / "f.parquet",
                device,
                config["mean"],
                config["std"],
                args.batch_size,
                workers=args.workers,
            )
            cache = args.images / (time.perf_counter() - start)
            preprocess = inference_transform(config)
            start = time.perf_counter()
            encode_images(
                model,
                preprocess,
                samples,
                work / "g.parquet",
                device,
                args.batch_size,
                workers=args.workers,
            )
            jpeg = args.images / (time.perf_counter() - start)
            print(
                f"{name:10s} {flops / 1e9:10.2f} {rate:12.0f} {peak:7.1%} "
                f"{cache:12.0f} {jpeg:11.0f}"
            )


if __name__ == "__main__":
    main()
