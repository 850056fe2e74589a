import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# rule scripts import the clipstudy package from this checkout, in conda envs too
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")])
    )
)
sys.path.insert(0, workflow.basedir)

from clipstudy.config import (
    ConfigError,
    check_checkpoints,
    check_datasets,
    evaluation_jobs,
    validate_config,
)
from clipstudy.decoded import cache_key, preprocess_config
from clipstudy.templates import prompt_set_for

try:
    validate_config(config)
    check_checkpoints(config)
    check_datasets(config)
except ConfigError as error:
    raise WorkflowError(f"invalid config: {error}") from None


DATA = config["data_dir"]
EVALUATION = {
    "batch_size": 256,
    "text_batch_size": 256,
    "device": "auto",
    "bootstrap_samples": 1000,
    "bootstrap_seed": 0,
    "confidence": 0.95,
    "on_corrupt_image": "fail",
    "keep_decoded": False,
    **config.get("evaluation", {}),
}
PREPROCESS = {
    key: preprocess_config(spec["model"], spec["pretrained"])
    for key, spec in config["checkpoints"].items()
}
PREPROCESS_BY_KEY = {cache_key(cfg): cfg for cfg in PREPROCESS.values()}


def count_cache_readers():
    """Checkpoints per (dataset, split, preprocessing) the evaluations encode.

    Miniplaces checkpoints also encode the test split, for the submission.
    """
    readers = {}
    for model, dataset, split, _ in evaluation_jobs(config):
        splits = {split}
        if config["datasets"][dataset]["source"] == "miniplaces":
            splits.add("test")
        for each in splits:
            key = (dataset, each, cache_key(PREPROCESS[model]))
            readers.setdefault(key, set()).add(model)
    return {key: len(models) for key, models in readers.items()}


CACHE_READERS = count_cache_readers()


wildcard_constraints:
    model="|".join(map(re.escape, config["checkpoints"])),
    dataset="|".join(map(re.escape, config["datasets"])),
    split=r"[A-Za-z0-9_\-\[\]:%]+",
    prompts="|".join(map(re.escape, config["prompts"])),
    preprocess="|".join(map(re.escape, PREPROCESS_BY_KEY)),


# checkpoints


def checkpoint_spec(wildcards):
    return config["checkpoints"][wildcards.model]


def model_configs():
    return [os.path.abspath(folder) for folder in config.get("model_configs", [])]


# evaluation


def prepared_split(wildcards):
    return f"{DATA}/prepared/{wildcards.dataset}/{wildcards.split}.parquet"


def images_to_encode(wildcards):
    """The decoded-image cache where checkpoints share it, else the prepared split.

    A cache read by one checkpoint only saves nothing: that job decodes while it
    encodes instead.
    """
    key = cache_key(PREPROCESS[wildcards.model])
    if CACHE_READERS.get((wildcards.dataset, wildcards.split, key), 0) < 2:
        return {"samples": prepared_split(wildcards)}
    stem = f"results/decoded/{wildcards.dataset}/{wildcards.split}/{key}"
    return {"images": f"{stem}.npy", "index": f"{stem}.index.parquet"}


def preprocess_of_cache(wildcards):
    return PREPROCESS_BY_KEY[wildcards.preprocess]


def preprocess_of_checkpoint(wildcards):
    return PREPROCESS[wildcards.model]


def decoded_output(path):
    return path if EVALUATION["keep_decoded"] else temp(path)


def prepared_classes(wildcards):
    return f"{DATA}/prepared/{wildcards.dataset}/classes.json"


def benchmark_name(dataset):
    spec = config["datasets"][dataset]
    if spec["source"] == "tfds":
        return f"tfds/{spec['name']}"
    return spec.get("name", dataset)


def evaluation_info(wildcards):
    spec = config["checkpoints"][wildcards.model]
    return {
        "checkpoint": wildcards.model,
        "model": spec["model"],
        "pretrained": spec["pretrained"],
        "published_as": spec.get(
            "published_as", f"{spec['model']} {spec['pretrained']}"
        ),
        "dataset": wildcards.dataset,
        "benchmark_name": benchmark_name(wildcards.dataset),
        "source": config["datasets"][wildcards.dataset]["source"],
        "split": wildcards.split,
        "prompts": wildcards.prompts,
    }


def prompt_set(wildcards):
    return prompt_set_for(
        config["prompts"][wildcards.prompts], config["datasets"][wildcards.dataset]
    )


def all_metrics():
    return [
        f"results/metrics/{model}/{dataset}/{split}/{prompts}.json"
        for model, dataset, split, prompts in evaluation_jobs(config)
    ]


