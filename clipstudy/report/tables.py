"""The study's tables from zeroshot.csv: Tables 1-4, groups, Miniplaces, checks."""

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clipstudy import published
from clipstudy.data import atomic_path
from clipstudy.report.settings import TABLE_NAMES

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = (
    "checkpoint",
    "model",
    "pretrained",
    "published_as",
    "dataset",
    "benchmark_name",
    "source",
    "split",
    "prompts",
    "n_classes",
    "n_images",
    "acc1",
    "acc5",
    "mean_per_class_recall",
    "acc1_adjusted",
    "acc1_low",
    "acc1_high",
    "mean_per_class_recall_low",
    "mean_per_class_recall_high",
)
TFDS, MINIPLACES = "tfds", "miniplaces"


@dataclass
class Table:
    """A titled table; `low`/`high` hold 95% interval bounds shaped like `values`."""

    name: str
    title: str
    values: pd.DataFrame
    low: pd.DataFrame | None = None
    high: pd.DataFrame | None = None
    note: str = ""
    heat: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.values.empty


def read_zeroshot(path: str | os.PathLike) -> pd.DataFrame:
    """Read zeroshot.csv, check its columns and add a display `label` per checkpoint.

    The label is the name in the published tables where there is one, so columns
    read like the study's; a label two checkpoints would share falls back to ids.
    """
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        log.warning("%s is empty: no labelled split was scored", path)
        frame = pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{path} lacks columns {missing}; rebuild it with the aggregate_zeroshot "
            "rule of this version"
        )
    return label_checkpoints(frame)


def label_checkpoints(frame: pd.DataFrame) -> pd.DataFrame:
    """Add `label` (published name, else checkpoint id) and `row_label` per dataset."""
    frame = frame.copy()
    published_as = frame["published_as"].astype("string").str.strip()
    # a default name built from a weights file's path is no name to show
    usable = published_as.notna() & (published_as != "")
    label = published_as.where(usable & ~published_as.str.contains("/", regex=False))
    frame["label"] = label.fillna(frame["checkpoint"].astype("string")).astype(str)
    owners = frame.groupby("label")["checkpoint"].nunique()
    shared = frame["label"].isin(owners[owners > 1].index)
    frame.loc[shared, "label"] = frame.loc[shared, "checkpoint"].astype(str)

    name = frame["benchmark_name"].astype("string")
    frame["row_label"] = name.fillna(frame["dataset"].astype("string")).astype(str)
    pairs = frame.drop_duplicates(["row_label", "dataset", "split"])
    splits = pairs.groupby("row_label").size()
    clash = frame["row_label"].isin(splits[splits > 1].index)
    frame.loc[clash, "row_label"] = (
        frame.loc[clash, "dataset"].astype(str)
        + " ("
        + frame.loc[clash, "split"].astype(str)
        + ")"
    )
    return frame


def section_rows(
    zeroshot: pd.DataFrame, section: str, settings: Mapping
) -> pd.DataFrame:
    """Rows of one report section: benchmarks (every source but TFDS and Miniplaces,
    with the benchmark prompt set), tfds (with the study prompt set) or miniplaces."""
    source = zeroshot["source"].astype(str)
    if section == "benchmarks":
        keep = ~source.isin([TFDS, MINIPLACES])
        keep &= zeroshot["prompts"] == settings["prompts"]["benchmarks"]
    elif section == TFDS:
        keep = (source == TFDS) & (zeroshot["prompts"] == settings["prompts"]["tfds"])
    elif section == MINIPLACES:
        keep = source == MINIPLACES
    else:
        raise ValueError(f"unknown report section {section!r}")
    return zeroshot[keep]


def _bounds(rows: pd.DataFrame, metric: str) -> tuple[pd.Series, pd.Series]:
    if metric == "acc1":
        return rows["acc1_low"], rows["acc1_high"]
    if metric == "mean_per_class_recall":
        return rows["mean_per_class_recall_low"], rows["mean_per_class_recall_high"]
    if metric == "acc1_adjusted":
        chance = rows["acc1"] - rows["acc1_adjusted"]
        return rows["acc1_low"] - chance, rows["acc1_high"] - chance
    nan = pd.Series(np.nan, index=rows.index)
    return nan, nan


