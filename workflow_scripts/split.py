"""rule split: raw parquet -> train / validation / test parquet directories (Dask)."""
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.data.split import split_corpus  # noqa: E402

split_corpus(
    snakemake.input[0],
    {s: snakemake.output[s] for s in ("train", "validation", "test")},
    ratios=snakemake.params.ratios,
    shuffle=snakemake.params.shuffle,
    seed=snakemake.params.seed,
    stats_path=snakemake.output.stats,
)
