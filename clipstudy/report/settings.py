"""The `report:` section of the config, with defaults filled in and checked."""

import copy
from collections.abc import Mapping

# File stems of the report's tables (results/tables/) and figures (results/figures/).
TABLE_NAMES = (
    "table1_acc1",
    "table2_mean_per_class_recall",
    "robustness",
    "table3_acc1_adjusted",
    "table4_mean_per_class_recall",
    "task_groups",
    "class_names",
    "miniplaces",
    "published_comparison",
)
FIGURE_NAMES = (
    "benchmark_top1",
    "benchmark_top1_mean",
    "robustness",
    "tfds_acc1_adjusted",
    "tfds_task_groups",
    "class_names",
    "published_comparison",
)
DEFAULTS: dict = {
    "title": "Zero-shot CLIP, reproduced and extended",
    "tolerance": 0.01,
    "banner": None,
    "task_groups": {},
    "prompts": {"benchmarks": "benchmark", "tfds": "benchmark"},
    "class_names": {"raw": "study", "curated": "curated"},
    "robustness": {
        "reference": "imagenet1k",
        "shifts": [
            "imagenetv2",
            "imagenet_sketch",
            "imagenet-r",
            "imagenet-a",
            "objectnet",
        ],
    },
}


def report_settings(report: Mapping | None) -> dict:
    """Merge the config's `report:` mapping over the defaults; reject bad values.

    Raises ValueError naming the key and the fix, so a typo fails before any plot.
    """
    settings = copy.deepcopy(DEFAULTS)
    for key, value in (report or {}).items():
        if key not in DEFAULTS:
            raise ValueError(
                f"report.{key} is not a report setting; known keys: "
                f"{', '.join(DEFAULTS)}"
            )
        if isinstance(DEFAULTS[key], dict) and key != "task_groups":
            if not isinstance(value, Mapping):
                raise ValueError(f"report.{key} must be a mapping, got {value!r}")
            unknown = set(value) - set(DEFAULTS[key])
            if unknown:
                raise ValueError(
                    f"report.{key} has unknown keys {sorted(unknown)}; known: "
                    f"{sorted(DEFAULTS[key])}"
                )
            settings[key].update(value)
        else:
            settings[key] = value

    tolerance = settings["tolerance"]
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise ValueError(f"report.tolerance must be a number, got {tolerance!r}")
    if tolerance < 0:
        raise ValueError(f"report.tolerance must be >= 0, got {tolerance}")
    _check_groups(settings["task_groups"] or {})
    settings["task_groups"] = dict(settings["task_groups"] or {})
    return settings


def _check_groups(groups: Mapping) -> None:
    if not isinstance(groups, Mapping):
        raise ValueError(
            "report.task_groups must map a group name to a list of dataset ids"
        )
    owner: dict[str, str] = {}
    for group, datasets in groups.items():
        if isinstance(datasets, str) or not isinstance(datasets, list | tuple):
            raise ValueError(
                f"report.task_groups.{group} must be a list of dataset ids, "
                f"got {datasets!r}"
            )
        for dataset in datasets:
            if dataset in owner:
                raise ValueError(
                    f"dataset {dataset!r} is in task groups {owner[dataset]!r} and "
                    f"{group!r}; put each dataset in one group"
                )
            owner[dataset] = group