def _wide(rows: pd.DataFrame, column: str | pd.Series) -> pd.DataFrame:
    data = rows.assign(_value=rows[column] if isinstance(column, str) else column)
    wide = data.pivot(index="row_label", columns="label", values="_value")
    wide = wide.reindex(index=sorted(wide.index), columns=sorted(wide.columns))
    wide.index.name = "dataset"
    wide.columns.name = None
    return wide


def metric_table(
    rows: pd.DataFrame, metric: str, name: str, title: str, note: str = ""
) -> Table:
    """Datasets x checkpoints of one metric, with its interval bounds; sorted labels.

    Sorted names give the study's row and column order for its datasets and models.
    """
    if rows.empty:
        empty = pd.DataFrame(index=pd.Index([], name="dataset"))
        return Table(name, title, empty, note=note, heat=True)
    low, high = _bounds(rows, metric)
    return Table(
        name,
        title,
        _wide(rows, metric),
        _wide(rows, low),
        _wide(rows, high),
        note=note,
        heat=True,
    )


def benchmark_tables(zeroshot: pd.DataFrame, settings: Mapping) -> dict[str, Table]:
    """Tables 1-2: top-1 and mean per-class recall on the CLIP_benchmark datasets."""
    rows = section_rows(zeroshot, "benchmarks", settings)
    prompts = settings["prompts"]["benchmarks"]
    note = f"Prompt set {prompts!r}; hover a cell for its 95% bootstrap interval."
    return {
        "table1_acc1": metric_table(
            rows, "acc1", "table1_acc1", "Table 1: top-1 accuracy", note
        ),
        "table2_mean_per_class_recall": metric_table(
            rows,
            "mean_per_class_recall",
            "table2_mean_per_class_recall",
            "Table 2: mean per-class recall",
            note,
        ),
    }


def tfds_tables(zeroshot: pd.DataFrame, settings: Mapping) -> dict[str, Table]:
    """Tables 3-4 (acc1_adjusted, mean per-class recall) on the TFDS datasets."""
    rows = section_rows(zeroshot, TFDS, settings)
    groups = dict(zip(rows["row_label"], group_of(rows, settings["task_groups"])))
    prompts = settings["prompts"]["tfds"]
    splits = ", ".join(sorted(rows["split"].astype(str).unique())) or "none"
    note = (
        f"Prompt set {prompts!r}, split(s) {splits}; hover a cell for its 95% "
        "bootstrap interval."
    )
    table3 = metric_table(
        rows,
        "acc1_adjusted",
        "table3_acc1_adjusted",
        "Table 3: top-1 accuracy minus chance (acc1_adjusted = acc1 - 1/N)",
        note,
    )
    table3.extra["groups"] = groups
    return {
        "table3_acc1_adjusted": table3,
        "table4_mean_per_class_recall": metric_table(
            rows,
            "mean_per_class_recall",
            "table4_mean_per_class_recall",
            "Table 4: mean per-class recall",
            note,
        ),
    }


def group_of(rows: pd.DataFrame, groups: Mapping[str, Iterable[str]]) -> pd.Series:
    """Task group of each row, matched on dataset id or published name; else
    `ungrouped`."""
    lookup = {name: group for group, names in groups.items() for name in names}
    by_id = rows["dataset"].astype(str).map(lookup)
    by_name = rows["benchmark_name"].astype(str).map(lookup)
    return by_id.fillna(by_name).fillna("ungrouped")


