"""Zero-shot evaluation: encode images once, then score any number of prompt sets."""

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from tqdm import tqdm

from clipstudy.data import (
    CorruptImageError,
    atomic_path,
    count_samples,
    decode_image,
    read_classes,
    write_json,
)
from clipstudy.metrics import bootstrap_intervals, zeroshot_metrics

log = logging.getLogger(__name__)
COUNTS = ("n_images", "seconds")


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU, which runs float32."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class PreparedImages(torch.utils.data.IterableDataset):
    """Stream (pixels, label, sample id) from a prepared split, split across workers."""

    def __init__(self, path: str | os.PathLike, preprocess, on_corrupt: str = "fail"):
        if on_corrupt not in ("fail", "skip"):
            raise ValueError(f"on_corrupt must be fail or skip, not {on_corrupt!r}")
        self.path, self.preprocess, self.on_corrupt = path, preprocess, on_corrupt

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int, str]]:
        worker = torch.utils.data.get_worker_info()
        parquet = pq.ParquetFile(self.path)
        groups = range(parquet.num_row_groups)
        if worker is not None:
            groups = groups[worker.id :: worker.num_workers]
        for group in groups:
            for row in parquet.read_row_group(group).to_pylist():
                try:
                    image = decode_image(row["image"], row["sample_id"])
                except CorruptImageError:
                    if self.on_corrupt == "fail":
                        raise
                    log.warning("skipping corrupt image %s", row["sample_id"])
                    continue
                yield self.preprocess(image), row["label"], row["sample_id"]


def features_schema(dim: int) -> pa.Schema:
    """Columns of a features file: sample id, label, L2-normalised features."""
    return pa.schema(
        [
            ("sample_id", pa.string()),
            ("label", pa.int64()),
            ("features", pa.list_(pa.float32(), dim)),
        ]
    )


def encode_images(
    model,
    preprocess,
    samples: str | os.PathLike,
    output: str | os.PathLike,
    device: torch.device,
    batch_size: int = 256,
    workers: int = 0,
    on_corrupt: str = "fail",
    what: str = "",
) -> dict:
    """Decode, preprocess and encode every image of a prepared split, in chunks.

    `what` names the split and checkpoint in the log (`cifar10 with ViT-B-32`).
    """
    loader = torch.utils.data.DataLoader(
        PreparedImages(samples, preprocess, on_corrupt),
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    batches = ((pixels, ids, labels.numpy()) for pixels, labels, ids in loader)
    total = count_samples(samples)
    stats = _encode_batches(model, batches, output, device, total, what)
    stats["skipped"] = count_samples(samples) - stats["n_images"]
    return stats


def encode_decoded(
    model,
    images: str | os.PathLike,
    index: str | os.PathLike,
    output: str | os.PathLike,
    device: torch.device,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 256,
    workers: int = 0,
    what: str = "",
) -> dict:
    """Encode a decoded-image cache; normalisation runs on the device."""
    from clipstudy.decoded import DecodedImages, normalise

    table = pq.read_table(index)
    ids = table.column("sample_id").to_pylist()
    labels = table.column("label").to_numpy()
    # slicing a memory map costs next to nothing: loader workers only pay off
    # when they overlap page-cache misses with a GPU's work
    loader = torch.utils.data.DataLoader(
        DecodedImages(images, batch_size),
        batch_size=None,
        num_workers=workers if device.type == "cuda" else 0,
        pin_memory=device.type == "cuda",
    )
    mean_t = torch.tensor(mean, device=device)
    std_t = torch.tensor(std, device=device)

    def batches():
        start = 0
        for pixels in loader:
            pixels = normalise(pixels.to(device, non_blocking=True), mean_t, std_t)
            end = start + len(pixels)
            yield pixels, ids[start:end], labels[start:end]
            start = end

    return _encode_batches(model, batches(), output, device, len(ids), what)


def _encode_batches(
    model, batches, output, device: torch.device, total: int, what: str = ""
) -> dict:
    """Run the image tower over (pixels, ids, labels) batches; write features."""
    dim = model.visual.output_dim
    channels_last = device.type == "cuda" and not hasattr(model.visual, "transformer")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    state = {"batch": None}
    written, start = 0, time.perf_counter()
    with (
        atomic_path(output) as tmp,
        pq.ParquetWriter(tmp, features_schema(dim)) as writer,
        torch.inference_mode(),
        tqdm(total=total, desc="encode", unit="img", mininterval=10) as bar,
    ):
        for pixels, ids, labels in batches:
            # copy first: a layout change on the host would drop the pinned memory
            pixels = pixels.to(device, non_blocking=True)
            if channels_last:
                pixels = pixels.contiguous(memory_format=torch.channels_last)
            features = _forward(model, pixels, state)
            features = F.normalize(features.float(), dim=-1).cpu().numpy()
            writer.write_table(_features_table(ids, labels, features, dim))
            written += len(ids)
            bar.update(len(ids))
        if written == 0:
            writer.write_table(
                _features_table([], np.zeros(0), np.zeros((0, dim)), dim)
            )
        seconds = time.perf_counter() - start
        stats = {"n_images": written, "seconds": seconds, **device_provenance(device)}
        writer.add_key_value_metadata({"clipstudy": json.dumps(stats)})
    log.info(
        "encoded %s images%s in %.1f s (%.0f img/s) on %s",
        f"{written:,}",
        f" of {what}" if what else "",
        seconds,
        written / max(seconds, 1e-9),
        stats["device_name"],
    )
    return {"n_images": written, "seconds": seconds}


def device_provenance(device: torch.device) -> dict:
    """Where and how a job ran: device, its name, precision and library versions."""
    import platform

    import open_clip

    cuda = device.type == "cuda"
    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device)
        if cuda
        else (platform.processor() or platform.machine()),
        "precision": "bf16 autocast" if cuda else "float32",
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
    }


