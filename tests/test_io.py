"""Atomic writers on a shared filesystem: permissions follow the umask; a full disk names the path,
leaves nothing complete-looking, and the same write succeeds once space is freed."""

import errno
import os
import stat
import subprocess
import uuid

import numpy as np
import pandas as pd
import pytest

from archbench.io import atomic_dir, atomic_file, current_umask, write_json


@pytest.fixture(params=[0o022, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_dirs_follow_the_umask(tmp_path, umask):
    assert current_umask() == umask
    write_json({"a": 1}, tmp_path / "m.json")
    with atomic_file(tmp_path / "t.csv") as tmp:
        pd.DataFrame({"x": [1]}).to_csv(tmp, index=False)
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "config.json").write_text("{}")
    expected_file, expected_dir = 0o666 & ~umask, 0o777 & ~umask
    assert _mode(tmp_path / "m.json") == _mode(tmp_path / "t.csv") == expected_file  # 0644 / 0664
    assert _mode(tmp_path / "model") == expected_dir  # 0755 / 0775
    assert _mode(tmp_path / "model" / "config.json") == expected_file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "model", "t.csv"]  # no temporaries


def _writers(root):
    """The project's writers of each kind: token file, model directory, report table, JSON record."""

    def tokens():
        with atomic_file(root / "tokens" / "train.bin") as tmp, open(tmp, "wb") as fh:
            np.arange(200_000, dtype=np.uint16).tofile(fh)  # 400 kB, as tokenize writes its shards

    def model():
        import torch
        from safetensors.torch import save_file

        with atomic_dir(root / "model") as tmp:  # what save_pretrained writes
            save_file({"w": torch.zeros(100_000)}, str(tmp / "model.safetensors"))

    def report():
        from archbench.report.collect import write_csv

        write_csv(pd.DataFrame({"text": ["x" * 1000] * 400}), str(root / "report" / "grid_results.csv"))

    def record():
        write_json({"text": "x" * 400_000}, root / "metrics.json")

    return {
        "tokens": (tokens, "tokens/train.bin"),
        "model": (model, "model"),
        "report": (report, "report/grid_results.csv"),
        "record": (record, "metrics.json"),
    }


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MB tmpfs (needs root and mount rights; otherwise the test is skipped and the injected
    ENOSPC test below covers the same code path)."""
    mnt = tmp_path / f"full-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here")
    yield mnt
    subprocess.run(["umount", "--lazy", str(mnt)], check=True)


@pytest.mark.parametrize("kind", ["tokens", "model", "report", "record"])
def test_full_disk_names_the_path_leaves_nothing_and_rerun_succeeds(small_fs, kind):
    ballast = small_fs / "ballast"
    ballast.write_bytes(b"\0" * 900_000)  # leaves ~100 kB: too little for any ~400 kB writer above
    write, rel = _writers(small_fs)[kind]
    with pytest.raises(OSError) as err:
        write()
    assert err.value.errno == errno.ENOSPC and str(small_fs / rel) in str(err.value)
    leftovers = [p for p in small_fs.rglob("*") if p.is_file() and p != ballast]
    assert leftovers == []  # neither the output nor its temporary
    ballast.unlink()  # free the space, run the same writer again
    write()
    assert (small_fs / rel).exists()


def test_injected_enospc_names_the_path(tmp_path):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    write, rel = _writers(tmp_path)["tokens"]
    with pytest.raises(OSError, match=f"No space left on device while writing {tmp_path / rel}"):
        with atomic_file(tmp_path / rel) as tmp:
            tmp.write_bytes(b"partial")
            full()
    assert list((tmp_path / "tokens").iterdir()) == []
    write()
    assert (tmp_path / rel).stat().st_size == 400_000


def test_checkpoint_on_a_full_disk_keeps_the_previous_one(small_fs):
    """The training checkpoint writer (Lightning's own truncates last.ckpt in place and leaves it
    corrupt on a full disk): the error names the path, the previous last.ckpt stays loadable."""
    import torch

    from archbench.training.resume import AtomicCheckpointIO

    io, last = AtomicCheckpointIO(), small_fs / "last.ckpt"
    io.save_checkpoint({"step": 1}, str(last))
    ballast = small_fs / "ballast"
    ballast.write_bytes(b"\0" * 900_000)
    with pytest.raises(OSError) as err:
        io.save_checkpoint({"step": 2, "w": torch.zeros(100_000)}, str(last))
    assert err.value.errno == errno.ENOSPC and str(last) in str(err.value)
    assert [p.name for p in small_fs.iterdir()] == ["last.ckpt", "ballast"] or sorted(
        p.name for p in small_fs.iterdir()
    ) == ["ballast", "last.ckpt"]
    assert torch.load(last, weights_only=True)["step"] == 1
    ballast.unlink()
    io.save_checkpoint({"step": 2, "w": torch.zeros(100_000)}, str(last))
    assert torch.load(last, weights_only=True)["step"] == 2


def test_model_weights_follow_the_umask(tmp_path, umask):
    """safetensors' save_file (what save_pretrained writes the weights with) creates its file 0600."""
    import torch
    from safetensors.torch import save_file

    with atomic_dir(tmp_path / "model") as tmp:
        save_file({"w": torch.zeros(4)}, str(tmp / "model.safetensors"))
        (tmp / "sub").mkdir(mode=0o700)
        save_file({"w": torch.zeros(4)}, str(tmp / "sub" / "x.safetensors"))
    assert _mode(tmp_path / "model" / "model.safetensors") == _mode(tmp_path / "model/sub/x.safetensors")
    assert _mode(tmp_path / "model" / "model.safetensors") == 0o666 & ~umask
    assert _mode(tmp_path / "model" / "sub") == 0o777 & ~umask


def test_every_replace_is_fsynced_and_the_folder_swap_has_no_window(tmp_path, monkeypatch):
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "old.txt").write_text("old")
    synced, replaced = [], []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src, dst):
        replaced.append((os.path.basename(src), os.path.basename(dst), (tmp_path / "model").exists()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "new.txt").write_text("new")
    # the old folder is renamed aside while the model folder exists, then the new one renamed in
    (src1, aside, existed1), (src2, dst2, existed2) = replaced
    assert (src1, existed1) == ("model", True) and aside.startswith(".model.") and aside.endswith(".old")
    assert src2.startswith(".model.") and src2.endswith(".tmp") and (dst2, existed2) == ("model", False)
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # the old one is removed
    assert synced[0].endswith("/new.txt")  # the data, before any rename
    assert synced[-1] == str(tmp_path)  # the folder holding the renamed name, after the rename

    synced.clear()
    write_json({"a": 1}, tmp_path / "m.json")
    assert synced[0].endswith(".tmp") and synced[-1] == str(tmp_path)


def test_stale_temporaries_of_a_killed_write_are_removed_when_it_runs_again(tmp_path):
    stale_file = tmp_path / ".metrics.json.ab12cd_9.tmp"
    stale_dir = tmp_path / ".model.zz99aa00.tmp"
    other = tmp_path / ".metrics.json.extra.ab12cd_9.tmp"  # another output's temporary: not ours
    for path in (stale_file, other):
        path.write_text("partial")
    stale_dir.mkdir()
    (stale_dir / "model.safetensors").write_bytes(b"\0" * 10)
    write_json({"a": 1}, tmp_path / "metrics.json")
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "config.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "metrics.json", "model"]
