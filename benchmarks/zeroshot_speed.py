"""Throughput of clipstudy's zero-shot evaluation against CLIP_benchmark's.

Run it in the side environment where clip-benchmark 1.6.2 works
(`bash benchmarks/setup_clip_benchmark_env.sh` once), on CPU:

    .venv-cb/bin/python benchmarks/zeroshot_speed.py

(2,000 photos for the tiny checkpoints, 400 for ViT-B-32; about 3 minutes).

Both sides start from the same JPEG files and the same checkpoints, run at the
same precision (float32 on CPU, bf16 autocast on CUDA) and batch size, with the
same processes (CLIP_benchmark: the main process plus its loader workers;
clipstudy: as many decoding workers, then the main process), and end with
top-1, top-5 and mean per-class recall. CLIP_benchmark decodes and resizes
every image again for each checkpoint and builds its classifier one class at a
time; clipstudy decodes once into a uint8 cache shared by checkpoints with the
same preprocessing (a preprocessing that one checkpoint uses is streamed, as
its rules do) and encodes many classes per text-tower pass. The table
gives images per second (images x checkpoints / seconds), the ratio and the
target it should meet; the exit status is 1 when a target is missed.
"""

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import torch
from PIL import Image

from clipstudy.data import write_samples
from clipstudy.decoded import cache_key, decode_split, preprocess_config
from clipstudy.evaluate import (
    build_classifier,
    encode_decoded,
    encode_images,
    predict,
    read_features,
)
from clipstudy.metrics import zeroshot_metrics
from clipstudy.models import Checkpoint, load_checkpoint
from clipstudy.tiny import MODEL_CONFIGS, make_tiny_checkpoint

CLASSES = [f"class {i}" for i in range(10)]
TEMPLATES = ["a photo of a {c}.", "a blurry photo of a {c}.", "art of the {c}."]
# clipstudy's images/s over CLIP_benchmark's that each case should reach
TARGETS = {"tiny1": None, "tiny3": 3.0, "vitb32": 1.0}


def make_images(folder: Path, count: int, side: int, seed: int = 0) -> Path:
    """A class-folder tree of smooth random JPEG photos, `count` in all."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        label = index % len(CLASSES)
        low = rng.integers(0, 255, (8, 8, 3), np.uint8)
        image = Image.fromarray(low).resize((side, side), Image.BICUBIC)
        path = folder / f"{label:02d}" / f"{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=90)
    return folder


def prepared_from_folder(folder: Path, output: Path) -> Path:
    """The same JPEG bytes in clipstudy's prepared format (not timed)."""
    rows = [
        (path.stem, int(path.parent.name), path.read_bytes())
        for path in sorted(folder.glob("*/*.jpg"))
    ]
    write_samples(output, rows)
    return output


def theirs(checkpoints, folder, device, batch_size, workers) -> tuple[float, list]:
    """CLIP_benchmark's zero-shot evaluation, one full pass per checkpoint."""
    from clip_benchmark.metrics.zeroshot_classification import evaluate
    from torchvision.datasets import ImageFolder

    if device.type == "cuda":
        # its autocast defaults to float16; ours runs bf16
        torch.set_autocast_dtype("cuda", torch.bfloat16)
    results, start = [], time.perf_counter()
    for checkpoint in checkpoints:
        model, preprocess, tokenizer = load_checkpoint(
            checkpoint, device, [MODEL_CONFIGS]
        )
        dataset = ImageFolder(str(folder), transform=preprocess)
        dataset.classes = CLASSES
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, num_workers=workers
        )
        results.append(
            evaluate(
                model,
                loader,
                tokenizer,
                CLASSES,
                TEMPLATES,
                device.type,
                amp=device.type == "cuda",
            )
        )
    return time.perf_counter() - start, results