def task_group_table(zeroshot: pd.DataFrame, settings: Mapping) -> Table:
    """acc1_adjusted averaged (unweighted) over the TFDS datasets of each task group."""
    title = "Task groups: mean acc1_adjusted per group"
    rows = section_rows(zeroshot, TFDS, settings)
    if rows.empty:
        return Table("task_groups", title, pd.DataFrame(index=pd.Index([])), heat=True)
    rows = rows.assign(row_label=group_of(rows, settings["task_groups"]))
    means = rows.groupby(["row_label", "label"], as_index=False)["acc1_adjusted"]
    wide = _wide(means.mean(), "acc1_adjusted")
    order = [g for g in settings["task_groups"] if g in wide.index]
    wide = wide.reindex(order + [g for g in wide.index if g not in order])
    wide.index.name = "group"
    members = rows.groupby("row_label")["benchmark_name"].unique()
    note = "; ".join(
        f"{group}: {', '.join(sorted(map(str, members[group])))}"
        for group in wide.index
    )
    return Table(
        "task_groups", title, wide, note=f"Datasets per group: {note}.", heat=True
    )


def class_name_table(zeroshot: pd.DataFrame, settings: Mapping) -> Table:
    """Per dataset, acc1_adjusted with raw vs curated class names, mean over
    checkpoints."""
    raw, curated = settings["class_names"]["raw"], settings["class_names"]["curated"]
    title = "Raw vs curated class names: mean acc1_adjusted over checkpoints"
    note = (
        f"raw = prompt set {raw!r}, curated = prompt set {curated!r}; only "
        "checkpoints evaluated with both count."
    )
    rows = zeroshot[zeroshot["prompts"].isin([raw, curated])]
    wide = rows.pivot_table(
        index=["row_label", "checkpoint"],
        columns="prompts",
        values="acc1_adjusted",
        aggfunc="mean",
    )
    columns = ["raw", "curated", "difference", "checkpoints"]
    if raw not in wide.columns or curated not in wide.columns:
        return Table("class_names", title, pd.DataFrame(columns=columns), note=note)
    wide = wide[[raw, curated]].dropna()
    means = wide.groupby(level="row_label").mean()
    table = pd.DataFrame(
        {
            "raw": means[raw],
            "curated": means[curated],
            "difference": means[curated] - means[raw],
            "checkpoints": wide.groupby(level="row_label").size(),
        }
    )
    table.index.name = "dataset"
    return Table("class_names", title, table.sort_index(), note=note)


def robustness_frame(rows: pd.DataFrame, settings: Mapping) -> pd.DataFrame:
    """Per checkpoint: reference top-1 and mean top-1 over the distribution shifts.

    Only checkpoints with every shift are kept, so the means are comparable.
    """
    spec = settings["robustness"]
    names = [spec["reference"], *spec["shifts"]]
    name = rows["benchmark_name"].astype(str)
    name = name.where(name.isin(names), rows["dataset"].astype(str))
    rows = rows.assign(_name=name)[name.isin(names)]
    wide = rows.pivot_table(index="label", columns="_name", values="acc1")
    wide = wide.reindex(columns=names).dropna()
    frame = pd.DataFrame(
        {
            "reference": wide[spec["reference"]],
            "shifted_mean": wide[spec["shifts"]].mean(axis=1),
        }
    )
    frame.index.name = "checkpoint"
    return frame.sort_index()


def published_robustness(settings: Mapping) -> pd.DataFrame:
    """robustness_frame of CLIP_benchmark's published numbers (the study's models)."""
    benchmark = published.clip_benchmark()
    rows = benchmark.rename(columns={"dataset": "benchmark_name"}).assign(
        dataset=benchmark["dataset"], label=benchmark["model_fullname"]
    )
    return robustness_frame(rows, settings)


def fit_line(x: pd.Series, y: pd.Series) -> tuple[float, float] | None:
    """Least-squares slope and intercept, or None with fewer than two distinct x."""
    if x.nunique() < 2:
        return None
    slope, intercept = np.polyfit(x.to_numpy(float), y.to_numpy(float), 1)
    return float(slope), float(intercept)


