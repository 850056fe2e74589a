# clipstudy: zero-shot CLIP checkpoints on 53 datasets and Miniplaces, with
# relevance maps, reproduced and extended as one workflow.
# Run: snakemake --cores all --resources gpu=1
# Configuration: config.yaml (checked against schemas/config.schema.yaml).


# load configuration
configfile: "config.yaml"


report: "report/workflow.rst"


# load rules
include: "rules/common.smk"
include: "rules/datasets.smk"
include: "rules/evaluate.smk"
include: "rules/relevance.smk"
include: "rules/report.smk"


# target rules
rule all:
    default_target: True
    input:
        "results/tables/zeroshot.csv",
        miniplaces_targets(),
        relevance_targets(),
        report_targets(),
