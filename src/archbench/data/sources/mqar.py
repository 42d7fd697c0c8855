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
