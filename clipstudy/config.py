"""Check a study config before any job runs and plan the jobs it asks for."""

import itertools
import re
from pathlib import Path

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
PLACEHOLDER = re.compile(r"\{c\}")


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