# datasets


def dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def dataset_ids(*sources):
    return [
        key for key, spec in config["datasets"].items() if spec["source"] in sources
    ]


def dataset_pattern(*sources):
    ids = dataset_ids(*sources)
    # a pattern that matches nothing keeps a rule without datasets unambiguous
    return "|".join(map(re.escape, ids)) if ids else "(?!)"


def tfds_options(wildcards):
    spec = dataset_spec(wildcards)
    return {
        "name": spec["name"],
        "config": spec.get("config"),
        "data_dir": config.get("tfds_data_dir"),
        "local_source": spec.get("local_source"),
    }


def curated_classnames(wildcards):
    return dataset_spec(wildcards).get("curated")


def on_corrupt_image():
    return EVALUATION["on_corrupt_image"]


def miniplaces_source(wildcards):
    spec = dataset_spec(wildcards)
    return {key: spec.get(key) for key in ("url", "sha256", "md5", "devkit_url")}


def wds_source(wildcards):
    spec = dataset_spec(wildcards)
    return {
        "local_source": spec.get("local_source"),
        **{key: spec[key] for key in ("name", "split", "revision")},
    }


def user_images(wildcards):
    spec = dataset_spec(wildcards)
    return {
        "path": spec.get("path"),
        "csv_path": spec.get("csv"),
        "classnames": spec.get("classnames"),
    }


def user_templates(wildcards):
    return dataset_spec(wildcards).get("templates")


def user_images_input(wildcards):
    spec = dataset_spec(wildcards)
    return spec["path"] if spec["source"] == "folder" else spec["csv"]


def miniplaces_id():
    ids = dataset_ids("miniplaces")
    if len(ids) > 1:
        raise WorkflowError(
            f"datasets: {len(ids)} miniplaces datasets ({', '.join(ids)}); "
            "keep one, the submission paths are per checkpoint and prompt set"
        )
    return ids[0] if ids else None


def miniplaces_targets():
    dataset = miniplaces_id()
    pairs = {
        (model, prompts)
        for model, name, _, prompts in evaluation_jobs(config)
        if name == dataset
    }
    return [
        f"results/miniplaces/{model}/{prompts}/{kind}"
        for model, prompts in sorted(pairs)
        for kind in ("submission_top5.txt", "leaderboard.csv")
    ]


def miniplaces_test_predictions(wildcards):
    model, dataset, prompts = wildcards.model, miniplaces_id(), wildcards.prompts
    return {
        "predictions": f"results/predictions/{model}/{dataset}/test/{prompts}.parquet",
        "test": f"{DATA}/prepared/{dataset}/test.parquet",
        "classes": f"{DATA}/prepared/{dataset}/classes.json",
    }


def submission_columns(wildcards):
    spec = config["datasets"][miniplaces_id()]
    return {
        "id_column": spec.get("id_column", "Id"),
        "category_column": spec.get("category_column", "Category"),
    }


# resources

from clipstudy import resources as sizing


def model_of(wildcards):
    return config["checkpoints"][wildcards.model]["model"]


def job_images(wildcards):
    """Images a job reads: its split once prepared, else config `images` or a default."""
    if "dataset" not in wildcards.keys():
        return 1
    spec = config["datasets"][wildcards.dataset]
    split = wildcards.get("split", spec.get("split", "test"))
    prepared = f"{DATA}/prepared/{wildcards.dataset}/{split}.parquet"
    return sizing.split_images(spec, prepared)


def data_threads(wildcards):
    return sizing.loader_threads(job_images(wildcards))


def gpu_mem_mb(step):
    def mem_mb(wildcards, threads, attempt):
        images = job_images(wildcards)
        return sizing.gpu_mem_mb(step, model_of(wildcards), images, threads, attempt)

    return mem_mb


def gpu_runtime(step):
    def runtime(wildcards, threads, attempt):
        images = job_images(wildcards)
        return sizing.gpu_runtime(step, model_of(wildcards), images, threads, attempt)

    return runtime


def cpu_mem_mb(wildcards, threads, attempt):
    return sizing.cpu_mem_mb(job_images(wildcards), threads, attempt)


def cpu_runtime(wildcards, threads, attempt):
    return sizing.cpu_runtime(job_images(wildcards), threads, attempt)


# report

from clipstudy.report import FIGURE_NAMES, TABLE_NAMES, report_settings

try:
    REPORT = report_settings(config.get("report"))
except ValueError as error:
    raise WorkflowError(f"invalid config: {error}") from None


