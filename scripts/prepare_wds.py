import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.datasets.wds import prepare_wds

prepare_wds(
    snakemake.input[0],
    snakemake.wildcards.split,
    os.path.dirname(snakemake.output[0]),
    on_corrupt=snakemake.params.on_corrupt,
)
