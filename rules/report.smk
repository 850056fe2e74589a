rule aggregate_benchmark_tables:
    input:
        zeroshot="results/tables/zeroshot.csv",
    output:
        table1=report(
            "results/tables/table1_acc1.csv",
            caption="../report/table1_acc1.rst",
            category="Benchmarks",
        ),
        table2=report(
            "results/tables/table2_mean_per_class_recall.csv",
            caption="../report/table2_mean_per_class_recall.rst",
            category="Benchmarks",
        ),
        robustness=report(
            "results/tables/robustness.csv",
            caption="../report/robustness.rst",
            category="Benchmarks",
        ),
    log:
        "logs/aggregate_benchmark_tables/tables.log",
    localrule: True
    conda:
        "../envs/report.yaml"
    params:
        settings=report_config(),
    script:
        "../scripts/aggregate_report_tables.py"


rule aggregate_tfds_tables:
    input:
        zeroshot="results/tables/zeroshot.csv",
    output:
        table3=report(
            "results/tables/table3_acc1_adjusted.csv",
            caption="../report/table3_acc1_adjusted.rst",
            category="Our zero-shot datasets",
        ),
        table4=report(
            "results/tables/table4_mean_per_class_recall.csv",
            caption="../report/table4_mean_per_class_recall.rst",
            category="Our zero-shot datasets",
        ),
        task_groups=report(
            "results/tables/task_groups.csv",
            caption="../report/task_groups.rst",
            category="Our zero-shot datasets",
        ),
        class_names=report(
            "results/tables/class_names.csv",
            caption="../report/class_names.rst",
            category="Our zero-shot datasets",
        ),
    log:
        "logs/aggregate_tfds_tables/tables.log",
    localrule: True
    conda:
        "../envs/report.yaml"
    params:
        settings=report_config(),
    script:
        "../scripts/aggregate_report_tables.py"


rule aggregate_miniplaces_table:
    input:
        zeroshot="results/tables/zeroshot.csv",
    output:
        miniplaces=report(
            "results/tables/miniplaces.csv",
            caption="../report/miniplaces.rst",
            category="Miniplaces",
        ),
    log:
        "logs/aggregate_miniplaces_table/tables.log",
    localrule: True
    conda:
        "../envs/report.yaml"
    params:
        settings=report_config(),
    script:
        "../scripts/aggregate_report_tables.py"


rule aggregate_published_comparison:
    input:
        zeroshot="results/tables/zeroshot.csv",
    output:
        published_comparison=report(
            "results/tables/published_comparison.csv",
            caption="../report/published_comparison.rst",
            category="Reproduced vs published",
        ),
    log:
        "logs/aggregate_published_comparison/tables.log",
    localrule: True
    conda:
        "../envs/report.yaml"
    params:
        settings=report_config(),
    script:
        "../scripts/aggregate_report_tables.py"


rule plot_benchmark_figures:
    input:
        zeroshot="results/tables/zeroshot.csv",
    output:
        benchmark_top1_png=report(
            "results/figures/benchmark_top1.png",
            caption="../report/benchmark_top1.rst",
            category="Benchmarks",
        ),
        benchmark_top1_svg="results/figures/benchmark_top1.svg",
        benchmark_top1_mean_png=report(
            "results/figures/benchmark_top1_mean.png",
            caption="../report/benchmark_top1_mean.rst",
            category="Benchmarks",
        ),
        benchmark_top1_mean_svg="results/figures/benchmark_top1_mean.svg",
        robustness_png=report(
            "results/figures/robustness.png",
            caption="../report/robustness.rst",
            category="Benchmarks",
        ),
        robustness_svg="results/figures/robustness.svg",
    log:
        "logs/plot_benchmark_figures/figures.log",
    localrule: True
    conda:
        "../envs/report.yaml"
    params:
        settings=report_config(),
    script:
        "../scripts/plot_report_figures.py"


rule plot_tfds_figures:
    input:
        zeroshot="results/tables/zeroshot.csv",
    output:
        tfds_acc1_adjusted_png=report(
            "results/figures/tfds_acc1_adjusted.png",
            caption="../report/tfds_acc1_adjusted.rst",
            category="Our zero-shot datasets",
        ),
        tfds_acc1_adjusted_svg="results/figures/tfds_acc1_adjusted.svg",
        tfds_task_groups_png=report(
            "results/figures/tfds_task_groups.png",
            caption="../report/task_groups.rst",
            category="Our zero-shot datasets",
        ),
        tfds_task_groups_svg="results/figures/tfds_task_groups.svg",
        class_names_png=report(
            "results/figures/class_names.png",
            caption="../report/class_names.rst",
            category="Our zero-shot datasets",
        ),
        class_names_svg="results/figures/class_names.svg",
    log:
        "logs/plot_tfds_figures/figures.log",
    localrule: True
    conda:
        "../envs/report.yaml"
    params:
        settings=report_config(),
    script:
        "../scripts/plot_report_figures.py"


rule plot_published_comparison:
    input:
        zeroshot="results/tables/zeroshot.csv",
    output:
        published_comparison_png=report(
            "results/figures/published_comparison.png",
            caption="../report/published_comparison.rst",
            category="Reproduced vs published",
        ),
        published_comparison_svg="results/figures/published_comparison.svg",
    log:
        "logs/plot_published_comparison/figures.log",
    localrule: True
    conda:
        "../envs/report.yaml"
    params:
        settings=report_config(),
    script:
        "../scripts/plot_report_figures.py"


rule build_report:
    input:
        zeroshot="results/tables/zeroshot.csv",
        tables=report_table_files(),
        figures=report_figure_files(),
        relevance=report_relevance_files(),
        leaderboards=report_leaderboards(),
        checkpoints=report_checkpoint_files(),
    output:
        html=report(
            "results/report.html",
            caption="../report/report.rst",
            category="Report",
        ),
    log:
        "logs/build_report/report.log",
    localrule: True
    conda:
        "../envs/report.yaml"
    params:
        config=study_config(),
        benchmarks="benchmarks",
    script:
        "../scripts/build_report.py"
