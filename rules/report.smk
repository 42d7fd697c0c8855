# Report: every run's metrics -> tables (grid_results, seed_summary, comparison) -> plots -> summary.md.
# Tables and figures are report() outputs, so `snakemake --report report.html` shows them with captions
# (report/*.rst; a question's caption is its entry's, archbench.report.questions) under the categories
# Summary, Quality, Speed, Memory, Carbon, Questions.
from archbench.report.questions import caption_file as question_caption
from archbench.report.questions import evaluations_read
from archbench.report.questions import ordered as question_entries
from archbench.report.questions import output_paths as question_paths

REPORT = L.report_dir()
PLOTS = L.plots_dir()
EVAL_RUN = L.eval_dir(run_name())  # a pattern over {arch}, {point}, {seed}: run_dirs() / reported() fill it
RUNS = run_records(
    timed=[e.name for e in COLLECTED if e.timed],  # every run of a shape reports the one timing of it
    metrics=L.metrics(run_name()),
    **{e.name: f"{EVAL_RUN}/{e.files[0]}" for e in COLLECTED},  # archbench.evaluation.registry: flatten
)
AXES = list(grid_axes(config))
TABLE_PLOTS = ["loss_vs_params", "diff_heatmap", "throughput", "emissions"]


report: "../report/workflow.rst"


rule collect:
    input:
        **{e.name: reported(f"{EVAL_RUN}/{e.files[0]}", timed=e.timed) for e in COLLECTED},
        metrics=reported(L.metrics(run_name())),
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
        L.log("report", "collect"),
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
        L.log("report", "plots"),
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
        L.log("report", "plot_latency"),
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
        # the same summary and the tables as HTML: the report shows HTML inline, .md / .csv only download
        html=report(f"{REPORT}/summary.html", caption="../report/summary_page.rst", category="Summary"),
        tables=report(f"{REPORT}/tables.html", caption="../report/tables.rst", category="Summary"),
    log:
        L.log("report", "summary"),
    conda:
        ENV
    params:
        axes=AXES,
        baseline=config["report"]["baseline"],
    script:
        "../workflow_scripts/summary.py"


# One figure + table per report question (archbench.report.questions: built-in and plugin entries alike),
# each with its caption, and questions.json for summary.md. A question names the evaluations whose per-run
# files it reads; an evaluation that does not apply to this config (length.enabled, latency.batch_sweep,
# MQAR data for recall, retrieval.enabled) passes no files.
QUESTION_ENTRIES = question_entries()
CAPTIONS = os.path.abspath(os.path.join(".snakemake", "archbench", "captions"))  # generated from the entries


rule questions:
    input:
        **{name: question_files(name) for name in evaluations_read()},
        metrics=rules.collect.input.metrics,
    output:
        **question_outputs(),
        json=f"{REPORT}/questions.json",
    log:
        L.log("report", "questions"),
    conda:
        ENV
    params:
        report=config["report"],
        evaluations=evaluations_read(),
        reproduce=config.get("reproduce", {}),
    script:
        "../workflow_scripts/questions.py"
