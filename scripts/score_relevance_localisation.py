import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.gpu import gpu_job

gpu_job(snakemake.input.checkpoint)

from clipstudy.relevance import load_fetched
from clipstudy.relevance_scores import (
    localisation_from_config,
    localisation_scores,
    write_csv,
)

model, preprocess, tokenizer = load_fetched(
    snakemake.input.checkpoint, snakemake.params.device, snakemake.params.model_configs
)
scenes = localisation_from_config(
    snakemake.params.localisation, snakemake.params.images
)
table = localisation_scores(
    model,
    preprocess,
    tokenizer,
    scenes,
    snakemake.params.start_layer,
    snakemake.params.start_layer_text,
    checkpoint=snakemake.wildcards.model,
)
write_csv(table, snakemake.output[0])
