import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.decoded import decode_split

decode_split(
    snakemake.input[0],
    snakemake.output.images,
    snakemake.output.index,
    snakemake.params.preprocess,
    workers=max(0, snakemake.threads - 1),
    on_corrupt=snakemake.params.on_corrupt,
)
