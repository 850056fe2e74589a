import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.gpu import gpu_job

gpu_job(snakemake.input.checkpoint)

from clipstudy.evaluate import encode_decoded
from clipstudy.models import load_fetched, pick_device

settings = snakemake.params.evaluation
device = pick_device(settings["device"])
model, _, _ = load_fetched(
    snakemake.input.checkpoint, device, snakemake.params.model_configs
)
encode_decoded(
    model,
    snakemake.input.images,
    snakemake.input.index,
    snakemake.output[0],
    device,
    mean=snakemake.params.preprocess["mean"],
    std=snakemake.params.preprocess["std"],
    batch_size=settings["batch_size"],
    workers=max(0, snakemake.threads - 1),
    what=f"{snakemake.wildcards.dataset} with {snakemake.wildcards.model}",
)
