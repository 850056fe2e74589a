"""Miniplaces: download, unpack and index the challenge data; write submissions.

The archive `data.tar.gz` holds `images/{train,val,test}`; the dev kit's
`categories.txt` (`/a/abbey 0`) and `val.txt` (`val/00000001.jpg 71`) come
from `devkit_url` or, when a (test) archive ships them, from its top level.
Test images have no labels: they are indexed in sorted file order with
label -1, and predictions on them become the official top-5 submission.
"""

import gzip
import logging
import os
import re
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from clipstudy.data import atomic_path, read_classes, write_classes, write_samples
from clipstudy.datasets.common import (
    check_on_corrupt,
    checked_samples,
    readable,
    shipped_classnames,
)
from clipstudy.datasets.download import CHUNK, download_file

log = logging.getLogger(__name__)

ARCHIVE = "data.tar.gz"
LABEL_FILES = ("categories.txt", "val.txt")
TEST_ID = re.compile(r"^test/(\d{8})\.jpg$")


class ArchiveError(ValueError):
    """The Miniplaces archive is truncated, corrupt or lacks expected files."""


def _archive_error(path: Path, error: Exception, fix: str = "") -> ArchiveError:
    return ArchiveError(
        f"{path} is truncated or corrupt ({type(error).__name__}: {error}); "
        + (fix or "delete it and run again to download it anew")
    )


