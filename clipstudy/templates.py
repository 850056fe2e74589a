"""The templates CLIP_benchmark prompts a TFDS dataset with, as the study ran it.

CLIP_benchmark looks a dataset's templates up by its short name: `dtd` and
`eurosat` have their own, every other TFDS dataset falls back to CLIP's 80
ImageNet templates (which open_clip ships).
"""

TFDS_TEMPLATES = {
    "dtd": [
        f"a photo of {article} {{c}} {noun}."
        for article in ("a", "the")
        for noun in ("texture", "pattern", "thing", "object")
    ],
    "eurosat": [
        f"a centered satellite photo of {article}{{c}}."
        for article in ("", "a ", "the ")
    ],
}


def imagenet_templates() -> list[str]:
    """CLIP's 80 ImageNet templates, with `{c}` for the class name."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return [template("{c}") for template in OPENAI_IMAGENET_TEMPLATES]


def clip_benchmark_tfds_templates(name: str) -> list[str]:
    """The templates CLIP_benchmark uses for TFDS dataset `name` (Tables 3-4)."""
    return list(TFDS_TEMPLATES.get(name) or imagenet_templates())


def prompt_set_for(prompt_set: dict, dataset: dict) -> dict:
    """A config prompt set for one dataset, with `templates: dataset` resolved.

    TFDS ships no templates, so there `dataset` means CLIP_benchmark's; other
    sources keep the word and the evaluation reads the templates they ship.
    """
    chosen = dict(prompt_set)
    if chosen["templates"] == "dataset" and dataset["source"] == "tfds":
        chosen["templates"] = clip_benchmark_tfds_templates(dataset["name"])
    return chosen