def robustness_table(zeroshot: pd.DataFrame, settings: Mapping) -> Table:
    """Effective robustness: shifted top-1 vs reference top-1 and the residual to
    the fit."""
    spec = settings["robustness"]
    frame = robustness_frame(section_rows(zeroshot, "benchmarks", settings), settings)
    fit = fit_line(frame["reference"], frame["shifted_mean"])
    if fit is not None:
        predicted = fit[0] * frame["reference"] + fit[1]
        frame["effective_robustness"] = frame["shifted_mean"] - predicted
    else:
        frame["effective_robustness"] = np.nan
    shifts = ", ".join(spec["shifts"])
    note = (
        f"reference = top-1 on {spec['reference']}; shifted_mean = mean top-1 over "
        f"{shifts}; effective_robustness = shifted_mean minus the linear fit."
    )
    return Table(
        "robustness",
        "Effective robustness",
        frame,
        note=note,
        extra={
            "fit": fit,
            "reference": spec["reference"],
            "shifts": spec["shifts"],
            "published": published_robustness(settings),
        },
    )


def miniplaces_table(zeroshot: pd.DataFrame) -> Table:
    """Miniplaces top-1/top-5/mean per-class recall per checkpoint and prompt set,
    beside the study's test-split top-1 (scored by the class leaderboard)."""
    rows = section_rows(zeroshot, MINIPLACES, {}).sort_values(["label", "prompts"])
    index = pd.MultiIndex.from_frame(
        rows[["label", "prompts"]].astype(str), names=["checkpoint", "prompts"]
    )
    values = pd.DataFrame(
        {
            "split": rows["split"].astype(str).to_numpy(),
            "images": rows["n_images"].to_numpy(),
            "acc1": rows["acc1"].to_numpy(),
            "acc5": rows["acc5"].to_numpy(),
            "mean_per_class_recall": rows["mean_per_class_recall"].to_numpy(),
            "published_test_acc1": [
                published.miniplaces_top1(name) for name in rows["published_as"]
            ],
        },
        index=index,
    )
    values["difference"] = values["acc1"] - values["published_test_acc1"]
    low = pd.DataFrame(np.nan, index=index, columns=values.columns)
    high = low.copy()
    low["acc1"], high["acc1"] = (
        rows["acc1_low"].to_numpy(),
        rows["acc1_high"].to_numpy(),
    )
    column = "mean_per_class_recall"
    low[column] = rows[f"{column}_low"].to_numpy()
    high[column] = rows[f"{column}_high"].to_numpy()
    note = (
        "Our numbers are on the labelled split shown; the study's were scored on "
        "the unlabelled test split by the class leaderboard, so they are not the "
        "same images. difference = acc1 - published_test_acc1, matched on the "
        "checkpoint's published name."
    )
    return Table("miniplaces", "Miniplaces", values, low, high, note=note)


def _miniplaces_cells(zeroshot: pd.DataFrame, settings: Mapping) -> pd.DataFrame:
    """Miniplaces top-1 of every prompt set, beside the study's one number."""
    rows = section_rows(zeroshot, MINIPLACES, settings)
    published_as = rows["published_as"].astype("string")
    return pd.DataFrame(
        {
            "table": "Miniplaces",
            "dataset": MINIPLACES,
            "checkpoint": rows["label"],
            "prompts": rows["prompts"].astype(str),
            "split": rows["split"].astype(str),
            "metric": "acc1",
            "reproduced": rows["acc1"],
            "published": [published.miniplaces_top1(name) for name in published_as],
            "low": rows["acc1_low"],
            "high": rows["acc1_high"],
        }
    ).dropna(subset=["published"])


