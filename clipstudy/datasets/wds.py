"""CLIP_benchmark's WebDataset mirrors on the Hugging Face hub.

A mirror `clip-benchmark/wds_<name with / as ->` holds `<split>/<n>.tar`
shards (with `nshards.txt`), `classnames.txt` and
`zeroshot_classification_templates.txt` (templates use `{c}`). Each shard
sample has an image (`webp`, `png`, `jpg` or `jpeg`) and a `cls` label.
"""

import logging
import os
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

from huggingface_hub import snapshot_download

from clipstudy.data import write_classes, write_json, write_samples
from clipstudy.datasets.common import check_on_corrupt, checked_samples

log = logging.getLogger(__name__)

REPO_PREFIX = "clip-benchmark/wds_"
CLASSNAMES = "classnames.txt"
TEMPLATES = "zeroshot_classification_templates.txt"
IMAGE_KEYS = ("webp", "png", "jpg", "jpeg")
RECORD = "mirror.json"
COMMIT = re.compile(r"^[0-9a-fA-F]{40}$")


def repo_id(name: str) -> str:
    """The hub dataset repository of a CLIP_benchmark mirror, e.g. wds_vtab-cifar10."""
    return REPO_PREFIX + name.replace("/", "-")


def _link_snapshot(snapshot: Path, split: str, out_dir: Path) -> None:
    """Link a cached snapshot's split folder and name files into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (split, CLASSNAMES, TEMPLATES):
        if (snapshot / name).exists():
            (out_dir / name).symlink_to(snapshot / name)


def download_wds(
    name: str,
    split: str,
    revision: str,
    out_dir: str | os.PathLike,
    local_source: str | os.PathLike | None = None,
) -> Path:
    """Fetch one split's shards, class names and templates of a mirror; return out_dir.

    Files land in the Hugging Face cache (HF_HOME); `out_dir` gets links to the
    snapshot and `mirror.json`, which records the commit `revision` resolved to.
    With `local_source` (a copy of the mirror on disk) nothing is downloaded.
    """
    out_dir = Path(out_dir)
    if local_source is not None:
        copy_mirror(local_source, split, out_dir)
        write_json(out_dir / RECORD, {"local_source": os.fspath(local_source)})
        return out_dir
    if not COMMIT.match(revision):
        log.warning(
            "mirror %s is not pinned (revision: %s); pin a 40-hex commit id for "
            "reproducible results",
            repo_id(name),
            revision,
        )
    start = time.perf_counter()
    snapshot = Path(
        snapshot_download(
            repo_id(name),
            repo_type="dataset",
            revision=revision,
            allow_patterns=[f"{split}/*", CLASSNAMES, TEMPLATES],
        )
    )
    commit = snapshot.name
    if COMMIT.match(revision) and commit != revision.lower():
        raise RuntimeError(
            f"asked for {repo_id(name)} at commit {revision}, the hub cache gave "
            f"{commit}; clear {snapshot.parent.parent} and run again"
        )
    _link_snapshot(snapshot, split, out_dir)
    shards = shard_paths(out_dir, split)
    record = {
        "repo_id": repo_id(name),
        "revision": revision,
        "commit": commit,
        "snapshot": os.fspath(snapshot),
        "split": split,
        "shards": len(shards),
    }
    write_json(out_dir / RECORD, record)
    log.info(
        "downloaded %d shard(s) of %s %s at %s (commit %s) in %.1f s",
        len(shards),
        repo_id(name),
        split,
        revision,
        commit,
        time.perf_counter() - start,
    )
    return out_dir


def copy_mirror(
    source: str | os.PathLike, split: str, out_dir: str | os.PathLike
) -> Path:
    """Copy a split, class names and templates from a local copy of a mirror."""
    source, out_dir = Path(source), Path(out_dir)
    if not (source / split).is_dir():
        raise FileNotFoundError(
            f"local_source {source} has no {split}/ folder of shards; point it at "
            "a copy of the mirror (huggingface-cli download clip-benchmark/wds_...)"
        )
    shutil.copytree(source / split, out_dir / split)
    for name in (CLASSNAMES, TEMPLATES):
        if (source / name).is_file():
            shutil.copy2(source / name, out_dir / name)
    log.info("copied %d shard(s) from %s", len(shard_paths(out_dir, split)), source)
    return out_dir


def _natural(path: Path) -> list:
    return [
        int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)
    ]


def shard_paths(mirror_dir: str | os.PathLike, split: str) -> list[Path]:
    """The split's shards in order; raise naming the folder if there are none."""
    folder = Path(mirror_dir) / split
    shards = sorted(folder.glob("*.tar"), key=_natural)
    if not shards:
        raise FileNotFoundError(
            f"no .tar shards in {folder}; does the mirror have a {split!r} split? "
            "Fix datasets.<id>.split or download the mirror again"
        )
    count_file = folder / "nshards.txt"
    if count_file.is_file():
        expected = int(count_file.read_text().split()[0])
        if expected != len(shards):
            raise FileNotFoundError(
                f"{folder} holds {len(shards)} shard(s) but nshards.txt says "
                f"{expected}; download the mirror again"
            )
    return shards


