import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.gpu import gpu_job

gpu_job(snakemake.input.checkpoint)

from clipstudy.relevance import load_fetched, load_photo
from clipstudy.relevance_scores import score_maps, write_csv

model, preprocess, tokenizer = load_fetched(
    snakemake.input.checkpoint, snakemake.params.device, snakemake.params.model_configs
)
table = score_maps(
    model,
    preprocess,
    tokenizer,
    load_photo(snakemake.params.photo),
    snakemake.input.maps,
    **snakemake.params.scores,
)
write_csv(table, snakemake.output[0])
