"""Tiny fake sources in the real layouts, so the real code runs offline.

`make_tfds_source` writes what a TFDS builder would download, for use as
`download_and_prepare(..., local_source=folder)`; `make_miniplaces_archive`
writes a small `data.tar.gz` shaped like the Miniplaces challenge archive.
"""

import gzip
import io
import json
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from clipstudy.datasets.common import shipped_classnames


def fake_image(
    rng: np.random.Generator, label: int, size: tuple[int, int], fmt: str = "JPEG"
) -> bytes:
    """Encoded noise image whose mean colour depends on `label`."""
    width, height = size
    base = np.array([(label * 67) % 256, (label * 131) % 256, (label * 29) % 256])
    noise = rng.integers(-40, 40, size=(height, width, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def _cassava(folder: Path, per_class: int, rng: np.random.Generator) -> None:
    labels = shipped_classnames("tfds")["cassava"]["raw"]
    files = {}
    for split in ("train", "test", "validation"):
        for label, name in enumerate(labels):
            for i in range(per_class):
                files[f"cassavaleafdata/{split}/{name}/{split}-{name}-{i}.jpg"] = (
                    fake_image(rng, label, (24 + i, 20))
                )
    _zip(folder / "cassavaleafdata.zip", files)


def _citrus_leaves(folder: Path, per_class: int, rng: np.random.Generator) -> None:
    labels = shipped_classnames("tfds")["citrus_leaves"]["raw"]
    files = {}
    for label, name in enumerate(labels):
        for i in range(per_class):
            path = f"Citrus/Leaves/{name.replace(' ', '_')}/{name[:2]}{i}.png"
            files[path] = fake_image(rng, label, (16, 16), "PNG")
    # the Mendeley URL ends in `file_downloaded`: mirror it as an extracted folder
    _tree(folder / "file_downloaded", files)


def _horses_or_humans(folder: Path, per_class: int, rng: np.random.Generator):
    for archive, split in (
        ("horse-or-human.zip", 0),
        ("validation-horse-or-human.zip", 1),
    ):
        files = {}
        for label, name in enumerate(("horses", "humans")):
            for i in range(per_class):
                path = f"{name}/{name[:-1]}{split}-{i}.png"
                files[path] = fake_image(rng, label, (300, 300), "PNG")
        _zip(folder / archive, files)


def _uc_merced(folder: Path, per_class: int, rng: np.random.Generator) -> None:
    labels = shipped_classnames("tfds")["uc_merced"]["raw"]
    files = {}
    for label, name in enumerate(labels):
        for i in range(per_class):
            path = f"UCMerced_LandUse/Images/{name}/{name}{i:02d}.tif"
            files[path] = fake_image(rng, label, (12, 12), "TIFF")
    _zip(folder / "UCMerced_LandUse.zip", files)


def _eurosat(folder: Path, per_class: int, rng: np.random.Generator) -> None:
    import tensorflow_datasets as tfds

    labels = tfds.builder("eurosat").info.features["label"].names
    files = {}
    for label, name in enumerate(labels):
        for i in range(per_class):
            files[f"2750/{name}/{name}_{i + 1}.jpg"] = fake_image(rng, label, (64, 64))
    _zip(folder / "EuroSAT.zip", files)


def _dtd(folder: Path, per_class: int, rng: np.random.Generator) -> None:
    labels = shipped_classnames("tfds")["dtd"]["raw"]
    files = {}
    for split in ("train1", "test1", "val1"):
        names = []
        for label, name in enumerate(labels):
            for i in range(per_class):
                names.append(f"{name}/{name}_{split}_{i:04d}.jpg")
                files[f"dtd/images/{names[-1]}"] = fake_image(rng, label, (16, 12))
        files[f"dtd/labels/{split}.txt"] = "".join(f"{n}\n" for n in names).encode()
    # a folder named as the archive stands for its extracted contents
    _tree(folder / "dtd-r1.0.1.tar.gz", files)


BIRDS_URL = "https://drive.google.com/uc?export=download&id="
BIRDS2010_FILES = {
    "1vZuZPqha0JjmwkdaS_XtYryE3Jf5Q1AC": "splits",
    "16NsbTpMs5L6hT4hUJAmpW2u7wH326WTR": "annotations",
    "1GDr1OkoXdhaXWGA8S3MAq3a522Tak-nx": "images.tgz",
}


def _caltech_birds2010(folder: Path, per_class: int, rng: np.random.Generator):
    import scipy.io

    labels = shipped_classnames("tfds")["caltech_birds2010"]["raw"]
    lists: dict[str, list[str]] = {"train": [], "test": []}
    images = {}
    for label, name in enumerate(labels):
        species = name.capitalize()  # the builder lower-cases the folder's name
        for split, names in lists.items():
            for i in range(per_class):
                stem = f"{species}_{split}_{i:04d}"
                names.append(f"{label + 1:03d}.{species}/{stem}.jpg")
                images[f"images/{names[-1]}"] = fake_image(rng, label, (10, 8))
                mat = folder / "annotations" / "annotations-mat" / f"{stem}.mat"
                mat.parent.mkdir(parents=True, exist_ok=True)
                box = {"left": 1, "top": 1, "right": 9, "bottom": 7}
                seg = np.zeros((8, 10), np.uint8)
                scipy.io.savemat(mat, {"bbox": box, "seg": seg})
    _tree(
        folder / "splits" / "lists",
        {f"{split}.txt": "\n".join(names).encode() for split, names in lists.items()},
    )
    with tarfile.open(folder / "images.tgz", "w:gz") as archive:
        for name, data in images.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    urls = {BIRDS_URL + key: path for key, path in BIRDS2010_FILES.items()}
    (folder / "urls.json").write_text(json.dumps(urls, indent=1))


TFDS_SOURCES: dict[str, Callable[[Path, int, np.random.Generator], None]] = {
    "cassava": _cassava,
    "citrus_leaves": _citrus_leaves,
    "horses_or_humans": _horses_or_humans,
    "uc_merced": _uc_merced,
    "eurosat": _eurosat,
    "dtd": _dtd,
    "caltech_birds2010": _caltech_birds2010,
}


def make_tfds_source(
    name: str, folder: str | os.PathLike, images_per_class: int = 2, seed: int = 0
) -> Path:
    """Write a fake download of TFDS dataset `name` into `folder`; return it.

    Every split the builder makes gets `images_per_class` images per class.
    """
    if name not in TFDS_SOURCES:
        raise ValueError(
            f"no fake source for TFDS {name!r}; available: {', '.join(TFDS_SOURCES)}"
        )
    if images_per_class < 1:
        raise ValueError(f"images_per_class must be at least 1, not {images_per_class}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    TFDS_SOURCES[name](folder, images_per_class, np.random.default_rng(seed))
    return folder


def make_miniplaces_archive(
    path: str | os.PathLike,
    n_classes: int = 10,
    images_per_class: int = 2,
    seed: int = 0,
    devkit_dir: str | os.PathLike | None = None,
    label_files_in_archive: bool = True,
) -> Path:
    """Write a small Miniplaces `data.tar.gz` with the real layout; return its path.

    The archive holds `images/{train,val,test}` (128x128 JPEGs) and, unless
    `label_files_in_archive` is false, the dev kit's `categories.txt`,
    `train.txt` and `val.txt` at its top level; `devkit_dir` (default: `devkit`
    beside the archive) gets copies of them too, to serve as `devkit_url`.
    Classes are the first `n_classes` real categories; val and test each get
    `images_per_class` per class. The same arguments give the same bytes.
    """
    raw = shipped_classnames("miniplaces")["raw"]
    if not 1 <= n_classes <= len(raw):
        raise ValueError(f"n_classes must be between 1 and {len(raw)}, not {n_classes}")
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    train_lines, val_lines = [], []
    for label, category in enumerate(raw[:n_classes]):
        for i in range(images_per_class):
            name = f"train{category}/{i + 1:08d}.jpg"
            members[f"images/{name}"] = fake_image(rng, label, (128, 128))
            train_lines.append(f"{name} {label}")
    count = n_classes * images_per_class
    val_labels = rng.permutation(np.repeat(np.arange(n_classes), images_per_class))
    for index, label in enumerate(val_labels):
        name = f"val/{index + 1:08d}.jpg"
        members[f"images/{name}"] = fake_image(rng, int(label), (128, 128))
        val_lines.append(f"{name} {label}")
    test_labels = rng.permutation(np.repeat(np.arange(n_classes), images_per_class))
    for index in range(count):
        members[f"images/test/{index + 1:08d}.jpg"] = fake_image(
            rng, int(test_labels[index]), (128, 128)
        )
    label_files = {
        "categories.txt": "".join(f"{c} {i}\n" for i, c in enumerate(raw[:n_classes])),
        "train.txt": "".join(line + "\n" for line in train_lines),
        "val.txt": "".join(line + "\n" for line in val_lines),
    }
    if label_files_in_archive:
        members.update({k: v.encode() for k, v in label_files.items()})
    path = Path(path)
    devkit_dir = path.parent / "devkit" if devkit_dir is None else Path(devkit_dir)
    _tree(devkit_dir, {k: v.encode() for k, v in label_files.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(path, "wb") as raw_file,
        gzip.GzipFile(fileobj=raw_file, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            archive.addfile(info, io.BytesIO(members[name]))
    return path


def make_wds_mirror(
    folder: str | os.PathLike,
    split: str = "test",
    n_classes: int = 3,
    images_per_class: int = 2,
    shards: int = 2,
    seed: int = 0,
) -> Path:
    """Write a small CLIP_benchmark-style WebDataset mirror into `folder`.

    It has `<split>/<n>.tar` shards with `nshards.txt`, `classnames.txt` and
    `zeroshot_classification_templates.txt`; images are WebP, labels `cls`.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), images_per_class)
    chunks = np.array_split(np.arange(len(labels)), shards)
    (folder / split).mkdir(parents=True, exist_ok=True)
    for shard, indices in enumerate(chunks):
        with tarfile.open(folder / split / f"{shard}.tar", "w") as archive:
            for index in indices:
                key = f"s{index:07d}"
                fields = {
                    "webp": fake_image(rng, int(labels[index]), (20, 20), "WEBP"),
                    "cls": str(labels[index]).encode(),
                }
                for extension, data in fields.items():
                    info = tarfile.TarInfo(f"{key}.{extension}")
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
    (folder / split / "nshards.txt").write_text(f"{shards}\n")
    names = [f"class {chr(ord('a') + i % 26)}{i}" for i in range(n_classes)]
    (folder / "classnames.txt").write_text("".join(n + "\n" for n in names))
    (folder / "zeroshot_classification_templates.txt").write_text(
        "a photo of a {c}.\na blurry photo of the {c}.\n"
    )
    return folder
