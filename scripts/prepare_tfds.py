import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.datasets.tfds import export_split

options = snakemake.params.tfds
export_split(
    options["name"],
    snakemake.wildcards.split,
    options["data_dir"],
    os.path.dirname(snakemake.output[0]),
    config=options["config"],
    on_corrupt=snakemake.params.on_corrupt,
)
