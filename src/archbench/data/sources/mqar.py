"""``data.source: mqar``: synthetic multi-query associative recall documents (the generator is
:mod:`archbench.data.mqar`), one generated shard, a fixed word-level tokenizer, and the training-target
hook that keeps the loss on the queries' answers (``data.mqar.loss: answers``, Zoology's objective)."""

from __future__ import annotations

from archbench.data import mqar
from archbench.data.readers import BATCH_DOCS
from archbench.data.sources.base import DataSource
from archbench.data.sources.default import single_shard
from archbench.errors import ConfigError


class MqarSource(DataSource):
    name = "mqar"
    description = "synthetic multi-query associative recall documents (data.mqar), word-level tokenizer"
    answer_positions = True
    # The schema of data.mqar (archbench.config composes the config schema from the sources' fragments).
    schema_fragment = {
        "type": "object",
        "default": {},
        "additionalProperties": False,
        "description": (
            "Multi-query associative recall (Zoology), used when data.source is mqar: each document is "
            "key-value pairs, then queries of those keys each followed by its value (the answer). The "
            "tokenizer is word-level (one token per key / value; tokenizer.vocab_size is not used) and "
            "rule recall scores the answer positions of fresh examples."
        ),
        "properties": {
            "pairs": {
                "type": "array",
                "items": {
                    "type": "integer",
                    "minimum": 1,
                },
                "minItems": 1,
                "uniqueItems": True,
                "default": [4, 8, 16],
                "description": ("Key-value pairs per document; training documents cycle through the list (a mixture)."),
            },
            "eval_pairs": {
                "type": "array",
                "items": {
                    "type": "integer",
                    "minimum": 1,
                },
                "uniqueItems": True,
                "default": [],
                "description": "Extra pair counts evaluated by rule recall but not trained on.",
            },
            "queries": {
                "type": ["integer", "null"],
                "minimum": 1,
                "default": None,
                "description": "Queries per document (null = every key once, in a random order).",
            },
            "vocab_size": {
                "type": "integer",
                "minimum": 4,
                "maximum": 65000,
                "default": 256,
                "description": (
                    "Key and value words together (half each; keys and values are disjoint). Zoology's "
                    "sweeps use 8192; 256 here keeps the output projection (6 x width x vocabulary FLOPs "
                    "per token) within the CPU budget of the MQAR preset."
                ),
            },
            "power_a": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 1,
                "default": 0.01,
                "description": (
                    "Query gaps drawn from Zoology's power law p(g) ~ a (g + 1)^(a - 1) over the query "
                    "slots (0.01, Zoology's value: most queries soon after the key-value section, a long "
                    "tail); 1 = uniform slots."
                ),
            },
            "random_fillers": {
                "type": "boolean",
                "default": True,
                "description": (
                    "Positions that are neither a pair nor a query hold random value words (Zoology: "
                    "random tokens) instead of the constant `_`. Keys are never drawn, so a key in the "
                    "query section is always a query."
                ),
            },
            "answers_in_input": {
                "type": "boolean",
                "default": True,
                "description": (
                    "Whether the answer follows its query key in the input (Zoology: no, the answer is "
                    "only a target). false is refused for now: training reads one token stream, so input "
                    "and targets cannot differ there (archbench.data.mqar.hide_answers does it for rule "
                    "recall)."
                ),
            },
            "seq_len": {
                "type": "integer",
                "minimum": 8,
                "default": 128,
                "description": "Tokens per document including its </s>; must equal the grid's seq_len.",
            },
            "documents": {
                "type": "integer",
                "minimum": 10,
                "default": 20000,
                "description": "Documents generated (split into train / validation / test like any corpus).",
            },
            "eval_examples": {
                "type": "integer",
                "minimum": 1,
                "default": 256,
                "description": "Fresh examples per pair count scored by rule recall.",
            },
            "loss": {
                "type": "string",
                "enum": ["answers", "all"],
                "default": "answers",
                "description": (
                    "Positions the training loss (and val/test loss) counts: answers = only the tokens "
                    "after a repeated key, i.e. the queries' answers (as in Zoology); all = every next "
                    "token, fillers and the unpredictable key-value section included (small models then "
                    "stay at chance)."
                ),
            },
            "seed": {
                "type": "integer",
                "minimum": 0,
                "maximum": 4294967295,
                "default": 0,
                "description": "Seed of the generator (documents and the disjoint evaluation stream).",
            },
        },
    }

    def check_config(self, data: dict, settings: list[dict]) -> None:
        cfg = data["mqar"]
        mqar.check_config(cfg)
        for s in settings:
            if s["seq_len"] != cfg["seq_len"]:
                raise ConfigError(
                    f"config keys 'grid.seq_len'/'data.mqar.seq_len': with data.source mqar the training "
                    f"seq_len must equal data.mqar.seq_len ({cfg['seq_len']}) so every window is one "
                    f"document; got {s['seq_len']}"
                )

    def plan(self, data: dict, results: str) -> dict[str, dict]:
        return single_shard("00000-mqar", self.name)

    def download_params(self, data: dict) -> dict:
        return {"mqar": data["mqar"]}

    def read(self, shard: dict, data: dict, limits):
        cfg = data["mqar"]
        vocab = mqar.words(cfg["vocab_size"])
        for start in range(0, cfg["documents"], BATCH_DOCS):
            stop = min(start + BATCH_DOCS, cfg["documents"])
            yield [mqar.to_text(mqar.document(cfg, cfg["seed"], i)[0], vocab) for i in range(start, stop)], 0

    def tokenizer_params(self, data: dict) -> dict:
        return {"mqar": data["mqar"]}

    def tokenizer(self, data: dict, out_dir: str) -> dict:
        return mqar.write_tokenizer(out_dir, data["mqar"])

    def training_settings(self, data: dict) -> dict:
        if data["mqar"].get("loss", "answers") != "answers":
            return {}
        return {"answer_keys": mqar.key_ids(data["mqar"]["vocab_size"])}  # loss on query answers only

    def training_targets(self, x, y, settings: dict):
        keys = settings.get("answer_keys")
        return y.masked_fill(~mqar.answer_targets(x, keys), -100) if keys else y
