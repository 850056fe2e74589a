"""Decoded-image cache: decode, resize and crop a split once per preprocessing.

Checkpoints that share a preprocessing (input size, resize mode, interpolation)
read the same memory-mapped uint8 array; normalisation runs on the device.
"""

import logging
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from clipstudy.data import CorruptImageError, atomic_path, count_samples, decode_image

log = logging.getLogger(__name__)

PREPROCESS_KEYS = ("size", "mean", "std", "interpolation", "resize_mode", "fill_color")


def preprocess_config(model: str, pretrained: str) -> dict:
    """open_clip's inference preprocessing for a checkpoint, without loading weights."""
    from dataclasses import asdict

    import open_clip
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    config = open_clip.get_model_config(model)
    if config is None:
        raise ValueError(
            f"unknown open_clip model {model!r}; see open_clip.list_models()"
        )
    merged = merge_preprocess_dict(
        asdict(PreprocessCfg()), config.get("preprocess_cfg", {})
    )
    merged["size"] = config["vision_cfg"].get("image_size", merged["size"])
    tag = open_clip.get_pretrained_cfg(model, pretrained) if pretrained else {}
    merged = merge_preprocess_dict(merged, tag or {})
    return {key: merged[key] for key in PREPROCESS_KEYS}


def cache_key(config: dict) -> str:
    """A file-name-safe name for what the cache depends on (not mean and std)."""
    size = config["size"]
    size = f"{size[0]}x{size[1]}" if isinstance(size, (list, tuple)) else str(size)
    key = f"{size}px-{config['resize_mode']}-{config['interpolation']}"
    if config["resize_mode"] == "longest":
        key += f"-fill{config['fill_color']}"
    return key


def inference_transform(config: dict):
    """open_clip's whole inference preprocessing for a preprocess_config()."""
    import open_clip

    return open_clip.image_transform(
        config["size"],
        is_train=False,
        mean=config["mean"],
        std=config["std"],
        interpolation=config["interpolation"],
        resize_mode=config["resize_mode"],
        fill_color=config["fill_color"],
    )


def geometric_transform(config: dict):
    """open_clip's own resize and crop steps, without tensor conversion or Normalize."""
    from torchvision.transforms import Compose, Normalize, ToTensor

    full = inference_transform(config)
    kept = [
        step
        for step in full.transforms
        if not isinstance(step, (Normalize, ToTensor))
        and type(step).__name__ != "MaybeToTensor"
    ]
    return Compose(kept)


class _Decoder(torch.utils.data.Dataset):
    """Decode and resize one chunk of a row group of a prepared split per item.

    Chunks of at most `chunk` rows keep every loader worker busy to the end.
    """

    def __init__(self, samples, transform, on_corrupt: str, chunk: int = 32):
        self.samples, self.transform, self.on_corrupt = samples, transform, on_corrupt
        metadata = pq.ParquetFile(samples).metadata
        self.items = [
            (group, start, min(start + chunk, rows))
            for group in range(metadata.num_row_groups)
            for rows in [metadata.row_group(group).num_rows]
            for start in range(0, rows, chunk)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: int):
        group, start, end = self.items[item]
        if getattr(self, "_group", None) != group:  # one row group read per worker
            self._group = group
            self._table = pq.ParquetFile(self.samples).read_row_group(group)
        rows = self._table.slice(start, end - start).to_pylist()
        pixels, ids, labels = [], [], []
        for row in rows:
            try:
                image = decode_image(row["image"], row["sample_id"])
            except CorruptImageError:
                if self.on_corrupt == "fail":
                    raise
                log.warning("skipping corrupt image %s", row["sample_id"])
                continue
            pixels.append(np.asarray(self.transform(image).convert("RGB"), np.uint8))
            ids.append(row["sample_id"])
            labels.append(row["label"])
        return pixels, ids, labels


def _as_is(item):
    return item


def decode_split(
    samples: str | os.PathLike,
    images: str | os.PathLike,
    index: str | os.PathLike,
    config: dict,
    workers: int = 0,
    on_corrupt: str = "fail",
) -> int:
    """Write a split's resized, cropped images as one uint8 .npy (N, H, W, 3)."""
    size = config["size"]
    height, width = size if isinstance(size, (list, tuple)) else (size, size)
    total = count_samples(samples)
    loader = torch.utils.data.DataLoader(
        _Decoder(samples, geometric_transform(config), on_corrupt),
        batch_size=None,
        num_workers=workers,
        collate_fn=_as_is,
    )
    start, written = time.perf_counter(), 0
    ids: list[str] = []
    labels: list[int] = []
    row_bytes = height * width * 3
    with atomic_path(images) as tmp, open(tmp, "wb") as handle:
        _write_npy_header(handle, (total, height, width, 3))
        start_of_data = handle.tell()
        for pixels, group_ids, group_labels in loader:
            if pixels:
                handle.write(np.stack(pixels).tobytes())
            written += len(pixels)
            ids += group_ids
            labels += group_labels
        if written < total:
            handle.seek(0)
            _write_npy_header(handle, (written, height, width, 3))
            if handle.tell() != start_of_data:
                raise RuntimeError("the .npy header changed length while shrinking")
            handle.truncate(start_of_data + written * row_bytes)
    with atomic_path(index) as tmp:
        table = pa.table(
            {
                "sample_id": pa.array(ids, pa.string()),
                "label": pa.array(labels, pa.int64()),
            }
        )
        pq.write_table(table, tmp)
    seconds = time.perf_counter() - start
    log.info(
        "decoded %d images to %s in %.1f s (%.0f img/s), %d skipped",
        written,
        cache_key(config),
        seconds,
        written / max(seconds, 1e-9),
        total - written,
    )
    return written


def _write_npy_header(handle, shape: tuple[int, ...]) -> None:
    """Write a uint8 .npy header, so rows can be streamed in without a memory map."""
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(handle, header)


class DecodedImages(torch.utils.data.Dataset):
    """Contiguous batches of a decoded split, as uint8 tensors (B, H, W, 3)."""

    def __init__(self, images: str | os.PathLike, batch_size: int):
        self.images, self.batch_size = images, batch_size
        self.length = np.load(images, mmap_mode="r").shape[0]

    def __len__(self) -> int:
        return -(-self.length // self.batch_size)

    def __getitem__(self, batch: int) -> torch.Tensor:
        array = np.load(self.images, mmap_mode="r")
        start = batch * self.batch_size
        return torch.from_numpy(np.array(array[start : start + self.batch_size]))


def normalise(
    pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """uint8 (B, H, W, 3) to normalised float (B, 3, H, W), as ToTensor + Normalize."""
    pixels = pixels.permute(0, 3, 1, 2).float().div_(255)
    return pixels.sub_(mean[:, None, None]).div_(std[:, None, None])
