# Report: every run's metrics -> tables (grid_results, seed_summary, comparison) -> plots -> summary.md.
# Tables and figures are report() outputs, so `snakemake --report report.html` shows them with captions
# (report/*.rst) under the categories Summary, Quality, Speed, Memory, Carbon.
REPORT = f"{R}/report"
PLOTS = f"{REPORT}/plots"
EVAL_RUN = f"{R}/eval/{{arch}}/{{point}}/seed~{{seed}}"
RUNS = run_records(
    metrics=f"{R}/runs/{{arch}}/{{point}}/seed~{{seed}}/metrics.json",
    harness=f"{EVAL_RUN}/harness.json",
    latency=f"{EVAL_RUN}/latency.json",
)
AXES = list(grid_axes(config))
TABLE_PLOTS = ["loss_vs_params", "diff_heatmap", "throughput", "emissions"]


report: "../report/workflow.rst"


rule collect:
    input:
        metrics=reported(f"{R}/runs/{{arch}}/{{point}}/seed~{{seed}}/metrics.json"),
        harness=reported(f"{EVAL_RUN}/harness.json"),
        latency=reported(f"{EVAL_RUN}/latency.json"),
    output:
        grid=report(
            f"{REPORT}/grid_results.csv",
            caption="../report/grid_results.rst",
            category="Quality",
            subcategory="Tables",
        ),
        comparison=report(
            f"{REPORT}/comparison.csv", caption="../report/comparison.rst", category="Quality", subcategory="Tables"
        ),
        seeds=report(
            f"{REPORT}/seed_summary.csv",
            caption="../report/seed_summary.rst",
            category="Quality",
            subcategory="Tables",
        ),
    log:
        f"{R}/logs/report/collect.log",
    conda:
        ENV
    params:
        # every expected run, present or not: the tables give a missing run a row with status=missing
        runs=RUNS,
        baseline=config["report"]["baseline"],
    script:
        "../workflow_scripts/report.py"


rule plots:
    input:
        **rules.collect.output,
        # Each run's logs/csv/metrics.csv is not a declared train output: metrics.json stands for it.
        metrics=rules.collect.input.metrics,
    output:
        loss_vs_params=report(
            f"{PLOTS}/loss_vs_params.png",
            caption="../report/loss_vs_params.rst",
            category="Quality",
            subcategory="Figures",
        ),
        diff_heatmap=report(
            f"{PLOTS}/diff_heatmap.png",
            caption="../report/diff_heatmap.rst",
            category="Quality",
            subcategory="Figures",
        ),
        throughput=report(f"{PLOTS}/throughput.png", caption="../report/throughput.rst", category="Speed"),
        emissions=report(f"{PLOTS}/emissions.png", caption="../report/emissions.rst", category="Carbon"),
        svg=[f"{PLOTS}/{name}.svg" for name in TABLE_PLOTS],
        curves=report(
            directory(f"{PLOTS}/curves"),
            patterns=["{point}.png"],
            caption="../report/curves.rst",
            category="Quality",
            subcategory="Loss curves",
            labels={"grid point": "{point}"},
        ),
    log:
        f"{R}/logs/report/plots.log",
    conda:
        ENV
    params:
        axes=AXES,
        baseline=config["report"]["baseline"],
    script:
        "../workflow_scripts/plots.py"


rule plot_latency:
    input:
        latency=rules.collect.input.latency,
        seeds=rules.collect.output.seeds,  # each architecture is drawn at its best grid point
    output:
        decode=report(f"{PLOTS}/decode_latency.png", caption="../report/decode_latency.rst", category="Speed"),
        memory=report(f"{PLOTS}/state_memory.png", caption="../report/state_memory.rst", category="Memory"),
        svg=[f"{PLOTS}/decode_latency.svg", f"{PLOTS}/state_memory.svg"],
    log:
        f"{R}/logs/report/plot_latency.log",
    conda:
        ENV
    params:
        runs=RUNS,
    script:
        "../workflow_scripts/report_latency.py"


rule summary:
    input:
        **rules.collect.output,
        curves=rules.plots.output.curves,
        plots=[f"{PLOTS}/{name}.png" for name in TABLE_PLOTS],
        latency=[rules.plot_latency.output.decode, rules.plot_latency.output.memory],
        questions=f"{REPORT}/questions.json",
    output:
        md=report(f"{REPORT}/summary.md", caption="../report/summary.rst", category="Summary"),
    log:
        f"{R}/logs/report/summary.log",
    conda:
        ENV
    params:
        axes=AXES,
        baseline=config["report"]["baseline"],
    script:
        "../workflow_scripts/summary.py"


# ---- issue 15: one figure + table per architecture question, and questions.json for summary.md.
# Which per-run evaluation files exist follows the config: length.enabled, latency.batch_sweep,
# data.source mqar (recall).
QUESTION_INPUTS = {
    "length": f"{EVAL_RUN}/length.json" if config["length"]["enabled"] else None,
    "throughput": f"{EVAL_RUN}/throughput.json" if config["latency"]["batch_sweep"] else None,
    "recall": f"{EVAL_RUN}/recall.json" if config["data"]["source"] == "mqar" else None,
}


rule questions:
    input:
        **{name: reported(pattern) if pattern else [] for name, pattern in QUESTION_INPUTS.items()},
        metrics=rules.collect.input.metrics,
    output:
        length=report(
            f"{PLOTS}/length_extrapolation.png",
            caption="../report/length_extrapolation.rst",
            category="Questions",
            subcategory="Length extrapolation",
        ),
        length_table=report(
            f"{REPORT}/length_extrapolation.csv",
            caption="../report/length_extrapolation.rst",
            category="Questions",
            subcategory="Length extrapolation",
        ),
        scaling=report(
            f"{PLOTS}/scaling.png", caption="../report/scaling.rst", category="Questions", subcategory="Scaling"
        ),
        scaling_table=report(
            f"{REPORT}/scaling_fits.csv", caption="../report/scaling.rst", category="Questions", subcategory="Scaling"
        ),
        recall=report(
            f"{PLOTS}/recall.png",
            caption="../report/recall.rst",
            category="Questions",
            subcategory="Associative recall",
        ),
        recall_table=report(
            f"{REPORT}/recall.csv",
            caption="../report/recall.rst",
            category="Questions",
            subcategory="Associative recall",
        ),
        throughput=report(
            f"{PLOTS}/throughput_vs_batch.png",
            caption="../report/throughput_vs_batch.rst",
            category="Questions",
            subcategory="Throughput vs batch",
        ),
        throughput_table=report(
            f"{REPORT}/throughput_vs_batch.csv",
            caption="../report/throughput_vs_batch.rst",
            category="Questions",
            subcategory="Throughput vs batch",
        ),
        json=f"{REPORT}/questions.json",
    log:
        f"{R}/logs/report/questions.log",
    conda:
        ENV
    params:
        report=config["report"],
    script:
        "../workflow_scripts/questions.py"
