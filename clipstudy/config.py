"""Check a study config before any job runs and plan the jobs it asks for."""

import difflib
import itertools
import re
from pathlib import Path

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
PLACEHOLDER = re.compile(r"\{c\}")
# CLIP_benchmark's WebDataset mirrors of classification datasets on the Hugging
# Face hub (clip-benchmark/wds_<name>, with / written as -)
WDS_MIRRORS = (
    "cars", "country211", "fer2013", "fgvc_aircraft", "gtsrb", "imagenet-a",
    "imagenet-o", "imagenet-r", "imagenet1k", "imagenet_sketch", "imagenetv2",
    "mnist", "objectnet", "renderedsst2", "stl10", "sun397", "voc2007",
    *(
        f"vtab/{name}"
        for name in (
            "caltech101", "cifar10", "cifar100", "clevr_closest_object_distance",
            "clevr_count_all", "diabetic_retinopathy", "dmlab",
            "dsprites_label_orientation", "dsprites_label_x_position",
            "dsprites_label_y_position", "dtd", "eurosat", "flowers",
            "kitti_closest_vehicle_distance", "pcam", "pets", "resisc45",
            "smallnorb_label_azimuth", "smallnorb_label_elevation", "svhn",
        )
    ),
)  # fmt: skip


class ConfigError(ValueError):
    """A config value that fails the schema or names something unknown."""


def load_schema(path: str | Path = SCHEMAS / "config.schema.yaml") -> dict:
    """Load a YAML JSON-schema, inlining `$ref`s to sibling schema files."""
    path = Path(path)
    schema = yaml.safe_load(path.read_text())
    return _inline_refs(schema, path.parent)