def report_config():
    """The report: section with defaults filled in, for the report's scripts."""
    return REPORT


def study_config():
    """The whole config, shown in the report's provenance section."""
    return config


def report_table_files():
    return [f"results/tables/{name}.csv" for name in TABLE_NAMES]


def report_figure_files():
    return [f"results/figures/{name}.svg" for name in FIGURE_NAMES]


def report_relevance_files():
    """Relevance outputs the report shows: grids, token maps, score tables."""
    targets = globals().get("relevance_targets")
    return list(targets()) if targets else []


def report_leaderboards():
    return [path for path in miniplaces_targets() if path.endswith("leaderboard.csv")]


def report_checkpoint_files():
    """Records (file, size, SHA-256) of the checkpoints the report lists."""
    models = {model for model, *_ in evaluation_jobs(config)}
    models |= {model for _, model, _ in relevance_jobs()}
    return [f"results/checkpoints/{model}.json" for model in sorted(models)]


def report_targets():
    return ["results/report.html"]


# relevance

from clipstudy.config import check_relevance

RELEVANCE = {
    "device": "auto",
    "start_layer": -1,
    "start_layer_text": None,
    "colormap": "jet",
    "images": {},
    "experiments": {},
    **config.get("relevance", {}),
}
RELEVANCE_SCORES = {
    "steps": 16,
    "baseline": "blur",
    "seed": 0,
    **RELEVANCE.get("scores", {}),
}
LOCALISATION = RELEVANCE.get("localisation")


def check_relevance_config():
    """Fail before any job on an unknown image or an unsupported checkpoint."""
    try:
        check_relevance(config)
    except ConfigError as error:
        raise WorkflowError(f"invalid config: {error}") from None


check_relevance_config()


def _any_of(names):
    return "|".join(map(re.escape, names)) or "(?!)"


wildcard_constraints:
    experiment=_any_of(RELEVANCE["experiments"]),
    image=_any_of(RELEVANCE["images"]),


def relevance_photo(wildcards):
    return RELEVANCE["images"][wildcards.image]


def relevance_photo_file(wildcards):
    spec = RELEVANCE["images"][wildcards.image]
    return [spec["path"]] if "path" in spec else []


def relevance_prompts(wildcards):
    return RELEVANCE["experiments"][wildcards.experiment]["prompts"]


def relevance_layers(wildcards):
    experiment = RELEVANCE["experiments"][wildcards.experiment]
    return {
        "start_layer": experiment.get("start_layer", RELEVANCE["start_layer"]),
        "start_layer_text": experiment.get(
            "start_layer_text", RELEVANCE["start_layer_text"]
        ),
    }


def relevance_meta(wildcards):
    return {
        "experiment": wildcards.experiment,
        "checkpoint": wildcards.model,
        "image": wildcards.image,
    }


def relevance_jobs(experiment=None):
    """(experiment, checkpoint, image) of every map folder, or of one experiment."""
    return [
        (name, model, image)
        for name, spec in RELEVANCE["experiments"].items()
        if experiment in (None, name)
        for model in spec["checkpoints"]
        for image in spec["images"]
    ]


def relevance_map_dirs(wildcards):
    return [
        f"results/relevance/maps/{name}/{model}/{image}"
        for name, model, image in relevance_jobs(wildcards.experiment)
    ]


def all_relevance_map_dirs():
    return [
        f"results/relevance/maps/{name}/{model}/{image}"
        for name, model, image in relevance_jobs()
    ]


def all_relevance_scores():
    return [
        f"results/relevance/scores/{name}/{model}/{image}.csv"
        for name, model, image in relevance_jobs()
    ]


def localisation_files(wildcards=None):
    names = {LOCALISATION["background"]}
    names |= {spec["image"] for spec in LOCALISATION["objects"].values()}
    return [
        RELEVANCE["images"][name]["path"]
        for name in sorted(names)
        if "path" in RELEVANCE["images"][name]
    ]


def all_localisation_tables():
    return [
        f"results/relevance/localisation/{model}.csv"
        for model in LOCALISATION["checkpoints"]
    ]


def relevance_targets():
    """Final relevance files: per experiment grid and token maps, score tables."""
    if not RELEVANCE["experiments"]:
        return []
    targets = [
        f"results/relevance/figures/{name}.{kind}"
        for name in RELEVANCE["experiments"]
        for kind in ("grid.png", "tokens.html", "tokens.png")
    ]
    targets.append("results/relevance/scores.csv")
    if LOCALISATION:
        targets += [
            "results/relevance/localisation.csv",
            "results/relevance/localisation_summary.csv",
        ]
    return targets
