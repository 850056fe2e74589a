import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.datasets.miniplaces import prepare_miniplaces

prepare_miniplaces(
    snakemake.input.images,
    snakemake.input.categories,
    snakemake.input.val,
    os.path.dirname(snakemake.output.classes),
    on_corrupt=snakemake.params.on_corrupt,
)