def encoding_stats(path: str | os.PathLike) -> dict:
    """The encoding job's statistics stored in a features file's metadata."""
    metadata = pq.ParquetFile(path).metadata.metadata or {}
    return json.loads(metadata.get(b"clipstudy", b"{}"))


def _forward(model, pixels: torch.Tensor, state: dict) -> torch.Tensor:
    """encode_image in sub-batches, halving their size after a CUDA out-of-memory."""
    size = state["batch"] or len(pixels)
    while True:
        try:
            with autocast(pixels.device):
                return torch.cat(
                    [
                        model.encode_image(pixels[i : i + size])
                        for i in range(0, len(pixels), size)
                    ]
                )
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise
            torch.cuda.empty_cache()
            size = max(1, size // 2)
            state["batch"] = size
            log.warning("CUDA out of memory: image batch size lowered to %d", size)


def _features_table(ids, labels, features: np.ndarray, dim: int) -> pa.Table:
    flat = pa.array(features.astype(np.float32).ravel(), pa.float32())
    return pa.table(
        [
            pa.array(list(ids), pa.string()),
            pa.array(np.asarray(labels, dtype=np.int64)),
            pa.FixedSizeListArray.from_arrays(flat, dim),
        ],
        schema=features_schema(dim),
    )


def read_features(path: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read (sample ids, labels, features matrix) from a features file."""
    table = pq.read_table(path)
    column = table.column("features").combine_chunks()
    dim = column.type.list_size
    features = column.flatten().to_numpy().reshape(-1, dim).copy()
    labels = table.column("label").to_numpy()
    return table.column("sample_id").to_pylist(), labels, features


def build_classifier(
    model,
    tokenizer,
    classnames: Sequence[str],
    templates: Sequence[str],
    device: torch.device,
    batch_size: int = 256,
) -> torch.Tensor:
    """Zero-shot classifier (dim x classes): mean of normalised template embeddings.

    Many classes go through the text tower in one forward pass.
    """
    if not classnames or not templates:
        raise ValueError("a zero-shot classifier needs class names and templates")
    per_batch = max(1, batch_size // len(templates))
    columns = []
    with torch.inference_mode():
        for start in range(0, len(classnames), per_batch):
            names = classnames[start : start + per_batch]
            texts = [t.replace("{c}", name) for name in names for t in templates]
            with autocast(device):
                embedded = model.encode_text(tokenizer(texts).to(device))
            embedded = F.normalize(embedded.float(), dim=-1)
            embedded = embedded.reshape(len(names), len(templates), -1).mean(dim=1)
            columns.append(F.normalize(embedded, dim=-1))
    return torch.cat(columns).T.cpu()


def resolve_prompts(classes: dict, prompt_set: dict) -> tuple[list[str], list[str]]:
    """Class names and templates for one prompt set of the config."""
    names = classes["classnames"][prompt_set["classnames"]]
    templates = prompt_set["templates"]
    if templates == "dataset":
        templates = classes.get("templates")
        if not templates:
            raise ValueError(
                "this prompt set asks for the dataset's own templates, but the "
                "dataset ships none; give a list of templates instead"
            )
    return names, list(templates)


def predict(
    features: np.ndarray, classifier: torch.Tensor, k: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k class indices and logits (100 x cosine similarity) for each image."""
    logits = 100.0 * torch.from_numpy(features) @ classifier
    k = min(k, classifier.shape[1])
    scores, top = logits.topk(k, dim=1)
    return top.numpy(), scores.numpy()


def write_predictions(path, ids, labels, top: np.ndarray, scores: np.ndarray) -> None:
    """Per-sample predictions: sample id, label, top-5 classes and their logits."""
    table = pa.table(
        {
            "sample_id": pa.array(ids, pa.string()),
            "label": pa.array(labels, pa.int64()),
            "top5": pa.array(list(top.astype(np.int64)), pa.list_(pa.int64())),
            "top5_scores": pa.array(
                list(scores.astype(np.float32)), pa.list_(pa.float32())
            ),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def evaluate_zeroshot(
    model,
    tokenizer,
    features_path: str | os.PathLike,
    classes_path: str | os.PathLike,
    prompt_set: dict,
    predictions_path: str | os.PathLike,
    metrics_path: str | os.PathLike,
    device: torch.device,
    text_batch_size: int = 256,
    bootstrap: dict | None = None,
    info: dict | None = None,
) -> dict:
    """Score cached image features with one prompt set; write predictions, metrics."""
    ids, labels, features = read_features(features_path)
    classes = read_classes(classes_path)
    names, templates = resolve_prompts(classes, prompt_set)
    start = time.perf_counter()
    classifier = build_classifier(
        model, tokenizer, names, templates, device, text_batch_size
    )
    log.info(
        "built a classifier of %d classes x %d templates in %.1f s",
        len(names),
        len(templates),
        time.perf_counter() - start,
    )
    top, scores = predict(features, classifier)
    write_predictions(predictions_path, ids, labels, top, scores)
    result = dict(info or {})
    labelled = labels >= 0
    encoding = encoding_stats(features_path)
    result.update(
        seconds_encode=encoding.get("seconds"),
        provenance={
            "encoding": {k: v for k, v in encoding.items() if k not in COUNTS},
            "scoring": device_provenance(device),
        },
    )
    result.update(
        n_classes=len(names),
        n_images=len(ids),
        n_labelled=int(labelled.sum()),
        n_templates=len(templates),
        classnames=prompt_set["classnames"],
        predictions=str(predictions_path),
    )
    if labelled.any():
        result.update(zeroshot_metrics(top[labelled], labels[labelled], len(names)))
        result.update(
            bootstrap_intervals(
                top[labelled, 0], labels[labelled], len(names), **(bootstrap or {})
            )
        )
        log.info(
            "top-1 %.4f, mean per-class recall %.4f on %d images",
            result["acc1"],
            result["mean_per_class_recall"],
            result["n_labelled"],
        )
    else:
        log.info("split has no labels: wrote predictions only")
    write_json(metrics_path, result)
    return result


def aggregate(metrics_files: Sequence[str | os.PathLike], output: str | os.PathLike):
    """Collect metrics JSON files of labelled splits into one long CSV table."""
    import pandas as pd

    rows = []
    for path in metrics_files:
        record = json.loads(Path(path).read_text())
        if record.get("n_labelled", 0) == 0:
            continue
        record.pop("per_class_recall", None)
        encoding = record.pop("provenance", {}).get("encoding", {})
        for key in ("device", "device_name", "precision"):
            record[key] = encoding.get(key)
        record["metrics"] = str(path)
        rows.append(record)
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.sort_values(["dataset", "checkpoint", "prompts"])
    with atomic_path(output) as tmp:
        table.to_csv(tmp, index=False)
    log.info("aggregated %d results into %s", len(table), output)
    return table
