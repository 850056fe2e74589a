import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.gpu import gpu_job

gpu_job(snakemake.input.checkpoint)

from clipstudy.evaluate import evaluate_zeroshot
from clipstudy.models import load_fetched, pick_device

settings = snakemake.params.evaluation
device = pick_device(settings["device"])
model, _, tokenizer = load_fetched(
    snakemake.input.checkpoint, device, snakemake.params.model_configs
)
evaluate_zeroshot(
    model,
    tokenizer,
    snakemake.input.features,
    snakemake.input.classes,
    snakemake.params.prompt_set,
    snakemake.output.predictions,
    snakemake.output.metrics,
    device,
    text_batch_size=settings["text_batch_size"],
    bootstrap={
        "samples": settings["bootstrap_samples"],
        "seed": settings["bootstrap_seed"],
        "confidence": settings["confidence"],
    },
    info=snakemake.params.info,
)
