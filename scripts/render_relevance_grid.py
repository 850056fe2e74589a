import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.relevance_render import render_experiment

render_experiment(
    snakemake.input,
    snakemake.output.grid,
    snakemake.output.tokens_html,
    snakemake.output.tokens_png,
    title=snakemake.wildcards.experiment,
)
