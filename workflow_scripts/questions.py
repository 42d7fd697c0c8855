"""rule questions: metrics + length / throughput / recall / retrieval / latency files -> one figure + table per question, questions.json."""

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.report.questions import write_questions  # noqa: E402

write_questions(
    snakemake.input.metrics,
    {name: snakemake.input[name] for name in snakemake.params.evaluations},
    dict(snakemake.output.items()),
    max_params=snakemake.params.report["crossover_max_params"],
    headline_multiplier=snakemake.params.report["headline_multiplier"],
    extra=snakemake.params.extra,
    reproduce=snakemake.params.reproduce,
)
