import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.datasets.miniplaces import write_submission

write_submission(
    snakemake.input.predictions,
    snakemake.output.top5,
    snakemake.output.leaderboard,
    **snakemake.params.columns,
    test_parquet=snakemake.input.test,
    classes_json=snakemake.input.classes,
)
