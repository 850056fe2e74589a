"""A user's own images: a folder with one sub-folder per class, or a CSV list.

Folder: `<path>/<class>/<image>`; classes are the sub-folders in sorted order
unless `classnames` fixes the order. CSV: a header with `path` and `label`
columns, paths relative to the CSV's folder (or absolute), labels are class
names; classes are the sorted distinct labels unless `classnames` is given.
Sample ids are image paths relative to the folder (CSV: as written).
"""

import csv
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from clipstudy.data import write_classes, write_samples
from clipstudy.datasets.common import (
    check_on_corrupt,
    checked_samples,
    is_image_file,
    readable,
)

log = logging.getLogger(__name__)


def folder_classes(path: str | os.PathLike, classnames: list[str] | None = None):
    """Class names of an image folder: its sub-folders, or `classnames` checked."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"image folder {path} does not exist; fix datasets.<id>.path"
        )
    folders = sorted(p.name for p in path.iterdir() if p.is_dir())
    if not folders:
        raise ValueError(
            f"{path} has no class sub-folders; put each class's images "
            "in a sub-folder named after the class"
        )
    if classnames is None:
        return folders
    missing = sorted(set(classnames) - set(folders))
    if missing:
        raise ValueError(f"classnames {missing} have no sub-folder in {path}")
    left_out = sorted(set(folders) - set(classnames))
    if left_out:
        log.info(
            "left out %d sub-folder(s) of %s not in classnames: %s",
            len(left_out),
            path,
            ", ".join(left_out),
        )
    return list(classnames)


def _folder_samples(path: Path, classes: list[str]) -> Iterator[tuple]:
    others = 0
    for label, name in enumerate(classes):
        files = sorted(p for p in (path / name).rglob("*") if p.is_file())
        for file in files:
            if is_image_file(file):
                yield file.relative_to(path).as_posix(), label, file.read_bytes()
            else:
                others += 1
    if others:
        log.info("left out %d file(s) of %s that are not images", others, path)


def read_csv_rows(csv_path: str | os.PathLike) -> list[tuple[str, str]]:
    """(path, label) rows of a CSV list; raise naming missing columns."""
    csv_path = Path(csv_path)
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if not {"path", "label"} <= set(columns):
            raise ValueError(
                f"{csv_path} needs a header with 'path' and 'label' columns; it has "
                f"{columns}"
            )
        return [(row["path"].strip(), row["label"].strip()) for row in reader]


def csv_classes(csv_path: str | os.PathLike, classnames: list[str] | None = None):
    """Class names of a CSV list: sorted distinct labels, or `classnames` checked."""
    labels = sorted({label for _, label in read_csv_rows(csv_path)})
    if classnames is None:
        return labels
    unknown = sorted(set(labels) - set(classnames))
    if unknown:
        raise ValueError(
            f"labels {unknown[:5]} of {csv_path} are not in classnames; add them"
        )
    return list(classnames)


def _csv_samples(csv_path: Path, classes: list[str]) -> Iterator[tuple]:
    index = {name: i for i, name in enumerate(classes)}
    for number, (name, label) in enumerate(read_csv_rows(csv_path), 2):
        file = Path(name) if Path(name).is_absolute() else csv_path.parent / name
        if not file.is_file():
            raise FileNotFoundError(f"{csv_path}:{number}: image {file} does not exist")
        yield name, index[label], file.read_bytes()


def prepare_user_images(
    out_dir: str | os.PathLike,
    split: str,
    path: str | os.PathLike | None = None,
    csv_path: str | os.PathLike | None = None,
    classnames: list[str] | None = None,
    on_corrupt: str = "fail",
) -> int:
    """Write `{out_dir}/{split}.parquet` from an image folder or a CSV list."""
    check_on_corrupt(on_corrupt)
    if (path is None) == (csv_path is None):
        raise ValueError("give exactly one of path (an image folder) or csv")
    if path is not None:
        classes = folder_classes(path, classnames)
        samples, where = _folder_samples(Path(path), classes), f"folder {path}"
    else:
        classes = csv_classes(csv_path, classnames)
        samples, where = _csv_samples(Path(csv_path), classes), f"list {csv_path}"
    counts: dict = {}
    written = write_samples(
        Path(out_dir) / f"{split}.parquet",
        checked_samples(samples, on_corrupt, where, counts),
    )
    if written == 0:
        raise ValueError(f"{where} holds no readable images")
    log.info(
        "prepared %s images in %d classes from %s (%d corrupt skipped)",
        f"{written:,}",
        len(classes),
        where,
        counts.get("skipped", 0),
    )
    return written


def export_user_classes(
    out_dir: str | os.PathLike,
    path: str | os.PathLike | None = None,
    csv_path: str | os.PathLike | None = None,
    classnames: list[str] | None = None,
    templates: list[str] | None = None,
) -> Path:
    """Write `{out_dir}/classes.json` for an image folder or CSV list."""
    if (path is None) == (csv_path is None):
        raise ValueError("give exactly one of path (an image folder) or csv")
    if path is not None:
        raw = folder_classes(path, classnames)
    else:
        raw = csv_classes(csv_path, classnames)
    out = Path(out_dir) / "classes.json"
    write_classes(out, raw, [readable(name) for name in raw], templates)
    log.info("wrote %d class names to %s", len(raw), out)
    return out
