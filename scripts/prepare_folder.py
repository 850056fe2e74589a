import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.datasets.user import prepare_user_images

prepare_user_images(
    os.path.dirname(snakemake.output[0]),
    snakemake.wildcards.split,
    on_corrupt=snakemake.params.on_corrupt,
    **snakemake.params.images,
)
