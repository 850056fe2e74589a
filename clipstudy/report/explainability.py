"""Sort the relevance outputs the report is given into grids, token maps and tables."""

import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
IMAGE_SUFFIXES |= {".svg": "image/svg+xml", ".webp": "image/webp", ".gif": "image/gif"}
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
TEXT_SUFFIXES = {".txt", ".md", ".log"}
SCORE_COLUMNS = ("relevance", "score", "weight", "value")
UNSAFE_HTML = re.compile(
    r"<\s*(script|html|body|iframe|object|embed|link|meta|style)\b|<[^>]*\son\w+\s*=",
    re.IGNORECASE,
)


@dataclass
class TokenMap:
    """Relevance of each text token of one prompt (scores scaled to 0-1 for
    shading)."""

    caption: str
    tokens: list[str]
    scores: list[float]

    @property
    def shades(self) -> list[float]:
        top = max((abs(score) for score in self.scores), default=0.0)
        return [abs(score) / top if top else 0.0 for score in self.scores]


@dataclass
class RelevanceFiles:
    """Relevance outputs grouped for display: per experiment its images and HTML
    snippets (token maps), then score tables, token-map data and plain text."""

    experiments: dict[str, list[tuple[str, Path]]] = field(default_factory=dict)
    tables: list[tuple[Path, pd.DataFrame]] = field(default_factory=list)
    token_maps: list[TokenMap] = field(default_factory=list)
    texts: list[tuple[Path, str]] = field(default_factory=list)
    other: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.experiments or self.tables or self.token_maps or self.texts)

    @property
    def n_images(self) -> int:
        items = (kind for entries in self.experiments.values() for kind, _ in entries)
        return sum(kind == "image" for kind in items)


def expand(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files among `paths`, with folders replaced by the files below them, sorted."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(p for p in sorted(path.rglob("*")) if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            log.warning("relevance output %s does not exist; left out", path)
    return sorted(dict.fromkeys(files))


def experiment_of(path: Path, root: Path) -> str:
    """`portrait` for figures/portrait.grid.png, else the folder below `root`, else
    the file's stem."""
    if "." in path.stem:
        return path.stem.split(".")[0]
    parent = path.parent.relative_to(root)
    return str(parent) if str(parent) != "." else path.stem


def is_snippet(text: str) -> bool:
    """An HTML fragment without scripts, handlers or a document shell, safe to
    inline."""
    return UNSAFE_HTML.search(text) is None


def collect_relevance(paths: Iterable[str | os.PathLike]) -> RelevanceFiles:
    """Group relevance files by kind; images and HTML token maps by experiment.

    An image with an HTML file of the same stem (tokens.png beside tokens.html) is
    left out: the HTML shows the same token map as text.
    """
    found = RelevanceFiles()
    files = expand(paths)
    root = Path(os.path.commonpath([p.parent for p in files])) if files else Path()
    html_stems = {p.with_suffix("") for p in files if p.suffix.lower() == ".html"}
    for path in files:
        suffix = path.suffix.lower()
        experiment = experiment_of(path, root)
        if suffix in IMAGE_SUFFIXES:
            if path.with_suffix("") not in html_stems:
                found.experiments.setdefault(experiment, []).append(("image", path))
        elif suffix == ".html":
            text = path.read_text(errors="replace")
            if is_snippet(text):
                found.experiments.setdefault(experiment, []).append(("html", path))
            else:
                found.texts.append((path, text[:20000]))
        elif suffix in TABLE_SUFFIXES:
            frame = pd.read_csv(path, sep=TABLE_SUFFIXES[suffix])
            maps = token_maps_from_frame(frame, path.stem)
            if maps:
                found.token_maps.extend(maps)
            else:
                found.tables.append((path, frame))
        elif suffix == ".json":
            data = json.loads(path.read_text())
            maps = token_maps_from_json(data, path.stem)
            if maps:
                found.token_maps.extend(maps)
            else:
                found.texts.append((path, json.dumps(data, indent=1)[:20000]))
        elif suffix in TEXT_SUFFIXES:
            found.texts.append((path, path.read_text(errors="replace")[:20000]))
        else:
            found.other.append(path)
    log.info(
        "relevance files: %d images in %d experiments, %d tables, %d token maps",
        found.n_images,
        len(found.experiments),
        len(found.tables),
        len(found.token_maps),
    )
    return found


def _score_column(columns: Iterable[str]) -> str | None:
    columns = list(columns)
    return next((c for c in SCORE_COLUMNS if c in columns), None)


def token_maps_from_frame(frame: pd.DataFrame, caption: str) -> list[TokenMap]:
    """Token maps from a table with a `token` column and a score column, one per
    prompt (grouped by every other column)."""
    score = _score_column(frame.columns)
    if "token" not in frame.columns or score is None:
        return []
    keys = [c for c in frame.columns if c not in ("token", score, "position")]
    groups = frame.groupby(keys, sort=False) if keys else [((caption,), frame)]
    maps = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        maps.append(
            TokenMap(
                " / ".join(map(str, key)),
                part["token"].astype(str).tolist(),
                part[score].astype(float).tolist(),
            )
        )
    return maps


def token_maps_from_json(data, caption: str) -> list[TokenMap]:
    """Token maps from the JSON shapes a relevance step may write, or [] if none.

    Understood: {"tokens": [...], "scores": [...]} (score key may also be relevance
    or weights), a list of {"token", "score"} records, and lists or mappings of
    either, whose keys or `prompt`/`checkpoint` fields become the caption.
    """
    if isinstance(data, dict):
        tokens = data.get("tokens")
        score = next(
            (data[k] for k in ("scores", "relevance", "weights") if k in data), None
        )
        if isinstance(tokens, list) and isinstance(score, list):
            label = [data.get(k) for k in ("checkpoint", "image", "prompt")]
            label = " / ".join(str(x) for x in label if x) or caption
            return [TokenMap(label, list(map(str, tokens)), list(map(float, score)))]
        maps = []
        for key, value in data.items():
            maps.extend(token_maps_from_json(value, f"{caption} / {key}"))
        return maps
    if isinstance(data, list) and data:
        if all(isinstance(item, dict) and "token" in item for item in data):
            score = _score_column(data[0])
            if score is None:
                return []
            return [
                TokenMap(
                    caption,
                    [str(item["token"]) for item in data],
                    [float(item[score]) for item in data],
                )
            ]
        maps = []
        for index, item in enumerate(data):
            maps.extend(token_maps_from_json(item, f"{caption} / {index}"))
        return maps
    return []
