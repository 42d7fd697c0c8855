"""rule generate: one run's model/ -> text samples through generate() (samples.txt, samples.csv)."""
import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.evaluation.generate import run_generate  # noqa: E402

cfg = snakemake.params.generate
run_generate(
    model_dir=os.path.dirname(snakemake.input.model),
    out_txt=snakemake.output.txt,
    out_csv=snakemake.output.csv,
    prompts=cfg["prompts"],
    max_new_tokens=cfg["max_new_tokens"],
    do_sample=cfg["do_sample"],
    temperature=cfg["temperature"],
    top_p=cfg["top_p"],
    top_k=cfg["top_k"],
    seed=cfg["seed"],
    device=snakemake.params.device,
    threads=snakemake.threads,
)