def _split_key(member_name: str) -> tuple[str, str]:
    folder, _, base = member_name.rpartition("/")
    stem, _, extension = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), extension.lower()


def _shard_samples(shard: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) of each sample, grouping consecutive members."""
    key, fields = None, {}
    try:
        with tarfile.open(shard) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                member_key, extension = _split_key(member.name)
                if member_key != key and fields:
                    yield key, fields
                    fields = {}
                key = member_key
                fields[extension] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ValueError(
            f"shard {shard} is truncated or corrupt ({error}); delete the mirror "
            "folder and download it again"
        ) from error
    if fields:
        yield key, fields


def read_lines(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_classnames(mirror_dir: Path) -> list[str]:
    """The mirror's class names, in label order; raise if classnames.txt is missing."""
    path = mirror_dir / CLASSNAMES
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing, so labels cannot be named; delete {mirror_dir} "
            "and download the mirror again (or add the file to local_source)"
        )
    return read_lines(path)


def _samples(mirror_dir: Path, split: str, n_classes: int) -> Iterator[tuple]:
    seen = set()
    for shard in shard_paths(mirror_dir, split):
        for key, fields in _shard_samples(shard):
            image_key = next((k for k in IMAGE_KEYS if k in fields), None)
            if image_key is None or "cls" not in fields:
                kinds = "/".join(IMAGE_KEYS)
                raise ValueError(
                    f"sample {key!r} of {shard} lacks an image ({kinds}) or a cls "
                    f"label; it has {', '.join(sorted(fields))}"
                )
            label = int(fields["cls"].decode().strip())
            if not 0 <= label < n_classes:
                raise ValueError(
                    f"sample {key!r} of {shard} has label {label}, but "
                    f"{CLASSNAMES} lists {n_classes} classes"
                )
            sample_id = key if key not in seen else f"{shard.stem}/{key}"
            seen.add(sample_id)
            yield sample_id, label, fields[image_key]


def prepare_wds(
    mirror_dir: str | os.PathLike,
    split: str,
    out_dir: str | os.PathLike,
    on_corrupt: str = "fail",
) -> int:
    """Write `{out_dir}/{split}.parquet` from a mirror's shards; return rows.

    Images keep the mirror's encoding (often WebP, which PIL decodes).
    """
    check_on_corrupt(on_corrupt)
    mirror_dir = Path(mirror_dir)
    n_classes = len(read_classnames(mirror_dir))
    where = f"mirror {mirror_dir.name} {split}"
    counts: dict = {}
    start = time.perf_counter()
    written = write_samples(
        Path(out_dir) / f"{split}.parquet",
        checked_samples(
            _samples(mirror_dir, split, n_classes), on_corrupt, where, counts
        ),
    )
    log.info(
        "prepared %s images of %s in %.1f s (%d corrupt skipped)",
        f"{written:,}",
        where,
        time.perf_counter() - start,
        counts.get("skipped", 0),
    )
    return written


def export_wds_classes(
    mirror_dir: str | os.PathLike, out_dir: str | os.PathLike
) -> Path:
    """Write `{out_dir}/classes.json` from the mirror's class names and templates."""
    mirror_dir = Path(mirror_dir)
    names = read_classnames(mirror_dir)
    templates_file = mirror_dir / TEMPLATES
    templates = read_lines(templates_file) if templates_file.is_file() else None
    bad = [t for t in templates or [] if "{c}" not in t]
    if bad:
        raise ValueError(f"templates of {templates_file} lack {{c}}: {bad[:3]}")
    path = Path(out_dir) / "classes.json"
    write_classes(path, names, names, templates)
    log.info(
        "wrote %d class names and %d templates of %s",
        len(names),
        len(templates or []),
        mirror_dir.name,
    )
    return path