def published_comparison(zeroshot: pd.DataFrame, settings: Mapping) -> Table:
    """Every reproduced cell of Tables 1-4 and Miniplaces beside its published value.

    A cell is flagged when |reproduced - published| exceeds report.tolerance and
    both were scored on the same split; cells on another split are shown, not
    flagged.
    """
    tolerance = float(settings["tolerance"])
    cells = published.published_cells()
    parts = []
    for table, (source, metric) in published.TABLES.items():
        section = "benchmarks" if source == "benchmark" else TFDS
        rows = section_rows(zeroshot, section, settings)
        low, high = _bounds(rows, metric)
        parts.append(
            pd.DataFrame(
                {
                    "table": table,
                    "dataset": rows["benchmark_name"].astype(str),
                    "checkpoint": rows["label"],
                    "published_as": rows["published_as"].astype("string"),
                    "prompts": rows["prompts"].astype(str),
                    "split": rows["split"].astype(str),
                    "metric": metric,
                    "reproduced": rows[metric],
                    "low": low,
                    "high": high,
                }
            )
        )
    ours = pd.concat(parts, ignore_index=True)
    merged = ours.merge(
        cells, on=["table", "dataset", "published_as", "metric"], how="inner"
    ).rename(columns={"value": "published"})
    miniplaces = _miniplaces_cells(zeroshot, settings)
    if not miniplaces.empty:
        merged = pd.concat([merged, miniplaces], ignore_index=True)
    merged["published_split"] = merged["table"].map(published.PUBLISHED_SPLITS)
    merged["difference"] = merged["reproduced"] - merged["published"]
    merged["within_interval"] = (merged["published"] >= merged["low"]) & (
        merged["published"] <= merged["high"]
    )
    same_split = merged["split"] == merged["published_split"]
    merged["flagged"] = (merged["difference"].abs() > tolerance) & same_split
    columns = ["table", "dataset", "checkpoint", "prompts", "split", "published_split"]
    columns += ["metric", "reproduced", "published", "difference", "low", "high"]
    columns += ["within_interval", "flagged"]
    merged = merged[columns].sort_values(["table", "dataset", "checkpoint", "prompts"])
    merged = merged.reset_index(drop=True)
    other_split = int((~same_split).sum())
    log.info(
        "compared %d cells with the published tables: %d beyond tolerance %.3g, "
        "%d on another split than published (not flagged)",
        len(merged),
        int(merged["flagged"].sum()),
        tolerance,
        other_split,
    )
    note = (
        f"difference = reproduced - published; flagged when |difference| > "
        f"{tolerance:g} (report.tolerance) and both were scored on the same split. "
        "Miniplaces: the study's test-split top-1 from the class leaderboard (one "
        "template), beside each of our prompt sets; our split is a labelled one, so "
        "those cells are never flagged. low/high: our 95% bootstrap interval."
    )
    return Table(
        "published_comparison",
        "Reproduced vs published",
        merged,
        note=note,
        extra={"tolerance": tolerance, "other_split": other_split},
    )


def build_tables(zeroshot: pd.DataFrame, settings: Mapping) -> dict[str, Table]:
    """Every table of the report, keyed by its file stem (TABLE_NAMES order)."""
    tables = {
        **benchmark_tables(zeroshot, settings),
        "robustness": robustness_table(zeroshot, settings),
        **tfds_tables(zeroshot, settings),
        "task_groups": task_group_table(zeroshot, settings),
        "class_names": class_name_table(zeroshot, settings),
        "miniplaces": miniplaces_table(zeroshot),
        "published_comparison": published_comparison(zeroshot, settings),
    }
    return {name: tables[name] for name in TABLE_NAMES}


def write_table(table: Table, path: str | os.PathLike) -> None:
    """Write a table's values as CSV (the study's layout), atomically."""
    with atomic_path(path) as tmp:
        plain = isinstance(table.values.index, pd.RangeIndex)
        table.values.to_csv(tmp, float_format="%.6g", index=not plain)
    log.info(
        "wrote %s: %d rows x %d columns to %s", table.name, *table.values.shape, path
    )


def write_tables(
    zeroshot_csv: str | os.PathLike,
    settings: Mapping,
    outputs: Mapping[str, str | os.PathLike],
) -> dict[str, Table]:
    """Build the tables named by `outputs` (name -> CSV path) from zeroshot.csv."""
    unknown = set(outputs) - set(TABLE_NAMES)
    if unknown:
        raise ValueError(
            f"unknown tables {sorted(unknown)}; choose from {', '.join(TABLE_NAMES)}"
        )
    tables = build_tables(read_zeroshot(zeroshot_csv), settings)
    for name, path in outputs.items():
        write_table(tables[name], Path(path))
    return tables
