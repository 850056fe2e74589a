import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.gpu import gpu_job

gpu_job(snakemake.input.checkpoint)

from clipstudy.evaluate import encode_decoded, encode_images
from clipstudy.models import load_fetched, pick_device

settings = snakemake.params.evaluation
device = pick_device(settings["device"])
model, preprocess, _ = load_fetched(
    snakemake.input.checkpoint, device, snakemake.params.model_configs
)
what = f"{snakemake.wildcards.dataset} with {snakemake.wildcards.model}"
workers = max(0, snakemake.threads - 1)
if hasattr(snakemake.input, "images"):  # the shared decoded-image cache
    encode_decoded(
        model,
        snakemake.input.images,
        snakemake.input.index,
        snakemake.output[0],
        device,
        mean=snakemake.params.preprocess["mean"],
        std=snakemake.params.preprocess["std"],
        batch_size=settings["batch_size"],
        workers=workers,
        what=what,
    )
else:
    encode_images(
        model,
        preprocess,
        snakemake.input.samples,
        snakemake.output[0],
        device,
        batch_size=settings["batch_size"],
        workers=max(1, workers),
        on_corrupt=settings["on_corrupt_image"],
        what=what,
    )
