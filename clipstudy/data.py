"""Read and write the prepared-dataset format that every evaluation job reads."""

import io
import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

log = logging.getLogger(__name__)

SAMPLES_SCHEMA = pa.schema(
    [("sample_id", pa.string()), ("label", pa.int64()), ("image", pa.binary())]
)
ROW_GROUP = 256


class CorruptImageError(ValueError):
    """An image in a prepared dataset does not decode."""


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path` and move it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def write_samples(
    path: str | os.PathLike, samples: Iterable[tuple[str, int, bytes]]
) -> int:
    """Write (sample_id, label, encoded image bytes) rows in row groups; return count.

    Labels are class indices, or -1 for a split without labels.
    """
    count = 0
    seen: set[str] = set()
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, SAMPLES_SCHEMA) as writer:
        batch: list[tuple[str, int, bytes]] = []
        for sample in samples:
            if sample[0] in seen:
                raise ValueError(f"duplicate sample id {sample[0]!r} in {path}")
            seen.add(sample[0])
            batch.append(sample)
            if len(batch) == ROW_GROUP:
                writer.write_table(_samples_table(batch))
                count += len(batch)
                batch = []
        if batch or count == 0:
            writer.write_table(_samples_table(batch))
            count += len(batch)
    return count


def _samples_table(batch: list[tuple[str, int, bytes]]) -> pa.Table:
    ids, labels, images = zip(*batch) if batch else ((), (), ())
    return pa.table(
        [pa.array(ids, pa.string()), pa.array(labels, pa.int64()), pa.array(images)],
        schema=SAMPLES_SCHEMA,
    )


def count_samples(path: str | os.PathLike) -> int:
    """Number of rows of a prepared split, read from the Parquet footer."""
    return pq.ParquetFile(path).metadata.num_rows


def iter_samples(
    path: str | os.PathLike, columns: list[str] | None = None
) -> Iterator[dict]:
    """Stream the rows of a prepared split as dicts, one row group at a time."""
    parquet = pq.ParquetFile(path)
    for group in range(parquet.num_row_groups):
        yield from parquet.read_row_group(group, columns=columns).to_pylist()


def decode_image(data: bytes, sample_id: str = "?") -> Image.Image:
    """Decode encoded image bytes to an RGB PIL image, naming the sample on failure."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except Exception as error:
        raise CorruptImageError(
            f"image {sample_id!r} does not decode ({error}); re-download the "
            "dataset or set evaluation.on_corrupt_image: skip"
        ) from error


def read_classes(path: str | os.PathLike) -> dict:
    """Read a dataset's classes.json: class-name sets and optional templates."""
    classes = json.loads(Path(path).read_text())
    names = classes["classnames"]
    lengths = {key: len(value) for key, value in names.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"class-name lists of {path} differ in length: {lengths}")
    return classes


def write_classes(
    path: str | os.PathLike,
    raw: list[str],
    curated: list[str] | None = None,
    templates: list[str] | None = None,
    study: list[str] | None = None,
) -> None:
    """Write a dataset's classes.json; curated and study names default to raw ones.

    raw: the source's label names; study: the names the original study prompted
    with; curated: prompt-friendly names.
    """
    names = {"raw": list(raw), "study": list(raw), "curated": list(raw)}
    for key, given in (("study", study), ("curated", curated)):
        if given is None:
            continue
        if len(given) != len(raw):
            raise ValueError(
                f"{len(given)} {key} class names for {len(raw)} labels in {path}; "
                "give exactly one name per label"
            )
        names[key] = list(given)
    write_json(path, {"classnames": names, "templates": templates})
