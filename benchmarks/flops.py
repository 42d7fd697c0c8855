"""Training FLOPs per token: each architecture's closed form (archbench.models.flops, what grid_results.csv
and the scaling fits use) against torch's FlopCounterMode on the real model, forward + backward. Prints
ONE JSON object.

    python benchmarks/flops.py [--hf rwkv,mamba,lfm2]

Rows: the registered architectures at two sizes x two lengths (RetNet: one parallel chunk and chunkwise;
Mamba-2: a padded and a whole scan chunk) and at the default run's size. Target: every ratio within 10%
(tests/test_models_flops.py holds the same rows to 5%). ``--hf``: generic transformers entries (hf-<type>, with
config/presets/zoo.yaml's model.hf settings), reported without a target: their formula is 6N plus the attention layers' scores, and a recurrent scan's
own products are not in it.
"""

from __future__ import annotations

import argparse

import _common
import yaml

from archbench.models.flop_count import counted_train_flops_per_token
from archbench.models.flops import train_flops_per_token
from archbench.models.registry import ARCHS

SIZES = [
    ("small", dict(vocab_size=128, embed_dim=32, ffn_dim=64, heads=2, layers=2), (64, 256)),
    ("medium", dict(vocab_size=256, embed_dim=64, ffn_dim=160, heads=4, layers=3), (64, 256)),
    ("default run", dict(vocab_size=4096, embed_dim=128, ffn_dim=256, heads=4, layers=2), (128,)),
]


def row(arch: str, hp: dict, T: int) -> dict:
    kw = {**hp, "max_seq_len": T}
    formula = train_flops_per_token(arch, kw, T)
    counted = counted_train_flops_per_token(arch, kw, T)
    if formula is None:  # an entry without a formula (hf types with SSD scans): blank in the report
        return {"formula": None, "counted": round(counted), "ratio": None}
    return {"formula": round(formula), "counted": round(counted), "ratio": round(formula / counted, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hf", default="", help="comma-separated transformers model types to add, untargeted")
    args = ap.parse_args()
    result = {"benchmark": "flops", "machine": _common.machine(torch_info=True), "rows": {}}
    worst = 0.0
    for arch in ARCHS:  # every registered architecture (generic hf- entries only with --hf)
        for name, hp, lengths in SIZES:
            for T in lengths:
                r = row(arch, hp, T)
                result["rows"][f"{arch} | {name} d={hp['embed_dim']} L={hp['layers']} | T={T}"] = r
                if r["ratio"] is not None:  # an entry without a formula has no ratio
                    worst = max(worst, abs(r["ratio"] - 1))
    zoo = yaml.safe_load((_common.REPO / "config/presets/zoo.yaml").read_text())["model"]["hf"]
    for t in filter(None, args.hf.split(",")):
        name, hp, (T,) = SIZES[-1]  # with the zoo preset's settings for the type (hybrids: one attention layer)
        result["rows"][f"hf-{t} (no target) | {name} | T={T}"] = row(f"hf-{t}", {**hp, "hf": zoo}, T)
    result["targets"] = {"max_abs_ratio_minus_1": _common.check(worst, "<=", 0.10)}
    _common.emit(result)


if __name__ == "__main__":
    main()