def check_archive(path: str | os.PathLike) -> int:
    """Read the whole archive once; return its member count or raise ArchiveError.

    Every member's data and the gzip stream up to its end are read, so the
    gzip CRC and length catch a bit flip or a truncation anywhere in the file.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as stream:
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                members = 0
                for member in archive:
                    members += 1
                    data = archive.extractfile(member) if member.isfile() else None
                    while data is not None and data.read(CHUNK):
                        pass
            while stream.read(CHUNK):
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise _archive_error(path, error) from error
    return members


def _label_files_from_archive(archive_path: Path, out_dir: Path) -> None:
    """Copy the dev kit's label files from the archive's top level, if it has them."""
    with tarfile.open(archive_path, "r:gz") as archive:
        names = {Path(m.name).name: m for m in archive if m.isfile()}
        for label_file in LABEL_FILES:
            member = names.get(label_file)
            if member is None or member.name.strip("./").count("/") > 1:
                raise ArchiveError(
                    f"{archive_path} has no {label_file}; set devkit_url to the "
                    "folder of the Miniplaces dev kit's label files"
                )
            with atomic_path(out_dir / label_file) as tmp:
                tmp.write_bytes(archive.extractfile(member).read())


def download_miniplaces(
    url: str,
    out_dir: str | os.PathLike,
    sha256: str | None = None,
    devkit_url: str | None = None,
    retries: int = 4,
    backoff: float = 2.0,
    md5: str | None = None,
) -> Path:
    """Fetch `data.tar.gz` and the label files into `out_dir`; return the archive.

    A pinned `sha256` or `md5` that does not match removes the file and raises
    ChecksumError; without `sha256` the digest is logged so it can be pinned.
    Either way the archive is read to its end, so a corrupt download fails here.
    """
    out_dir = Path(out_dir)
    archive = out_dir / ARCHIVE
    digest = download_file(
        url, archive, sha256, retries=retries, backoff=backoff, md5=md5
    )
    if sha256 is None:
        log.warning("no sha256 pinned for %s; pin it with sha256: %s", url, digest)
    try:
        members = check_archive(archive)
    except ArchiveError as error:
        archive.unlink()
        raise _archive_error(
            archive,
            error.__cause__,
            f"it was removed. Run again to download it anew from {url}; if it "
            "fails again, the source itself is damaged: try another mirror",
        ) from error.__cause__
    log.info("%s holds %s members", archive, f"{members:,}")
    if devkit_url:
        for label_file in LABEL_FILES:
            download_file(
                f"{devkit_url.rstrip('/')}/{label_file}",
                out_dir / label_file,
                retries=retries,
                backoff=backoff,
            )
    else:
        _label_files_from_archive(archive, out_dir)
    return archive


def unzip_miniplaces(archive: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Extract the archive's `images/` into `out_dir`, via a temporary folder.

    Members are filtered as data (no absolute paths, links or escapes), so a
    hostile archive cannot write outside the temporary folder.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar if m.name.lstrip("./").startswith("images/")]
            if not members:
                raise ArchiveError(
                    f"{archive} has no images/ folder; is it Miniplaces?"
                )
            tar.extractall(tmp, members=members, filter="data")
            while tar.fileobj.read(CHUNK):  # to the end, so gzip checks its CRC
                pass
        for split in ("val", "test"):
            if not (tmp / "images" / split).is_dir():
                raise ArchiveError(f"{archive} has no images/{split}/ folder")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / "images", out_dir)
    except tarfile.FilterError as error:
        raise ArchiveError(
            f"{archive} has an unsafe member ({error}); it was not extracted. Check "
            "where the archive came from and download it again"
        ) from error
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise _archive_error(archive, error) from error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = sum(member.isfile() for member in members)
    log.info("extracted %s images of %s to %s", f"{files:,}", archive, out_dir)
    return out_dir


def read_categories(path: str | os.PathLike) -> list[str]:
    """Category paths of `categories.txt`, ordered by class id."""
    ids = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            name, index = line.split()
            ids[int(index)] = name
        except ValueError as error:
            raise ValueError(
                f"{path}:{number}: expected '<category> <id>', got {line!r}"
            ) from error
    if sorted(ids) != list(range(len(ids))):
        raise ValueError(f"class ids of {path} are not 0..{len(ids) - 1} without gaps")
    return [ids[i] for i in range(len(ids))]


def curated_names(raw: list[str]) -> list[str]:
    """Prompt-friendly names: the shipped ones, else the path without its letter."""
    shipped = shipped_classnames("miniplaces")
    known = dict(zip(shipped["raw"], shipped["curated"], strict=True))
    return [
        known.get(name) or readable(name.split("/", 2)[-1].replace("/", " "))
        for name in raw
    ]


def study_names(raw: list[str]) -> list[str]:
    """The names the study prompted with: the first path part after the letter."""
    shipped = shipped_classnames("miniplaces")
    known = dict(zip(shipped["raw"], shipped["study"], strict=True))
    return [known.get(name) or name.split("/")[2] for name in raw]


def _val_samples(images: Path, val_txt: Path, n_classes: int) -> Iterator[tuple]:
    for number, line in enumerate(val_txt.read_text().splitlines(), 1):
        if not line.strip():
            continue
        name, label = line.split()
        label = int(label)
        if not 0 <= label < n_classes:
            raise ValueError(
                f"{val_txt}:{number}: label {label} is outside 0..{n_classes - 1}; "
                "val.txt and categories.txt do not belong together"
            )
        path = images / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is listed in {val_txt} but missing; unpack the archive again"
            )
        yield name, label, path.read_bytes()


def _test_samples(images: Path) -> Iterator[tuple]:
    for path in sorted((images / "test").glob("*.jpg")):
        yield f"test/{path.name}", -1, path.read_bytes()


def prepare_miniplaces(
    images_dir: str | os.PathLike,
    categories_txt: str | os.PathLike,
    val_txt: str | os.PathLike,
    out_dir: str | os.PathLike,
    on_corrupt: str = "fail",
) -> dict[str, int]:
    """Write `val.parquet`, `test.parquet` and `classes.json`; return row counts."""
    check_on_corrupt(on_corrupt)
    images, out_dir = Path(images_dir), Path(out_dir)
    raw = read_categories(categories_txt)
    counts = {}
    for split, samples in (
        ("val", _val_samples(images, Path(val_txt), len(raw))),
        ("test", _test_samples(images)),
    ):
        skipped: dict = {}
        where = f"Miniplaces {split}"
        counts[split] = write_samples(
            out_dir / f"{split}.parquet",
            checked_samples(samples, on_corrupt, where, skipped),
        )
        log.info(
            "indexed %s images of %s (%d corrupt skipped)",
            f"{counts[split]:,}",
            where,
            skipped.get("skipped", 0),
        )
    if counts["test"] == 0:
        raise ArchiveError(f"{images / 'test'} holds no .jpg images")
    write_classes(
        out_dir / "classes.json", raw, curated_names(raw), study=study_names(raw)
    )
    return counts


def _check_submission_rows(
    rows: list[tuple[str, list[int]]],
    source: str,
    n_classes: int | None,
    expected_ids: set[str] | None,
) -> None:
    """Raise ValueError unless rows are unique test images with 5 in-range labels."""
    for (sample_id, top5), previous in zip(rows, [None, *rows], strict=False):
        if not TEST_ID.match(sample_id):
            raise ValueError(
                f"sample {sample_id!r} of {source} is not a Miniplaces test image "
                "(test/NNNNNNNN.jpg); give the test split's predictions"
            )
        if previous is not None and previous[0] == sample_id:
            raise ValueError(f"sample {sample_id!r} appears twice in {source}")
        if len(top5) != 5:
            raise ValueError(
                f"sample {sample_id!r} has {len(top5)} predicted labels; the "
                "submission needs exactly 5 per image"
            )
        outside = [label for label in top5 if n_classes and not 0 <= label < n_classes]
        if outside:
            raise ValueError(
                f"sample {sample_id!r} of {source} has labels {outside} outside "
                f"0..{n_classes - 1}; the predictions were made with other classes"
            )
    if expected_ids is not None:
        missing = sorted(expected_ids - {sample_id for sample_id, _ in rows})
        if missing:
            raise ValueError(
                f"{len(missing):,} test images have no prediction in {source} "
                f"(first: {', '.join(missing[:3])}); evaluate the whole test split"
            )


def write_submission(
    predictions_parquet: str | os.PathLike,
    top5_txt: str | os.PathLike,
    leaderboard_csv: str | os.PathLike,
    id_column: str = "Id",
    category_column: str = "Category",
    test_parquet: str | os.PathLike | None = None,
    classes_json: str | os.PathLike | None = None,
) -> int:
    """Write the official top-5 file and an `Id,Category` CSV from test predictions.

    The top-5 file has `test/00000001.jpg l1 l2 l3 l4 l5` per image in file
    order; the CSV has the 8-digit image number and the top-1 class. Given the
    prepared `test_parquet` and `classes_json`, every test image must have a
    prediction and every label must be a class index.
    """
    table = pq.read_table(predictions_parquet, columns=["sample_id", "top5"])
    rows = sorted(
        zip(table["sample_id"].to_pylist(), table["top5"].to_pylist(), strict=True)
    )
    n_classes = None
    if classes_json is not None:
        n_classes = len(read_classes(classes_json)["classnames"]["raw"])
    expected_ids = None
    if test_parquet is not None:
        column = pq.read_table(test_parquet, columns=["sample_id"])["sample_id"]
        expected_ids = set(column.to_pylist())
    _check_submission_rows(rows, str(predictions_parquet), n_classes, expected_ids)
    with atomic_path(top5_txt) as tmp:
        tmp.write_text(
            "".join(
                f"{sample_id} {' '.join(str(int(label)) for label in top5)}\n"
                for sample_id, top5 in rows
            )
        )
    with atomic_path(leaderboard_csv) as tmp:
        tmp.write_text(
            f"{id_column},{category_column}\n"
            + "".join(
                f"{TEST_ID.match(sample_id).group(1)},{int(top5[0])}\n"
                for sample_id, top5 in rows
            )
        )
    log.info(
        "wrote Miniplaces submission of %s test images to %s and %s",
        f"{len(rows):,}",
        top5_txt,
        leaderboard_csv,
    )
    return len(rows)
