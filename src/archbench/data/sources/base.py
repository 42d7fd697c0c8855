"""The interface every data source implements (``archbench.data.sources`` registers them).

A source is one module with one :class:`DataSource` subclass. The pipeline asks it, in this order:

- :attr:`~DataSource.schema_fragment`: the schema of its own settings, ``data.<name>`` (types, ranges, defaults);
- :meth:`~DataSource.check_config` at parse time: its config rules, each a ConfigError naming the key;
- :meth:`~DataSource.plan`: its shards (JSON-able specs; names ``NNNNN-<stem>``, sorted = corpus order);
- :meth:`~DataSource.inputs` / :meth:`~DataSource.download_params`: what the ``download`` rule depends on;
- :meth:`~DataSource.read`: one shard as batches of documents (the ``download`` job);
- :meth:`~DataSource.tokenizer`: its tokenizer policy (None = train byte-level BPE on the train split);
- :meth:`~DataSource.training_settings` / :meth:`~DataSource.training_targets`: an optional hook on the
  training targets (settings it adds to every run, and what it does to a batch's targets).

Sources import neither torch nor the other pipeline stages: the Snakefile parse reads them.
"""

from __future__ import annotations

from collections.abc import Iterator

from archbench.data.readers import Limits


class DataSource:
    """Defaults: no config rules, no inputs tracked by Snakemake, BPE, no training hook."""

    name: str = ""
    description: str = ""
    # Its documents mark exact key-value answer positions, so the recall evaluation applies to its runs.
    answer_positions: bool = False
    # The JSON schema (the dialect of the base schema, src/archbench/schema.yaml) of its own settings, the object ``data.<name>``;
    # None: it has none. The config schema is composed from the base schema and these fragments.
    schema_fragment: dict | None = None

    def check_config(self, data: dict, settings: list[dict]) -> None:
        """Raise ConfigError (message starting ``config key 'data....'``) for a bad ``data`` section;
        ``settings``: the flat settings of every grid point (for rules that span sections)."""

    def plan(self, data: dict, results: str) -> dict[str, dict]:
        """{shard name: spec}; a spec holds at least name, source, path, format, compression, range."""
        raise NotImplementedError

    def inputs(self, shard: dict) -> list[str]:
        """Local files the shard is read from: editing one reruns its download job."""
        return []

    def download_params(self, data: dict) -> dict:
        """The ``data`` settings the download job reads (its Snakemake params: a change reruns it)."""
        return {k: data.get(k) for k in ("text_column", "max_document_bytes", "on_long_document")}

    def read(self, shard: dict, data: dict, limits: Limits) -> Iterator[tuple[list[str], int]]:
        """Batches ``(documents, number whose invalid UTF-8 was replaced)``; empty documents as "".
        ``limits`` (``data.max_document_bytes``): skip-and-count or fail on a longer document."""
        raise NotImplementedError

    def tokenizer_params(self, data: dict) -> dict | None:
        """The ``data`` settings :meth:`tokenizer` reads (params of ``train_tokenizer``); None = BPE."""
        return None

    def tokenizer(self, data: dict, out_dir: str) -> dict | None:
        """Write this source's own tokenizer to ``out_dir`` and return its stats; None = train BPE."""
        return None

    def training_settings(self, data: dict) -> dict:
        """Settings added to every run (they reach the training module as hyperparameters)."""
        return {}

    def training_targets(self, x, y, settings: dict):
        """The targets ``y`` [B, T] of inputs ``x`` with positions that must not count set to -100;
        called on every batch with the run's settings (act only on keys :meth:`training_settings` set)."""
        return y
