rule download_tfds:
    output:
        f"{DATA}/downloads/tfds/{{dataset}}.json",
    log:
        "logs/download_tfds/{dataset}.log",
    benchmark:
        "benchmarks/download_tfds/{dataset}.tsv"
    wildcard_constraints:
        dataset=dataset_pattern("tfds"),
    retries: 2
    localrule: True
    conda:
        "../envs/datasets.yaml"
    params:
        tfds=tfds_options,
    script:
        "../scripts/download_tfds.py"


rule prepare_tfds:
    input:
        f"{DATA}/downloads/tfds/{{dataset}}.json",
    output:
        f"{DATA}/prepared/{{dataset}}/{{split}}.parquet",
    log:
        "logs/prepare_tfds/{dataset}/{split}.log",
    benchmark:
        "benchmarks/prepare_tfds/{dataset}/{split}.tsv"
    wildcard_constraints:
        dataset=dataset_pattern("tfds"),
    conda:
        "../envs/datasets.yaml"
    resources:
        mem_mb=cpu_mem_mb,
        runtime=cpu_runtime,
    params:
        tfds=tfds_options,
        on_corrupt=on_corrupt_image(),
    script:
        "../scripts/prepare_tfds.py"


rule prepare_tfds_classes:
    input:
        f"{DATA}/downloads/tfds/{{dataset}}.json",
    output:
        f"{DATA}/prepared/{{dataset}}/classes.json",
    log:
        "logs/prepare_tfds_classes/{dataset}.log",
    wildcard_constraints:
        dataset=dataset_pattern("tfds"),
    localrule: True
    conda:
        "../envs/datasets.yaml"
    params:
        tfds=tfds_options,
        curated=curated_classnames,
    script:
        "../scripts/prepare_tfds_classes.py"


rule download_miniplaces:
    output:
        archive=f"{DATA}/downloads/{{dataset}}/data.tar.gz",
        categories=f"{DATA}/downloads/{{dataset}}/categories.txt",
        val=f"{DATA}/downloads/{{dataset}}/val.txt",
    log:
        "logs/download_miniplaces/{dataset}.log",
    benchmark:
        "benchmarks/download_miniplaces/{dataset}.tsv"
    wildcard_constraints:
        dataset=dataset_pattern("miniplaces"),
    retries: 1
    localrule: True
    conda:
        "../envs/datasets.yaml"
    params:
        source=miniplaces_source,
    script:
        "../scripts/download_miniplaces.py"


rule unzip_miniplaces:
    input:
        f"{DATA}/downloads/{{dataset}}/data.tar.gz",
    output:
        directory(f"{DATA}/extracted/{{dataset}}/images"),
    log:
        "logs/unzip_miniplaces/{dataset}.log",
    benchmark:
        "benchmarks/unzip_miniplaces/{dataset}.tsv"
    wildcard_constraints:
        dataset=dataset_pattern("miniplaces"),
    conda:
        "../envs/datasets.yaml"
    resources:
        mem_mb=cpu_mem_mb,
        runtime=cpu_runtime,
    script:
        "../scripts/unzip_miniplaces.py"


rule prepare_miniplaces:
    input:
        images=f"{DATA}/extracted/{{dataset}}/images",
        categories=f"{DATA}/downloads/{{dataset}}/categories.txt",
        val=f"{DATA}/downloads/{{dataset}}/val.txt",
    output:
        val=f"{DATA}/prepared/{{dataset}}/val.parquet",
        test=f"{DATA}/prepared/{{dataset}}/test.parquet",
        classes=f"{DATA}/prepared/{{dataset}}/classes.json",
    log:
        "logs/prepare_miniplaces/{dataset}.log",
    benchmark:
        "benchmarks/prepare_miniplaces/{dataset}.tsv"
    wildcard_constraints:
        dataset=dataset_pattern("miniplaces"),
    conda:
        "../envs/datasets.yaml"
    resources:
        mem_mb=cpu_mem_mb,
        runtime=cpu_runtime,
    params:
        on_corrupt=on_corrupt_image(),
    script:
        "../scripts/prepare_miniplaces.py"


rule write_miniplaces_submission:
    input:
        unpack(miniplaces_test_predictions),
    output:
        top5="results/miniplaces/{model}/{prompts}/submission_top5.txt",
        leaderboard="results/miniplaces/{model}/{prompts}/leaderboard.csv",
    log:
        "logs/write_miniplaces_submission/{model}/{prompts}.log",
    localrule: True
    conda:
        "../envs/datasets.yaml"
    params:
        columns=submission_columns,
    script:
        "../scripts/write_miniplaces_submission.py"


rule download_wds:
    output:
        directory(f"{DATA}/downloads/wds/{{dataset}}"),
    log:
        "logs/download_wds/{dataset}.log",
    benchmark:
        "benchmarks/download_wds/{dataset}.tsv"
    wildcard_constraints:
        dataset=dataset_pattern("wds"),
    retries: 2
    localrule: True
    conda:
        "../envs/datasets.yaml"
    params:
        mirror=wds_source,
    script:
        "../scripts/download_wds.py"


rule prepare_wds:
    input:
        f"{DATA}/downloads/wds/{{dataset}}",
    output:
        f"{DATA}/prepared/{{dataset}}/{{split}}.parquet",
    log:
        "logs/prepare_wds/{dataset}/{split}.log",
    benchmark:
        "benchmarks/prepare_wds/{dataset}/{split}.tsv"
    wildcard_constraints:
        dataset=dataset_pattern("wds"),
    conda:
        "../envs/datasets.yaml"
    resources:
        mem_mb=cpu_mem_mb,
        runtime=cpu_runtime,
    params:
        on_corrupt=on_corrupt_image(),
    script:
        "../scripts/prepare_wds.py"


rule prepare_wds_classes:
    input:
        f"{DATA}/downloads/wds/{{dataset}}",
    output:
        f"{DATA}/prepared/{{dataset}}/classes.json",
    log:
        "logs/prepare_wds_classes/{dataset}.log",
    wildcard_constraints:
        dataset=dataset_pattern("wds"),
    localrule: True
    conda:
        "../envs/datasets.yaml"
    script:
        "../scripts/prepare_wds_classes.py"


rule prepare_folder:
    input:
        user_images_input,
    output:
        f"{DATA}/prepared/{{dataset}}/{{split}}.parquet",
    log:
        "logs/prepare_folder/{dataset}/{split}.log",
    benchmark:
        "benchmarks/prepare_folder/{dataset}/{split}.tsv"
    wildcard_constraints:
        dataset=dataset_pattern("folder", "csv"),
    conda:
        "../envs/datasets.yaml"
    resources:
        mem_mb=cpu_mem_mb,
        runtime=cpu_runtime,
    params:
        images=user_images,
        on_corrupt=on_corrupt_image(),
    script:
        "../scripts/prepare_folder.py"


rule prepare_folder_classes:
    input:
        user_images_input,
    output:
        f"{DATA}/prepared/{{dataset}}/classes.json",
    log:
        "logs/prepare_folder_classes/{dataset}.log",
    wildcard_constraints:
        dataset=dataset_pattern("folder", "csv"),
    localrule: True
    conda:
        "../envs/datasets.yaml"
    params:
        images=user_images,
        templates=user_templates,
    script:
        "../scripts/prepare_folder_classes.py"
