"""rule push: one finished run's model/ (weights, tokenizer, model card) -> its Hub repository."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.hub import push_run, run_repo_id  # noqa: E402
from archbench.io import write_json  # noqa: E402

run_dir = os.path.dirname(snakemake.input.metrics)
push = snakemake.params.push
repo_id = run_repo_id(push, run_dir)
url = push_run(run_dir, repo_id, private=push["private"])
write_json({"run": run_dir, "repo_id": repo_id, "commit_url": url}, snakemake.output[0])
