rule render_relevance:
    input:
        photo=relevance_photo_file,
        checkpoint="results/checkpoints/{model}.json",
    output:
        directory("results/relevance/maps/{experiment}/{model}/{image}"),
    log:
        "logs/render_relevance/{experiment}/{model}/{image}.log",
    benchmark:
        "benchmarks/render_relevance/{experiment}/{model}/{image}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb("relevance"),
        runtime=gpu_runtime("relevance"),
    params:
        photo=relevance_photo,
        prompts=relevance_prompts,
        layers=relevance_layers,
        meta=relevance_meta,
        device=RELEVANCE["device"],
        colormap=RELEVANCE["colormap"],
        model_configs=model_configs(),
    script:
        "../scripts/render_relevance.py"


rule score_relevance:
    input:
        maps="results/relevance/maps/{experiment}/{model}/{image}",
        photo=relevance_photo_file,
        checkpoint="results/checkpoints/{model}.json",
    output:
        "results/relevance/scores/{experiment}/{model}/{image}.csv",
    log:
        "logs/score_relevance/{experiment}/{model}/{image}.log",
    benchmark:
        "benchmarks/score_relevance/{experiment}/{model}/{image}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb("relevance"),
        runtime=gpu_runtime("relevance"),
    params:
        photo=relevance_photo,
        scores=RELEVANCE_SCORES,
        device=RELEVANCE["device"],
        model_configs=model_configs(),
    script:
        "../scripts/score_relevance.py"


rule score_relevance_localisation:
    input:
        photos=localisation_files,
        checkpoint="results/checkpoints/{model}.json",
    output:
        "results/relevance/localisation/{model}.csv",
    log:
        "logs/score_relevance_localisation/{model}.log",
    benchmark:
        "benchmarks/score_relevance_localisation/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb("relevance"),
        runtime=gpu_runtime("relevance"),
    params:
        localisation=LOCALISATION,
        images=RELEVANCE["images"],
        start_layer=RELEVANCE["start_layer"],
        start_layer_text=RELEVANCE["start_layer_text"],
        device=RELEVANCE["device"],
        model_configs=model_configs(),
    script:
        "../scripts/score_relevance_localisation.py"


rule render_relevance_grid:
    input:
        relevance_map_dirs,
    output:
        grid=report(
            "results/relevance/figures/{experiment}.grid.png",
            caption="../report/relevance_grid.rst",
            category="Relevance maps",
            subcategory="{experiment}",
        ),
        tokens_html="results/relevance/figures/{experiment}.tokens.html",
        tokens_png=report(
            "results/relevance/figures/{experiment}.tokens.png",
            caption="../report/relevance_tokens.rst",
            category="Relevance maps",
            subcategory="{experiment}",
        ),
    log:
        "logs/render_relevance_grid/{experiment}.log",
    localrule: True
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/render_relevance_grid.py"


rule aggregate_relevance_scores:
    input:
        scores=all_relevance_scores(),
        maps=all_relevance_map_dirs(),
    output:
        report(
            "results/relevance/scores.csv",
            caption="../report/relevance_scores.rst",
            category="Relevance maps",
        ),
    log:
        "logs/aggregate_relevance_scores/aggregate.log",
    localrule: True
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/aggregate_relevance_scores.py"


rule aggregate_relevance_localisation:
    input:
        all_localisation_tables() if LOCALISATION else [],
    output:
        table="results/relevance/localisation.csv",
        summary=report(
            "results/relevance/localisation_summary.csv",
            caption="../report/relevance_localisation.rst",
            category="Relevance maps",
        ),
    log:
        "logs/aggregate_relevance_localisation/aggregate.log",
    localrule: True
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/aggregate_relevance_localisation.py"
