"""Render the study report: one self-contained HTML page from tables, figures, maps."""

import base64
import datetime
import hashlib
import logging
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import yaml
from markupsafe import Markup, escape

from clipstudy.data import atomic_path
from clipstudy.report import provenance
from clipstudy.report.explainability import IMAGE_SUFFIXES, collect_relevance
from clipstudy.report.settings import report_settings
from clipstudy.report.tables import Table, build_tables, read_zeroshot

log = logging.getLogger(__name__)

TEMPLATE = "template.html.j2"
SECTIONS = (
    ("benchmarks", "Benchmarks"),
    ("tfds", "Our zero-shot datasets"),
    ("miniplaces", "Miniplaces"),
    ("explainability", "Explainability"),
    ("published", "Reproduced vs published"),
    ("methods", "Methods & provenance"),
)


def data_uri(path: str | os.PathLike, mime: str | None = None) -> str:
    """The file as a base64 data URI, so the page needs no other file."""
    path = Path(path)
    mime = mime or IMAGE_SUFFIXES.get(path.suffix.lower(), "text/csv")
    payload = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{mime};base64,{payload}"


def format_value(value, digits: int = 3) -> str:
    """A table cell as text: 3 decimals for floats, thousands for integers, - if
    missing."""
    if value is None or value is pd.NA or (_is_float(value) and math.isnan(value)):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if _is_float(value):
        return f"{float(value):.{digits}f}"
    return str(value)


