"""The published claims archbench checks (issue 30): source, claim, published setting and number, and the
preset that measures each. Torch- and matplotlib-free: the Snakefile parse reads the names (one figure
per claim, rules/report.smk). The rules that decide each verdict are the presets' (``reproduce.rule``),
applied by :mod:`archbench.report.questions.reproduction`."""

from __future__ import annotations

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not measured")

CLAIMS = {
    "zoology_fig2": {
        "source": "Zoology (Arora et al. 2023, arXiv 2312.04927), Figure 2",
        "claim": "softmax attention solves MQAR (~100%) at every setting and width; fixed-state models fall "
        "as pairs grow at a fixed width and rise with width",
        "published_setting": "MQAR, vocabulary 8192, (seq_len, pairs) in {(64,4),(128,8),(256,16),(512,64)}, "
        "width 64-512, 2 layers, 4 learning rates 1e-4..1e-2 (best shown), one setting per run",
        "published": "attention ~100% everywhere; gated convolutions / SSMs need width growing with pairs",
        "preset": "config/presets/reproduce-zoology.yaml",
    },
    "mamba2_fig8": {
        "source": "Mamba-2 (Dao & Gu 2024, arXiv 2405.21060), Section 9.1, Figure 8",
        "claim": "Mamba-2's MQAR accuracy rises with its state size N in {16, 64, 256} at fixed width",
        "published_setting": "MQAR (Zoology's harder version), seq_len 256-1024, widths 32-256, 2 layers",
        "published": "accuracy increases monotonically with N at every width",
        "preset": "config/presets/reproduce-mamba2.yaml",
    },
    "length_control": {
        "source": "Press et al. 2022 (ALiBi, arXiv 2108.12409), Figure 1",
        "claim": "a Transformer with rotary positions trained at a short length degrades beyond it "
        "(loss rises with k): the positive control of the length question",
        "published_setting": "WikiText-103, 247M parameters, trained at 512/1024 tokens, read at up to 16k",
        "published": "rotary perplexity rises steeply beyond the training length",
        "preset": "config/presets/reproduce-length.yaml",
    },
    "retnet_cost": {
        "source": "RetNet (Sun et al. 2023, arXiv 2307.08621), Figure 6 (shape)",
        "claim": "RetNet's per-token decode time and state memory are flat in context; a Transformer's KV "
        "cache grows linearly",
        "published_setting": "6.7B models, A100, batch 1, contexts 2k-8k",
        "published": "RetNet flat latency and memory; Transformer linear KV memory and growing latency",
        "preset": "config/presets/reproduce-retnet-cost.yaml",
    },
    "scaling_prediction": {
        "source": "OLMo scaling ladders (Bhagia et al. 2024, arXiv 2412.04403)",
        "claim": "a fit on the smaller sizes predicts the largest size's loss within its interval",
        "published_setting": "ladders of 190M-1.3B models predicting 7B/13B",
        "published": "held-out loss predicted within a few percent",
        "preset": "config/presets/scaling.yaml + config/presets/reproduce-scaling.yaml",
    },
}

# The thresholds each claim's rule needs (the schema requires them in the preset, by claim).
RULE_KEYS = {
    "zoology_fig2": ("attention_min", "attention_fail", "min_effect"),
    "mamba2_fig8": ("min_effect", "tolerance", "ceiling"),
    "length_control": ("control_arch", "multiplier", "min_effect"),
    "retnet_cost": ("flat_max", "fail_above", "linear_tolerance"),
    "scaling_prediction": (),
}
