# Report: every run's metrics -> tables (grid_results, seed_summary, comparison) -> plots -> summary.md.
# Tables and figures are report() outputs, so `snakemake --report report.html` shows them with captions
# (report/*.rst) under the categories Summary, Quality, Speed, Memory, Carbon.
from archbench.report.claims import CLAIMS  # torch-free: the published claims, one figure each

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


# One figure + table per architecture question, and questions.json for summary.md. Each question reads
# the per-run files of the evaluation that answers it (archbench.evaluation.registry: `question`); an
# evaluation that does not apply to this config (length.enabled, latency.batch_sweep, MQAR data for
# recall, retrieval.enabled) passes no files.
QUESTION_INPUTS = {
    e.name: ([L.eval_file(run_name(), file) for file in e.files], e.timed) if e in EVALUATIONS else None
    for e in EVALUATION_ENTRIES.values()
    if e.question
}

# A plugin evaluation's question module, for write_questions(..., extra=): the built-in questions
# (archbench.report.questions) are known to the report by name.
PLUGIN_QUESTIONS = {
    e.name: e.question for e in EVALUATIONS if e.question and not e.question.startswith("archbench.report.questions")
}


REPRODUCTION_CLAIMS = list(CLAIMS)  # archbench.report.claims


rule questions:
    input:
        **{
            name: [f for p in patterns[0] for f in reported(p, patterns[1])] if patterns else []
            for name, patterns in QUESTION_INPUTS.items()
        },
        latency=rules.collect.input.latency,  # the reproduction question's RetNet-cost claim
        metrics=rules.collect.input.metrics,
    output:
        **{
            key: path
            for name in PLUGIN_QUESTIONS
            for key, path in ((name, f"{PLOTS}/{name}.png"), (f"{name}_table", f"{REPORT}/{name}.csv"))
        },
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
        retrieval=report(
            f"{PLOTS}/retrieval.png",
            caption="../report/retrieval.rst",
            category="Questions",
            subcategory="Long-context retrieval",
        ),
        retrieval_table=report(
            f"{REPORT}/retrieval.csv",
            caption="../report/retrieval.rst",
            category="Questions",
            subcategory="Long-context retrieval",
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
        compute=report(
            f"{PLOTS}/compute.png",
            caption="../report/compute.rst",
            category="Questions",
            subcategory="Compute",
        ),
        compute_table=report(
            f"{REPORT}/compute.csv",
            caption="../report/compute.rst",
            category="Questions",
            subcategory="Compute",
        ),
        hybrid=report(
            f"{PLOTS}/hybrid.png", caption="../report/hybrid.rst", category="Questions", subcategory="Hybrid ratio"
        ),
        hybrid_table=report(
            f"{REPORT}/hybrid.csv", caption="../report/hybrid.rst", category="Questions", subcategory="Hybrid ratio"
        ),
        reproduction=report(
            f"{PLOTS}/reproduction.png",
            caption="../report/reproduction.rst",
            category="Questions",
            subcategory="Reproduction",
        ),
        reproduction_table=report(
            f"{REPORT}/reproduction.csv",
            caption="../report/reproduction.rst",
            category="Questions",
            subcategory="Reproduction",
        ),
        # one figure per published claim (archbench.report.questions.reproduction.CLAIMS)
        reproduction_claims=[f"{PLOTS}/reproduction_{claim}.png" for claim in REPRODUCTION_CLAIMS],
        json=f"{REPORT}/questions.json",
        # a plugin evaluation's question: its figure and table beside the built-in ones
    log:
        L.log("report", "questions"),
    conda:
        ENV
    params:
        report=config["report"],
        evaluations=[*QUESTION_INPUTS, "latency"],
        reproduce=config.get("reproduce", {}),
        # a plugin evaluation's question module, for write_questions(..., extra=): the built-in
        # questions (archbench.report.questions) are known to the report by name
        extra=PLUGIN_QUESTIONS,
    script:
        "../workflow_scripts/questions.py"
