"""What a reader needs to trust the numbers: versions, weights, device, run times."""

import json
import logging
import os
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PACKAGES = (
    "torch",
    "open_clip_torch",
    "snakemake",
    "tensorflow-datasets",
    "tensorflow",
    "numpy",
    "pandas",
    "pyarrow",
    "pillow",
    "scikit-image",
    "matplotlib",
    "seaborn",
    "jinja2",
)
# Provenance keys whose values differ per job say nothing about the setup.
MAX_DISTINCT = 6
# Top-level metrics keys read when a metrics file has no `provenance` mapping.
ENVIRONMENT_KEYS = ("device", "device_name", "precision", "torch", "open_clip")


def package_versions(names: Iterable[str] = PACKAGES) -> pd.DataFrame:
    """Installed version of each package (or `not installed`), Python first."""
    rows = [("python", platform.python_version())]
    for name in names:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    return pd.DataFrame(rows, columns=["package", "version"])


def checkpoint_records(
    ids: Iterable[str], files: Iterable[str | os.PathLike] = ()
) -> pd.DataFrame:
    """Model, pretrained tag, size and sha256 of each checkpoint from its JSON.

    `files` are the `results/checkpoints/<id>.json` records; an id without one
    shows as `not recorded`.
    """
    by_id = {Path(path).stem: Path(path) for path in files}
    rows = []
    for checkpoint in sorted(set(ids)):
        path = by_id.get(checkpoint)
        if path is None or not path.is_file():
            rows.append({"checkpoint": checkpoint, "sha256": "not recorded"})
            continue
        info = json.loads(path.read_text())
        rows.append(
            {
                "checkpoint": checkpoint,
                "model": info.get("model"),
                "pretrained": Path(str(info.get("pretrained", ""))).name,
                "MB": round(info["bytes"] / 1e6) if "bytes" in info else None,
                "sha256": info.get("sha256", "not recorded"),
            }
        )
    columns = ["checkpoint", "model", "pretrained", "MB", "sha256"]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    frame["MB"] = frame["MB"].astype("Int64")
    return frame


def benchmark_records(folder: str | os.PathLike | None) -> pd.DataFrame:
    """One row per Snakemake benchmark TSV under `folder`: rule, job, seconds, memory.

    The rule is the first folder below `folder`, as `benchmarks/<rule>/...`.
    """
    columns = ["rule", "job", "seconds", "max_rss_mb"]
    if folder is None or not Path(folder).is_dir():
        return pd.DataFrame(columns=columns)
    rows = []
    for path in sorted(Path(folder).rglob("*.tsv")):
        relative = path.relative_to(folder)
        try:
            frame = pd.read_csv(path, sep="\t")
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
            log.warning("skipped unreadable benchmark file %s: %s", path, error)
            continue
        if "s" not in frame.columns or frame.empty:
            log.warning("skipped benchmark file %s without an `s` column", path)
            continue
        rss = pd.to_numeric(frame.get("max_rss"), errors="coerce")
        rows.append(
            {
                "rule": relative.parts[0] if len(relative.parts) > 1 else "?",
                "job": str(Path(*relative.parts[1:]).with_suffix("")),
                "seconds": float(pd.to_numeric(frame["s"], errors="coerce").mean()),
                "max_rss_mb": float(rss.max()) if rss is not None else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def benchmark_summary(records: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, total, mean and longest seconds, peak memory (MB)."""
    if records.empty:
        return pd.DataFrame(
            columns=["jobs", "total_s", "mean_s", "max_s", "peak_rss_mb"],
            index=pd.Index([], name="rule"),
        )
    grouped = records.groupby("rule")
    return pd.DataFrame(
        {
            "jobs": grouped.size(),
            "total_s": grouped["seconds"].sum(),
            "mean_s": grouped["seconds"].mean(),
            "max_s": grouped["seconds"].max(),
            "peak_rss_mb": grouped["max_rss_mb"].max(),
        }
    ).sort_values("total_s", ascending=False)


def encode_throughput(zeroshot: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint: images encoded, seconds and images per second.

    Features are encoded once per (checkpoint, dataset, split) and reused by every
    prompt set, so each such triple counts once.
    """
    if "seconds_encode" not in zeroshot.columns:
        return pd.DataFrame()
    jobs = zeroshot.drop_duplicates(["checkpoint", "dataset", "split"])
    grouped = jobs.groupby("checkpoint")
    frame = pd.DataFrame(
        {
            "datasets": grouped.size(),
            "images": grouped["n_images"].sum(),
            "seconds": grouped["seconds_encode"].sum(),
        }
    )
    frame["images_per_s"] = frame["images"] / frame["seconds"].replace(0, np.nan)
    return frame


def evaluation_environment(metric_paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Distinct values of each scalar `provenance` key over the metrics JSON files.

    This is where the device, precision and library versions of the GPU jobs show.
    """
    values: dict[str, dict[str, int]] = {}
    read = missing = 0
    for path in dict.fromkeys(map(str, metric_paths)):
        if not Path(path).is_file():
            missing += 1
            continue
        record = json.loads(Path(path).read_text())
        provenance = record.get("provenance") or {
            key: record[key] for key in ENVIRONMENT_KEYS if key in record
        }
        read += 1
        for key, value in _flatten(provenance):
            counts = values.setdefault(key, {})
            counts[value] = counts.get(value, 0) + 1
    if missing:
        log.warning("%d metrics files listed in zeroshot.csv are missing", missing)
    rows = []
    for key, counts in sorted(values.items()):
        if len(counts) > MAX_DISTINCT:
            rows.append((key, f"{len(counts)} different values", read))
            continue
        for value, count in sorted(counts.items(), key=lambda item: -item[1]):
            rows.append((key, value, count))
    return pd.DataFrame(rows, columns=["key", "value", "jobs"])


def _flatten(mapping: Mapping, prefix: str = "") -> Iterable[tuple[str, str]]:
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        elif isinstance(value, str | int | float | bool) or value is None:
            yield name, str(value)


def known_deviations(zeroshot: pd.DataFrame, settings: Mapping) -> dict:
    """Facts of this run that the known-differences list refers to."""
    tfds = zeroshot[zeroshot["source"].astype(str) == "tfds"]
    splits = tfds.drop_duplicates("dataset")["split"].astype(str).value_counts()
    openai = zeroshot[zeroshot["pretrained"].astype(str).str.startswith("openai")]
    openai = openai.drop_duplicates("checkpoint")
    quick = openai["model"].astype(str).str.contains("quickgelu", case=False)
    cassava = [
        group
        for group, names in settings["task_groups"].items()
        if any("cassava" in str(name) for name in names)
    ]
    miniplaces = zeroshot[zeroshot["source"].astype(str) == "miniplaces"]
    on_cassava = tfds["benchmark_name"].astype(str).str.contains("cassava")
    cassava_classes = sorted(tfds.loc[on_cassava, "n_classes"].astype(int).unique())
    return {
        "tfds_splits": {str(k): int(v) for k, v in splits.items()},
        "openai_quickgelu": sorted(openai.loc[quick, "checkpoint"].astype(str)),
        "openai_plain_gelu": sorted(openai.loc[~quick, "checkpoint"].astype(str)),
        "cassava_group": cassava[0] if cassava else None,
        "cassava_classes": [int(n) for n in cassava_classes],
        "miniplaces_checkpoints": sorted(miniplaces["label"].astype(str).unique()),
        "miniplaces_splits": sorted(miniplaces["split"].astype(str).unique()),
    }