def _inline_refs(node, folder: Path):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.endswith(".yaml"):
            return load_schema(folder / ref)
        return {key: _inline_refs(value, folder) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(value, folder) for value in node]
    return node


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line naming the key, the problem and the fix."""
    key = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        if allowed:
            return (
                f"config key {key}: unknown key(s) {', '.join(extra)}; "
                f"allowed keys are {', '.join(allowed)}"
            )
        return f"config key {key}: {error.message}"
    if error.validator == "required":
        return f"config key {key}: {error.message}; add it"
    if error.validator == "pattern" and error.schema.get("pattern") == r"\{c\}":
        return (
            f"config key {key}: template {error.instance!r} has no {{c}}; put {{c}} "
            "where the class name goes"
        )
    if error.validator == "pattern" and error.schema.get("pattern") == r"\S":
        return f"config key {key}: {error.instance!r} is blank; give non-empty text"
    if error.validator == "oneOf" and key.endswith("templates"):
        return (
            f"config key {key}: give a list of templates that each contain {{c}}, "
            "or the word dataset"
        )
    return f"config key {key}: {error.message}"


def validate_config(config: dict, schema: dict | None = None) -> None:
    """Raise ConfigError with one line naming the first bad key and its fix."""
    schema = load_schema() if schema is None else schema
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: len(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        while error.context:
            error = jsonschema.exceptions.best_match(error.context)
        raise ConfigError(_describe(error))
    _check_references(config)


def _check_references(config: dict) -> None:
    known = {
        "checkpoints": config["checkpoints"],
        "datasets": config["datasets"],
        "prompts": config["prompts"],
    }
    for name, plan in config["evaluations"].items():
        for kind, table in known.items():
            for item in plan[kind]:
                if item not in table:
                    raise ConfigError(
                        f"config key evaluations.{name}.{kind}: unknown id {item!r}; "
                        f"define it under {kind}: or use one of {', '.join(table)}"
                    )
    experiments = config.get("relevance", {}).get("experiments", {})
    for name, experiment in experiments.items():
        for item in experiment.get("checkpoints", []):
            if item not in config["checkpoints"]:
                raise ConfigError(
                    f"config key relevance.experiments.{name}.checkpoints: unknown "
                    f"checkpoint {item!r}; define it under checkpoints:"
                )


def check_checkpoints(config: dict) -> None:
    """Raise ConfigError if open_clip cannot load a configured checkpoint."""
    from clipstudy.models import Checkpoint, check_checkpoint, register_model_configs

    try:
        register_model_configs(config.get("model_configs", []))
    except FileNotFoundError as error:
        raise ConfigError(f"config key model_configs: {error}") from None
    for key, spec in config["checkpoints"].items():
        try:
            check_checkpoint(Checkpoint(spec["model"], spec["pretrained"]))
        except ValueError as error:
            raise ConfigError(f"config key checkpoints.{key}: {error}") from None


def check_datasets(config: dict) -> None:
    """Raise ConfigError on a TFDS dataset or WebDataset mirror that does not exist.

    TFDS names outside the study's 17 are looked up in TFDS's own registry
    (which imports TensorFlow, so only then); a mirror with a local_source may
    have any name.
    """
    from clipstudy.datasets.common import shipped_classnames

    study_tfds = set(shipped_classnames("tfds"))
    for key, spec in config["datasets"].items():
        name = spec.get("name")
        if spec["source"] == "tfds" and name not in study_tfds:
            from clipstudy.datasets.tfds import check_builder_name

            try:
                check_builder_name(name)
            except ValueError as error:
                raise ConfigError(f"config key datasets.{key}.name: {error}") from None
        if spec["source"] != "wds" or "local_source" in spec or name in WDS_MIRRORS:
            continue
        close = difflib.get_close_matches(name, WDS_MIRRORS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(
            f"config key datasets.{key}.name: CLIP_benchmark has no WebDataset "
            f"mirror {name!r}{hint}; known mirrors are {', '.join(WDS_MIRRORS)}"
        )


def evaluation_jobs(config: dict) -> list[tuple[str, str, str, str]]:
    """All (checkpoint, dataset, split, prompt set) combinations the config scores."""
    jobs = set()
    for plan in config["evaluations"].values():
        for model, dataset, prompts in itertools.product(
            plan["checkpoints"], plan["datasets"], plan["prompts"]
        ):
            split = config["datasets"][dataset].get("split", "test")
            jobs.add((model, dataset, split, prompts))
    return sorted(jobs)


def _relevance_uses(relevance: dict) -> tuple[list, list]:
    """(key, image) and (key, checkpoint) pairs that the relevance section names."""
    experiments = relevance.get("experiments") or {}
    images = [
        (f"relevance.experiments.{name}.images", image)
        for name, experiment in experiments.items()
        for image in experiment.get("images", [])
    ]
    checkpoints = [
        (f"relevance.experiments.{name}.checkpoints", model)
        for name, experiment in experiments.items()
        for model in experiment.get("checkpoints", [])
    ]
    localisation = relevance.get("localisation")
    if localisation:
        images.append(("relevance.localisation.background", localisation["background"]))
        images += [
            (f"relevance.localisation.objects.{name}.image", spec["image"])
            for name, spec in localisation["objects"].items()
        ]
        checkpoints += [
            ("relevance.localisation.checkpoints", model)
            for model in localisation["checkpoints"]
        ]
    return images, checkpoints


def check_relevance(config: dict) -> None:
    """Raise ConfigError on a relevance image, checkpoint or model without a method."""
    from clipstudy.models import register_model_configs
    from clipstudy.relevance import UnsupportedModelError, method_for_config

    relevance = config.get("relevance") or {}
    images, checkpoints = _relevance_uses(relevance)
    known_images = relevance.get("images") or {}
    for key, image in images:
        if image not in known_images:
            raise ConfigError(
                f"config key {key}: unknown image {image!r}; define it under "
                f"relevance.images or use one of {', '.join(known_images)}"
            )
    try:
        register_model_configs(config.get("model_configs", []))
    except FileNotFoundError as error:
        raise ConfigError(f"config key model_configs: {error}") from None
    for key, model in checkpoints:
        if model not in config["checkpoints"]:
            raise ConfigError(
                f"config key {key}: unknown checkpoint {model!r}; define it under "
                "checkpoints:"
            )
        try:
            method_for_config(config["checkpoints"][model]["model"])
        except UnsupportedModelError as error:
            raise ConfigError(
                f"config key {key}: checkpoint {model}: {error}"
            ) from None
