rule fetch_checkpoint:
    output:
        "results/checkpoints/{model}.json",
    log:
        "logs/fetch_checkpoint/{model}.log",
    retries: 2
    localrule: True
    conda:
        "../envs/torch.yaml"
    params:
        checkpoint=checkpoint_spec,
        model_configs=model_configs(),
    script:
        "../scripts/fetch_checkpoint.py"


rule decode_images:
    input:
        prepared_split,
    output:
        images=decoded_output("results/decoded/{dataset}/{split}/{preprocess}.npy"),
        index="results/decoded/{dataset}/{split}/{preprocess}.index.parquet",
    log:
        "logs/decode_images/{dataset}/{split}/{preprocess}.log",
    benchmark:
        "benchmarks/decode_images/{dataset}/{split}/{preprocess}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: data_threads
    resources:
        mem_mb=cpu_mem_mb,
        runtime=cpu_runtime,
    params:
        preprocess=preprocess_of_cache,
        on_corrupt=EVALUATION["on_corrupt_image"],
    script:
        "../scripts/decode_images.py"


rule encode_images:
    input:
        unpack(images_to_encode),
        checkpoint="results/checkpoints/{model}.json",
    output:
        "results/features/{model}/{dataset}/{split}.parquet",
    log:
        "logs/encode_images/{model}/{dataset}/{split}.log",
    benchmark:
        "benchmarks/encode_images/{model}/{dataset}/{split}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: data_threads
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb("encode"),
        runtime=gpu_runtime("encode"),
    params:
        evaluation=EVALUATION,
        model_configs=model_configs(),
        preprocess=preprocess_of_checkpoint,
    script:
        "../scripts/encode_images.py"


rule evaluate_zeroshot:
    input:
        features="results/features/{model}/{dataset}/{split}.parquet",
        classes=prepared_classes,
        checkpoint="results/checkpoints/{model}.json",
    output:
        predictions="results/predictions/{model}/{dataset}/{split}/{prompts}.parquet",
        metrics="results/metrics/{model}/{dataset}/{split}/{prompts}.json",
    log:
        "logs/evaluate_zeroshot/{model}/{dataset}/{split}/{prompts}.log",
    benchmark:
        "benchmarks/evaluate_zeroshot/{model}/{dataset}/{split}/{prompts}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb("evaluate"),
        runtime=gpu_runtime("evaluate"),
    params:
        evaluation=EVALUATION,
        model_configs=model_configs(),
        prompt_set=prompt_set,
        info=evaluation_info,
    script:
        "../scripts/evaluate_zeroshot.py"


rule aggregate_zeroshot:
    input:
        metrics=all_metrics(),
    output:
        report(
            "results/tables/zeroshot.csv",
            caption="../report/zeroshot.rst",
            category="Zero-shot classification",
        ),
    log:
        "logs/aggregate_zeroshot/aggregate.log",
    localrule: True
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/aggregate_zeroshot.py"
