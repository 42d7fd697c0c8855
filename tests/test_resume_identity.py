"""Resume only the same run: a changed setting, tokenizer or token data starts from step 0 (the old
state moved aside, the change named); the last two checkpoints are kept and a corrupt newest one falls
back to the previous; every checkpoint load is weights-only, so a pickled object is refused."""

import json
import logging
import shutil

import pytest
import torch

from archbench.training.resume import AtomicCheckpointIO, claim_scratch, resume_checkpoint, run_identity
from test_training import Crash, run


class Payload:
    """Any importable class: unpickling it is what a weights-only load must refuse."""


def test_pickled_object_checkpoint_is_refused_and_the_previous_one_used(tmp_path, caplog):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 4}, str(tmp_path / "last.ckpt"))
    io.save_checkpoint({"global_step": 8, "evil": Payload()}, str(tmp_path / "last.ckpt"))
    assert torch.load(tmp_path / "last.prev.ckpt", weights_only=True)["global_step"] == 4  # the one before
    with pytest.raises(Exception, match="Weights only load failed"):
        io.load_checkpoint(str(tmp_path / "last.ckpt"), weights_only=False)  # the caller cannot opt out
    with caplog.at_level(logging.WARNING):
        assert resume_checkpoint(str(tmp_path)) == str(tmp_path / "last.prev.ckpt")
    last = tmp_path / "last.ckpt"
    assert f"checkpoint {last} cannot be resumed (Weights only load failed" in caplog.text
    assert f"renamed to {last}.rejected" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt.rejected", "last.prev.ckpt"]


def test_truncated_last_checkpoint_falls_back_with_a_warning_naming_it(tmp_path, caplog):
    io = AtomicCheckpointIO()
    for step in (4, 8):
        io.save_checkpoint({"global_step": step, "w": torch.zeros(1000)}, str(tmp_path / "last.ckpt"))
    last = tmp_path / "last.ckpt"
    last.write_bytes(last.read_bytes()[:2000])  # a node crash mid-write
    with caplog.at_level(logging.WARNING):
        assert resume_checkpoint(str(tmp_path)) == str(tmp_path / "last.prev.ckpt")
    assert f"checkpoint {last} cannot be resumed (PytorchStreamReader failed reading zip archive" in caplog.text
    assert not last.exists()
    # both unreadable: nothing to resume, and neither is offered again
    prev = tmp_path / "last.prev.ckpt"
    prev.write_bytes(b"")
    assert resume_checkpoint(str(tmp_path)) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt.rejected", "last.prev.ckpt.rejected"]


def test_checkpoint_of_another_run_is_skipped(tmp_path, caplog):
    AtomicCheckpointIO().save_checkpoint({"archbench_resume": {"identity": {"a": 1}}}, str(tmp_path / "last.ckpt"))
    assert resume_checkpoint(str(tmp_path), {"a": 1}) == str(tmp_path / "last.ckpt")
    with caplog.at_level(logging.WARNING):
        assert resume_checkpoint(str(tmp_path), {"a": 2}) is None
    assert "belongs to another run" in caplog.text and (tmp_path / "last.ckpt").exists()


def test_claim_scratch_names_the_changed_keys_and_moves_the_old_state_aside(tmp_path, tiny_tokens, caplog):
    scratch = tmp_path / "seed~0"
    settings = {"weight_decay": 0.01, "devices": 1, "max_steps": 10}
    ident = run_identity(settings, tiny_tokens["tokenizer"], tiny_tokens["tokens"])
    assert claim_scratch(str(scratch), ident, settings) is None
    (scratch / "last.ckpt").write_bytes(b"state")
    # a different device count is the same run (exact resume at any world size)
    more = {**settings, "devices": 4}
    assert (
        claim_scratch(str(scratch), run_identity(more, tiny_tokens["tokenizer"], tiny_tokens["tokens"]), more) is None
    )
    assert (scratch / "last.ckpt").exists()

    changed = {**settings, "weight_decay": 0.1}
    with caplog.at_level(logging.WARNING):
        aside = claim_scratch(
            str(scratch), run_identity(changed, tiny_tokens["tokenizer"], tiny_tokens["tokens"]), changed
        )
    assert aside == f"{scratch}.previous" and (tmp_path / "seed~0.previous" / "last.ckpt").exists()
    assert caplog.text.count("not resuming") == 1
    assert (
        f"not resuming {scratch}: weight_decay 0.01 -> 0.1 changed since its checkpoints were written; "
        f"training starts from step 0 (the old state is in {scratch}.previous)"
    ) in caplog.text
    assert sorted(p.name for p in scratch.iterdir()) == ["run.json"]
    assert json.loads((scratch / "run.json").read_text())["settings"]["weight_decay"] == 0.1


def test_retrained_tokenizer_is_named(tmp_path, tiny_tokens, caplog):
    tok = tmp_path / "tokenizer"
    shutil.copytree(tiny_tokens["tokenizer"], tok)
    scratch, settings = tmp_path / "scratch", {"weight_decay": 0.01}
    claim_scratch(str(scratch), run_identity(settings, str(tok), tiny_tokens["tokens"]), settings)
    (scratch / "last.ckpt").write_bytes(b"state")
    data = json.loads((tok / "tokenizer.json").read_text())
    data["model"]["vocab"]["zzz"] = len(data["model"]["vocab"])  # same size class, different ids
    (tok / "tokenizer.json").write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        claim_scratch(str(scratch), run_identity(settings, str(tok), tiny_tokens["tokens"]), settings)
    assert "tokenizer (tokenizer.json sha256) changed" in caplog.text


def test_changed_weight_decay_never_continues_the_killed_runs_state(tmp_path, tiny_tokens):
    with pytest.raises(RuntimeError, match="simulated kill"):
        run(tmp_path, tiny_tokens, "k", callbacks=[Crash(step=9)])
    scratch = tmp_path / "k/scratch"
    assert torch.load(scratch / "last.ckpt", weights_only=True)["global_step"] == 8
    assert torch.load(scratch / "last.prev.ckpt", weights_only=True)["global_step"] == 4  # the last two
    changed = run(tmp_path, tiny_tokens, "k", weight_decay=0.5)
    assert changed["resumed_from_step"] == 0 and changed["global_step"] == 12
    assert torch.load(tmp_path / "k/scratch.previous/last.ckpt", weights_only=True)["global_step"] == 8


def test_truncated_last_ckpt_resumes_from_the_previous_one(tmp_path, tiny_tokens):
    with pytest.raises(RuntimeError, match="simulated kill"):
        run(tmp_path, tiny_tokens, "t", callbacks=[Crash(step=9)])
    last = tmp_path / "t/scratch/last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    resumed = run(tmp_path, tiny_tokens, "t")
    assert resumed["resumed_from_step"] == 4 and resumed["global_step"] == 12
