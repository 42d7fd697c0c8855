"""rule questions: metrics + the questions' evaluation files -> one figure + table per question, questions.json."""

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.report.questions import write_questions  # noqa: E402

write_questions(
    snakemake.input.metrics,
    {name: snakemake.input[name] for name in snakemake.params.evaluations},
    dict(snakemake.output.items()),
    report=snakemake.params.report,
    reproduce=snakemake.params.reproduce,
)
