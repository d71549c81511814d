"""Checkpoints: round trip of every component with weights_only=True, RNG restore, rotation,
atomic writes, clear errors for corrupt or foreign files."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from ground.errors import UserError
from pretrain import checkpoint as ckpt
from pretrain.config import BertConfig
from pretrain.lamb import Lamb, lamb_param_groups
from pretrain.model import BertForPreTraining
from pretrain.schedule import poly_warmup_scheduler

CFG = BertConfig(vocab_size=300, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=32, max_position_embeddings=16)  # fmt: skip


class _Sampler:
    def __init__(self):
        self.position = {"epoch": 1, "shard": 2, "offset": 37}

    def state_dict(self):
        return dict(self.position)


def _trained(steps=2):
    torch.manual_seed(0)
    model = BertForPreTraining(CFG)
    opt = Lamb(lamb_param_groups(model), lr=1e-2)
    sched = poly_warmup_scheduler(opt, total_steps=10, warmup=0.2)
    for _ in range(steps):
        ids = torch.randint(1, 300, (2, 8))
        out = model(ids, torch.zeros_like(ids), torch.ones_like(ids), torch.tensor([[1, 2]] * 2),
                    torch.tensor([[5, 6]] * 2), torch.tensor([0, 1]))  # fmt: skip
        loss = out["mlm_loss_sum"] / out["mlm_count"] + out["nsp_loss_sum"] / out["nsp_count"]
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**20)
    return model, opt, sched, scaler


def test_round_trip_all_components(tmp_path):
    model, opt, sched, scaler = _trained()
    state = ckpt.make_state(step=2, phase=1, config=CFG.to_dict(), model=model, optimizer=opt,
                            scheduler=sched, scaler=scaler, sampler=_Sampler())  # fmt: skip
    path = ckpt.save_and_rotate(tmp_path, state, keep_last=3)
    assert path.name == "ckpt-00000002.pt"
    raw = torch.load(path, weights_only=True)  # the contract: no pickled objects
    assert raw["sampler"] == {"epoch": 1, "shard": 2, "offset": 37}
    loaded = ckpt.load_checkpoint(path)
    assert (loaded["step"], loaded["phase"]) == (2, 1)
    assert BertConfig.from_dict(loaded["config"]) == CFG
    fresh = BertForPreTraining(CFG)
    fresh.load_state_dict(loaded["model"])
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    opt2 = Lamb(lamb_param_groups(fresh), lr=1.0)
    opt2.load_state_dict(loaded["optimizer"])
    assert (
        opt2.param_groups[0]["step"] == 2
        and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    )
    sched2 = poly_warmup_scheduler(opt2, total_steps=10, warmup=0.2)
    sched2.load_state_dict(loaded["scheduler"])
    assert sched2.last_epoch == 2
    assert loaded["scaler"]["scale"] == 2.0**20


def test_rng_state_restores_every_generator(tmp_path):
    ckpt.save_checkpoint(tmp_path / "r.pt", {"format_version": 1, "step": 0, "phase": 1,
                                              "model": {}, "rng": ckpt.rng_state()})  # fmt: skip
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.random(), np.random.rand(), torch.rand(5)  # move them all on
    ckpt.set_rng_state(ckpt.load_checkpoint(tmp_path / "r.pt")["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert again[:2] == expected[:2] and torch.equal(again[2], expected[2])


def test_non_plain_values_are_refused(tmp_path):
    state = {"format_version": 1, "step": 0, "phase": 1, "model": {}, "bad": _Sampler()}
    with pytest.raises(TypeError, match="_Sampler"):
        ckpt.save_checkpoint(tmp_path / "x.pt", state)
    assert list(tmp_path.iterdir()) == []


def test_rotation_keeps_last_k(tmp_path):
    for step in (1, 2, 3, 4):
        ckpt.save_and_rotate(tmp_path, {"format_version": 1, "step": step, "phase": 1,
                                        "model": {}}, keep_last=2)  # fmt: skip
    (tmp_path / ".ckpt-00000009.pt.123.tmp").write_bytes(b"partial")  # a crashed write
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [3, 4]
    assert ckpt.latest_checkpoint(tmp_path).name == "ckpt-00000004.pt"
    assert ckpt.latest_checkpoint(tmp_path / "none") is None
    with pytest.raises(UserError, match="keep-last"):
        ckpt.save_and_rotate(tmp_path, {"step": 5}, keep_last=0)


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    good = {"format_version": 1, "step": 7, "phase": 1, "model": {"w": torch.ones(3)}}
    path = tmp_path / "ckpt-00000007.pt"
    ckpt.save_checkpoint(path, good)

    def crash(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(path, {**good, "step": 8})
    monkeypatch.undo()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [path.name, path.name + ".sha256"]  # no temp file left
    assert ckpt.load_checkpoint(path)["step"] == 7  # and its checksum still matches


def test_a_failure_after_the_sidecar_keeps_the_old_sidecar(tmp_path, monkeypatch):
    """The sidecar is written before the rename; if the rename fails, the checkpoint left in
    place must still match its sidecar."""
    good = {"format_version": 1, "step": 7, "phase": 1, "model": {"w": torch.ones(3)}}
    path = tmp_path / "ckpt-00000007.pt"
    ckpt.save_checkpoint(path, good)
    real_replace = os.replace

    def fail_on_checkpoint(src, dst):
        if str(dst).endswith(".pt"):
            raise OSError("no space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_checkpoint)
    with pytest.raises(OSError, match="no space"):
        ckpt.save_checkpoint(path, {**good, "model": {"w": torch.zeros(3)}})
    monkeypatch.undo()
    assert ckpt.verify_checkpoint(path) is None
    assert torch.equal(ckpt.load_checkpoint(path)["model"]["w"], torch.ones(3))


def test_corrupt_and_foreign_files_are_user_errors(tmp_path):
    good = tmp_path / "good.pt"
    ckpt.save_checkpoint(good, {"format_version": 1, "step": 1, "phase": 1,
                                "model": {"w": torch.zeros(1000)}})  # fmt: skip
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint" * 10)
    torch.save({"obj": _Sampler()}, tmp_path / "pickled.pt")  # needs unpickling a class
    torch.save({"step": 1}, tmp_path / "incomplete.pt")
    torch.save({"format_version": 99, "step": 1, "phase": 1, "model": {}}, tmp_path / "new.pt")
    cases = {
        "truncated.pt": "corrupt",
        "garbage.pt": "corrupt",
        "pickled.pt": "refused: it holds pickled Python objects",
        "incomplete.pt": "missing keys",
        "new.pt": "newer",
        "absent.pt": "no such file",
    }
    for name, match in cases.items():
        with pytest.raises(UserError, match=match) as caught:
            ckpt.load_checkpoint(tmp_path / name)
        assert "weights_only=False" not in str(caught.value)  # never suggest unpickling


def test_sidecar_catches_flipped_bytes_and_rotates_with_its_checkpoint(tmp_path):
    state = ckpt.make_state(step=1, phase=1, config={}, model=torch.nn.Linear(64, 64))
    for step in (1, 2, 3):
        state["step"] = step
        ckpt.save_and_rotate(tmp_path, state, keep_last=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "ckpt-00000002.pt",
        "ckpt-00000002.pt.sha256",
        "ckpt-00000003.pt",
        "ckpt-00000003.pt.sha256",
    ]
    latest = tmp_path / "ckpt-00000003.pt"
    assert ckpt.verify_checkpoint(latest) is None
    raw = bytearray(latest.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit inside the weights
    latest.write_bytes(bytes(raw))
    assert "sha256 differs" in ckpt.verify_checkpoint(latest)
    with pytest.raises(UserError, match="newest good checkpoint is .*ckpt-00000002.pt"):
        ckpt.load_checkpoint(latest)
    assert ckpt.load_checkpoint(tmp_path / "ckpt-00000002.pt")["step"] == 2


def test_a_full_disk_during_torch_save_is_said_as_such(tmp_path, monkeypatch):
    """torch reports ENOSPC as "enforce fail ... unexpected pos": we say the disk is full."""
    import errno
    import shutil
    from collections import namedtuple

    from ground.errors import describe_os_error

    def full(obj, f):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 << 30, 10 << 30, 4096))
    path = tmp_path / "ckpt-00000001.pt"
    with pytest.raises(OSError) as caught:
        ckpt.save_checkpoint(path, {"format_version": 1, "step": 1, "phase": 1, "model": {}})
    assert caught.value.errno == errno.ENOSPC
    assert (
        describe_os_error(caught.value) == f"{path}: no space left on the device (the disk is full)"
    )
    assert list(tmp_path.iterdir()) == []  # no temp file, no sidecar left