def ours(checkpoints, samples, work, device, batch_size, workers) -> tuple[float, list]:
    """clipstudy as its rules run: shared preprocessings cached, others streamed."""
    results, start = [], time.perf_counter()
    configs = [preprocess_config(c.model, c.pretrained) for c in checkpoints]
    readers = Counter(cache_key(config) for config in configs)
    caches = {}
    for checkpoint, config in zip(checkpoints, configs, strict=True):
        key = cache_key(config)
        model, preprocess, tokenizer = load_checkpoint(
            checkpoint, device, [MODEL_CONFIGS]
        )
        features_path = work / "features.parquet"
        if readers[key] == 1:
            encode_images(
                model, preprocess, samples, features_path, device, batch_size, workers
            )
        else:
            if key not in caches:
                images, index = work / f"{key}.npy", work / f"{key}.index.parquet"
                # the same processes as CLIP_benchmark's main one plus its workers
                decode_split(samples, images, index, config, workers + 1)
                caches[key] = (images, index)
            images, index = caches[key]
            encode_decoded(
                model,
                images,
                index,
                features_path,
                device,
                config["mean"],
                config["std"],
                batch_size,
                workers,
            )
        _, labels, features = read_features(features_path)
        classifier = build_classifier(model, tokenizer, CLASSES, TEMPLATES, device)
        top, _ = predict(features, classifier)
        results.append(zeroshot_metrics(top, labels, len(CLASSES)))
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="photos, tiny cases")
    parser.add_argument("--vitb32-images", type=int, default=400)
    parser.add_argument("--side", type=int, default=256, help="photo side in px")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--cases",
        default="tiny1,tiny3,vitb32",
        help="comma-separated: tiny1, tiny3 (three tiny ViTs), vitb32",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tiny = [
            Checkpoint("tiny-vit", str(make_tiny_checkpoint("tiny-vit", path, seed)))
            for seed, path in enumerate(work / f"tiny{i}.pt" for i in range(3))
        ]
        vitb32 = work / "vitb32.pt"
        torch.manual_seed(0)
        import open_clip

        torch.save(open_clip.create_model("ViT-B-32").state_dict(), vitb32)
        cases = {
            "tiny1": ("1 tiny ViT (64 px)", tiny[:1]),
            "tiny3": ("3 tiny ViTs, one preprocessing", tiny),
            "vitb32": ("ViT-B-32 (224 px)", [Checkpoint("ViT-B-32", str(vitb32))]),
        }
        photos = {}
        for count in {args.images, args.vitb32_images}:
            folder = make_images(work / f"photos{count}", count, args.side)
            samples = prepared_from_folder(folder, work / f"samples{count}.parquet")
            photos[count] = folder, samples
        print(
            f"{args.images} JPEG photos of {args.side} px ({args.vitb32_images} for "
            f"ViT-B-32), {len(CLASSES)} classes, "
            f"{len(TEMPLATES)} templates, batch {args.batch_size}, "
            f"{args.workers} loader worker(s), device {device}, "
            f"{torch.get_num_threads()} torch threads"
        )
        header = f"{'case':34s} {'clipstudy img/s':>16s} {'CLIP_benchmark':>15s}"
        print(f"{header} {'ratio':>6s} {'target':>7s}")
        # one untimed pass of each side pays for imports and first-call costs
        folder, samples = photos[args.vitb32_images]
        theirs(tiny[:1], folder, device, args.batch_size, args.workers)
        ours(tiny[:1], samples, work, device, args.batch_size, args.workers)
        missed = []
        for name in args.cases.split(","):
            label, checkpoints = cases[name]
            count = args.vitb32_images if name == "vitb32" else args.images
            folder, samples = photos[count]
            total = count * len(checkpoints)
            cb_seconds, cb_results = theirs(
                checkpoints, folder, device, args.batch_size, args.workers
            )
            our_seconds, our_results = ours(
                checkpoints, samples, work, device, args.batch_size, args.workers
            )
            for a, b in zip(our_results, cb_results, strict=True):
                if abs(a["acc1"] - b["acc1"]) > 0.01:
                    raise RuntimeError(f"top-1 differs: {a['acc1']} vs {b['acc1']}")
            ratio = cb_seconds / our_seconds
            target = TARGETS[name]
            if target is not None and ratio < target:
                missed.append(name)
            print(
                f"{label:34s} {total / our_seconds:16.1f} "
                f"{total / cb_seconds:15.1f} {ratio:6.2f} "
                f"{'-' if target is None else f'>= {target:.1f}':>7s}"
            )
    if missed:
        print(f"missed the target: {', '.join(missed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