def _is_float(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(
        value, numbers.Integral | bool | np.bool_
    )


def heat_colour(value: float, low: float, high: float) -> str:
    """A light background: blue for good values, red below zero, scaled to the
    table."""
    if math.isnan(value):
        return ""
    if value < 0:
        alpha = 0.45 * min(1.0, value / low) if low < 0 else 0.0
        return f"background:rgba(192,57,43,{alpha:.2f})"
    alpha = 0.5 * (value / high) if high > 0 else 0.0
    return f"background:rgba(41,128,185,{alpha:.2f})"


def render_table(table: Table, highlight: str | None = None, limit: int = 0) -> Markup:
    """A table as HTML; heat tables are shaded and cells with intervals carry a
    hover title. `highlight` names a boolean column whose true rows are marked."""
    frame = table.values
    if frame.empty:
        return Markup('<p class="empty">No rows in this run.</p>')
    show_index = not _plain_index(frame)
    index_names = [name or "" for name in frame.index.names] if show_index else []
    numeric = frame.select_dtypes("number")
    low_all = float(numeric.min().min()) if table.heat and not numeric.empty else 0
    high_all = float(numeric.max().max()) if table.heat and not numeric.empty else 0
    head = "".join(f"<th>{escape(n)}</th>" for n in index_names)
    head += "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    body = []
    for position in range(min(len(frame), limit) if limit else len(frame)):
        key = frame.index[position]
        keys = key if isinstance(key, tuple) else (key,)
        cells = [f'<th scope="row">{escape(format_value(k))}</th>' for k in keys]
        cells = cells if show_index else []
        for column_position, column in enumerate(frame.columns):
            value = frame.iat[position, column_position]
            cells.append(_cell(table, position, column, value, low_all, high_all))
        marked = highlight is not None and bool(frame[highlight].iloc[position])
        body.append(f"<tr{' class=flag' if marked else ''}>{''.join(cells)}</tr>")
    return Markup(
        '<div class="scroll"><table><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def _plain_index(frame: pd.DataFrame) -> bool:
    return isinstance(frame.index, pd.RangeIndex) and frame.index.name is None


def _cell(table: Table, row: int, column, value, low_all: float, high_all: float):
    attributes = ""
    is_float = _is_float(value) and not math.isnan(value)
    if table.heat and is_float:
        attributes += f' style="{heat_colour(float(value), low_all, high_all)}"'
    interval = _interval(table, row, column)
    if interval is not None and is_float:
        text = f"{value:.4f}, 95% interval {interval[0]:.4f} to {interval[1]:.4f}"
        attributes += f' title="{escape(text)}"'
    elif is_float:
        attributes += f' title="{value:.6g}"'
    numeric = isinstance(value, numbers.Number) and not isinstance(value, bool)
    attributes += ' class="num"' if numeric else ""
    return f"<td{attributes}>{escape(format_value(value))}</td>"


def _interval(table: Table, row: int, column) -> tuple[float, float] | None:
    if table.low is None or table.high is None or column not in table.low.columns:
        return None
    low, high = table.low[column].iloc[row], table.high[column].iloc[row]
    if pd.isna(low) or pd.isna(high):
        return None
    return float(low), float(high)


def interval_table(table: Table) -> Table | None:
    """The same table with `low to high` strings, for readers who cannot hover."""
    if table.low is None or table.high is None or table.values.empty:
        return None
    text = table.low.map(lambda v: f"{v:.3f}" if pd.notna(v) else "")
    text = text + " – " + table.high.map(lambda v: f"{v:.3f}" if pd.notna(v) else "")
    text = text.where(table.low.notna() & table.high.notna(), "–")
    if (text == "–").all().all():
        return None
    return Table(f"{table.name}_intervals", f"{table.title}: 95% intervals", text)


def _figure(figures: Mapping[str, str | os.PathLike], name: str) -> str | None:
    path = figures.get(name)
    if path is None or not Path(path).is_file():
        return None
    return data_uri(path)


def _leaderboards(paths: Sequence[str | os.PathLike]) -> list[dict]:
    found = []
    for path in map(Path, paths):
        if not path.is_file():
            log.warning("leaderboard %s does not exist; left out", path)
            continue
        frame = pd.read_csv(path)
        found.append(
            {
                "checkpoint": path.parent.parent.name,
                "prompts": path.parent.name,
                "path": str(path),
                "rows": len(frame),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
                "head": Table("head", "", frame.head(3).set_index(frame.columns[0])),
            }
        )
    return found


def _relevance_plan(config: Mapping) -> list[dict]:
    experiments = (config.get("relevance") or {}).get("experiments") or {}
    return [
        {
            "name": name,
            "images": ", ".join(map(str, spec.get("images", []))),
            "prompts": [str(p) for p in spec.get("prompts", [])],
            "checkpoints": ", ".join(map(str, spec.get("checkpoints", []))),
        }
        for name, spec in experiments.items()
    ]


def report_context(
    zeroshot_csv: str | os.PathLike,
    config: Mapping,
    tables: Mapping[str, str | os.PathLike] | None = None,
    figures: Mapping[str, str | os.PathLike] | None = None,
    relevance: Sequence[str | os.PathLike] = (),
    leaderboards: Sequence[str | os.PathLike] = (),
    checkpoint_files: Sequence[str | os.PathLike] = (),
    benchmarks_dir: str | os.PathLike | None = None,
) -> dict:
    """Everything the template shows, computed from the workflow's outputs."""
    settings = report_settings(config.get("report"))
    zeroshot = read_zeroshot(zeroshot_csv)
    built = build_tables(zeroshot, settings)
    figures = dict(figures or {})
    return {
        "title": settings["title"],
        "banner": settings["banner"],
        "settings": settings,
        "sections": SECTIONS,
        "built_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "counts": {
            "rows": len(zeroshot),
            "checkpoints": zeroshot["checkpoint"].nunique(),
            "datasets": zeroshot["dataset"].nunique(),
            "images": int(
                zeroshot.drop_duplicates(["dataset", "split"])["n_images"].sum()
            ),
        },
        "tables": built,
        "intervals": {name: interval_table(table) for name, table in built.items()},
        "csv": {
            name: data_uri(path, "text/csv")
            for name, path in (tables or {}).items()
            if Path(path).is_file()
        },
        "figure": {name: _figure(figures, name) for name in figures},
        "comparison": _comparison_summary(built["published_comparison"]),
        "leaderboards": _leaderboards(leaderboards),
        "relevance": collect_relevance(relevance),
        "relevance_plan": _relevance_plan(config),
        **_provenance(zeroshot, config, settings, checkpoint_files, benchmarks_dir),
    }


def _comparison_summary(comparison: Table) -> dict:
    frame = comparison.values
    if comparison.empty:
        return {"cells": 0, "flagged": 0, "max_abs": None, "within": 0}
    flagged = frame[frame["flagged"]]
    return {
        "cells": len(frame),
        "flagged": len(flagged),
        "other_split": int((frame["split"] != frame["published_split"]).sum()),
        "tables": ", ".join(dict.fromkeys(frame["table"])),
        "max_abs": float(frame["difference"].abs().max()),
        "within": int(frame["within_interval"].sum()),
        "flagged_table": Table("flagged", "Flagged cells", flagged),
    }


def _provenance(
    zeroshot: pd.DataFrame,
    config: Mapping,
    settings: Mapping,
    checkpoint_files: Sequence[str | os.PathLike],
    benchmarks_dir: str | os.PathLike | None,
) -> dict:
    experiments = (config.get("relevance") or {}).get("experiments") or {}
    checkpoints = [*zeroshot["checkpoint"].astype(str)]
    checkpoints += [c for spec in experiments.values() for c in spec["checkpoints"]]
    records = provenance.benchmark_records(benchmarks_dir)
    slowest = records.sort_values("seconds", ascending=False).head(15)
    metrics = zeroshot["metrics"].dropna() if "metrics" in zeroshot else []
    environment = provenance.evaluation_environment(metrics)
    return {
        "config_yaml": yaml.safe_dump(dict(config), sort_keys=False, width=88),
        "versions": Table(
            "versions", "", provenance.package_versions().set_index("package")
        ),
        "checkpoints": Table(
            "checkpoints",
            "",
            provenance.checkpoint_records(checkpoints, checkpoint_files).set_index(
                "checkpoint"
            ),
        ),
        "environment": Table("environment", "", environment.set_index("key")),
        "throughput": Table("throughput", "", provenance.encode_throughput(zeroshot)),
        "runtimes": Table("runtimes", "", provenance.benchmark_summary(records)),
        "slowest": Table("slowest", "", slowest.set_index("rule")),
        "deviations": provenance.known_deviations(zeroshot, settings),
    }


def _table_of(frame: pd.DataFrame, name: str, limit: int = 500) -> Table:
    frame = frame.head(limit)
    return Table(
        name, name, frame.set_index(frame.columns[0]) if len(frame.columns) else frame
    )


def _inline_html(path: str | os.PathLike) -> Markup:
    return Markup(Path(path).read_text(errors="replace"))


def render_report(context: Mapping, template: str | os.PathLike | None = None) -> str:
    """Render the page from the package template (or the given template file)."""
    if template is None:
        loader = jinja2.PackageLoader("clipstudy.report", ".")
        name = TEMPLATE
    else:
        loader = jinja2.FileSystemLoader(Path(template).parent)
        name = Path(template).name
    environment = jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(render_table=render_table, table_of=_table_of, zip=zip)
    environment.filters.update(
        value=format_value, data_uri=data_uri, inline_html=_inline_html
    )
    return environment.get_template(name).render(**context)


def build_report(
    out: str | os.PathLike,
    zeroshot_csv: str | os.PathLike,
    config: Mapping,
    tables: Mapping[str, str | os.PathLike] | None = None,
    figures: Mapping[str, str | os.PathLike] | None = None,
    relevance: Sequence[str | os.PathLike] = (),
    leaderboards: Sequence[str | os.PathLike] = (),
    checkpoint_files: Sequence[str | os.PathLike] = (),
    benchmarks_dir: str | os.PathLike | None = None,
) -> Path:
    """Write the self-contained report page to `out`; return its path."""
    context = report_context(
        zeroshot_csv,
        config,
        tables,
        figures,
        relevance,
        leaderboards,
        checkpoint_files,
        benchmarks_dir,
    )
    page = render_report(context)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info(
        "wrote %s (%.1f MB): %d result rows, %d figures, %d relevance images",
        out,
        len(page.encode()) / 1e6,
        context["counts"]["rows"],
        sum(v is not None for v in context["figure"].values()),
        context["relevance"].n_images,
    )
    return Path(out)
