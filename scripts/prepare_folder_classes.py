import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.datasets.user import export_user_classes

export_user_classes(
    os.path.dirname(snakemake.output[0]),
    templates=snakemake.params.templates,
    **snakemake.params.images,
)
