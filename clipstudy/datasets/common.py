"""Helpers every dataset source shares: image checks and shipped class names."""

import io
import json
import logging
import warnings
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

from PIL import Image

from clipstudy.data import CorruptImageError

log = logging.getLogger(__name__)

ON_CORRUPT = ("fail", "skip")
CLASSNAMES_DIR = Path(__file__).resolve().parent.parent / "classnames"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def check_on_corrupt(on_corrupt: str) -> str:
    """Return `on_corrupt` if it is a known policy, else raise naming the choices."""
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(
            f"on_corrupt_image must be one of {', '.join(ON_CORRUPT)}, "
            f"not {on_corrupt!r}"
        )
    return on_corrupt


def image_decodes(data: bytes) -> str | None:
    """Return None if `data` decodes fully as an image, else the decoder's error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except Exception as error:  # PIL raises many types for broken files
        return f"{type(error).__name__}: {error}"
    return None


def checked_samples(
    samples: Iterable[tuple[str, int, bytes]],
    on_corrupt: str,
    where: str,
    counts: dict | None = None,
) -> Iterator[tuple[str, int, bytes]]:
    """Yield the samples whose image decodes; fail or skip (and count) the others.

    `where` names the dataset in messages; `counts` (if given) receives
    `written` and `skipped` totals when the iteration ends.
    """
    check_on_corrupt(on_corrupt)
    written = skipped = 0
    for sample_id, label, data in samples:
        error = image_decodes(data)
        if error is None:
            written += 1
            yield sample_id, label, data
            continue
        if on_corrupt == "fail":
            raise CorruptImageError(
                f"image {sample_id!r} of {where} does not decode ({error}); "
                "re-download the dataset, remove the file, or set "
                "evaluation.on_corrupt_image: skip"
            )
        skipped += 1
        log.warning(
            "skipping image %r of %s: it does not decode (%s)", sample_id, where, error
        )
    if skipped:
        log.warning("skipped %d corrupt image(s) of %s", skipped, where)
    if counts is not None:
        counts.update(written=written, skipped=skipped)


@cache
def shipped_classnames(source: str) -> dict:
    """The class-name table shipped in `clipstudy/classnames/<source>.json`."""
    return json.loads((CLASSNAMES_DIR / f"{source}.json").read_text())


def readable(name: str) -> str:
    """A prompt-friendlier class name: underscores become spaces."""
    return " ".join(name.replace("_", " ").split())


def check_names(names: list[str], count: int, what: str, fix: str) -> list[str]:
    """Return `names` if there is one per label, else raise naming both counts."""
    names = list(names)
    if len(names) != count:
        raise ValueError(
            f"{len(names)} class names for the {count} labels of {what}; {fix}"
        )
    return names


def is_image_file(path: Path) -> bool:
    """Whether `path` has one of the image suffixes we read."""
    return path.suffix.lower() in IMAGE_SUFFIXES
