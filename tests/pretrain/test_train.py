"""`bertprep train` end to end on real shards: learning, exact resume, SIGTERM, phases, DDP."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import h5py
import pytest
import torch

from bertprep.cli import main as bertprep
from pretrain import checkpoint as ckpt
from pretrain.schedule import poly_warmup_lr
from tests import proc

TRAIN = ["--model", "tiny", "--recipe", "cpu-demo", "--threads", "1", "--seed", "3"]


@pytest.fixture(scope="module")
def shards(two_books, tmp_path_factory):
    """RUN/seq128 and RUN/seq512 built from two bundled books (vocab 3000)."""
    books = two_books
    run = tmp_path_factory.mktemp("run")
    assert (
        bertprep(
            [
                "build",
                "--books",
                str(books),
                "--output",
                str(run),
                "--vocab-size",
                "3000",
                "--dupe-factor",
                "2",
                "--num-shards",
                "2",
                "--validation-fraction",
                "0.4",
            ]
        )
        == 0
    )
    return run


def _train(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return proc.run([sys.executable, "-m", "pretrain.train", *args], timeout=timeout)


def _rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in _rows(out) if "loss" in r}


def test_mlm_loss_falls_below_unigram_entropy(shards, tmp_path):
    out = tmp_path / "t"
    res = _train(
        "--data",
        str(shards / "seq128"),
        "--output",
        str(out),
        *TRAIN,
        "--max-steps",
        "120",
        "--total-steps",
        "120",
        "--lr",
        "2e-2",
        "--warmup",
        "0.05",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    labels = Counter()
    for p in (shards / "seq128").glob("shard_training_*.hdf5"):
        with h5py.File(p) as f:
            pos, ids = f["masked_lm_positions"][:], f["masked_lm_ids"][:]
            labels.update(ids[pos > 0].tolist())
    total = sum(labels.values())
    entropy = -sum(c / total * math.log(c / total) for c in labels.values())
    rows = [r for r in _rows(out) if "mlm_loss" in r]
    late = sum(r["mlm_loss"] for r in rows[-10:]) / 10
    assert rows[0]["mlm_loss"] > entropy  # starts near log(vocab)
    assert late < entropy, (late, entropy)


def test_logged_lr_is_the_one_each_step_used(shards, tmp_path):
    out = tmp_path / "lr"
    args = ["--lr", "3e-3", "--warmup", "0.25", "--max-steps", "6", "--total-steps", "6"]
    res = _train("--data", str(shards / "seq128"), "--output", str(out), *TRAIN, *args)
    assert res.returncode == 0, res.stderr[-3000:]
    logged = {r["step"]: r["lr"] for r in _rows(out) if "loss" in r}
    assert sorted(logged) == [1, 2, 3, 4, 5, 6]
    for k, lr in logged.items():  # the scheduler's next rate (k + 1) was logged before
        assert lr == pytest.approx(poly_warmup_lr(k, 6, 3e-3, 0.25), rel=1e-12), k
    assert logged[6] > 0  # the last step updates too


def test_sigkill_then_resume_gives_identical_losses(shards, tmp_path):
    args = [
        "--data",
        str(shards / "seq128"),
        *TRAIN,
        "--max-steps",
        "12",
        "--checkpoint-every",
        "4",
    ]
    straight = tmp_path / "straight"
    assert _train(*args, "--output", str(straight)).returncode == 0
    out = tmp_path / "killed"
    child = proc.popen(
        [sys.executable, "-m", "pretrain.train", *args, "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while child.poll() is None and time.time() < deadline:  # kill between ckpts 8 and 12
            steps = _losses(out) if (out / "metrics.jsonl").exists() else {}
            if 9 in steps:
                break
            time.sleep(0.02)
    finally:
        proc.kill_group(child)  # SIGKILL
    assert ckpt.latest_checkpoint(out / "checkpoints").name == "ckpt-00000008.pt"
    res = _train(*args, "--output", str(out), "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert _losses(out) == _losses(straight)  # bitwise on CPU, every step


def test_sigterm_saves_and_exits(shards, tmp_path):
    out = tmp_path / "term"
    child = proc.popen(
        [
            sys.executable,
            "-m",
            "pretrain.train",
            "--data",
            str(shards / "seq128"),
            "--output",
            str(out),
            *TRAIN,
            "--checkpoint-every",
            "1000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 240
        while not (out / "metrics.jsonl").exists() or len(_losses(out)) < 3:
            assert time.time() < deadline and child.poll() is None
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        stdout, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            proc.kill_group(child)
    assert child.returncode == 0
    assert "SIGTERM" in stdout
    last = ckpt.latest_checkpoint(out / "checkpoints")
    state = ckpt.load_checkpoint(last)
    assert state["step"] == max(_losses(out)) < 60


def test_phase2_keeps_moments_and_resets_schedule(shards, tmp_path):
    p1 = tmp_path / "p1"
    assert (
        _train(
            "--data", str(shards / "seq128"), "--output", str(p1), *TRAIN, "--max-steps", "4"
        ).returncode
        == 0
    )
    first = ckpt.load_checkpoint(ckpt.latest_checkpoint(p1 / "checkpoints"))
    p2 = tmp_path / "p2"
    res = _train(
        "--phase",
        "2",
        "--data",
        str(shards / "seq512"),
        "--output",
        str(p2),
        *TRAIN[2:],  # no --model: the architecture comes from the checkpoint
        "--init-from",
        str(ckpt.latest_checkpoint(p1 / "checkpoints")),
        "--max-steps",
        "1",
        "--lr",
        "2e-3",
        "--warmup",
        "0.5",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    second = ckpt.load_checkpoint(ckpt.latest_checkpoint(p2 / "checkpoints"))
    assert second["phase"] == 2 and second["step"] == 1
    assert second["config"]["model"] == first["config"]["model"]  # tiny, from the checkpoint
    assert all(g["step"] == 1 for g in second["optimizer"]["param_groups"])  # bias correction
    # Moments carried over: v2 = 0.999 v1 + 0.001 g^2 >= 0.999 v1 (a reset gives 0.001 g^2).
    for k, st in first["optimizer"]["state"].items():
        v1, v2 = st["exp_avg_sq"], second["optimizer"]["state"][k]["exp_avg_sq"]
        assert torch.all(v2 >= 0.999 * v1 * (1 - 1e-6))
    # Warmup restarted: step 1 of 12 (the phase's total steps, cpu-demo recipe).
    assert _rows(p2)[0]["lr"] == pytest.approx(poly_warmup_lr(1, 12, 2e-3, 0.5), rel=1e-12)
    assert second["scheduler"]["last_epoch"] == 1


def test_accumulation_gives_the_loss_of_one_big_batch(shards, tmp_path):
    common = [*TRAIN, "--data", str(shards / "seq128"), "--max-steps", "3", "--dropout", "0"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    res = _train(*common, "--global-batch", "8", "--micro-batch", "8", "--output", str(whole))
    assert res.returncode == 0, res.stderr[-2000:]
    res = _train(*common, "--global-batch", "8", "--micro-batch", "2", "--output", str(split))
    assert res.returncode == 0, res.stderr[-2000:]
    a, b = _losses(whole), _losses(split)
    assert sorted(a) == sorted(b) == [1, 2, 3]
    for step in a:  # MLM loss is normalised by the global batch's masked count, not per micro
        assert abs(a[step] - b[step]) < 1e-4 * max(1.0, abs(a[step]))


def test_time_budget_stops_and_checkpoints(shards, tmp_path):
    out = tmp_path / "budget"
    res = _train(
        *TRAIN, "--data", str(shards / "seq128"), "--output", str(out),
        "--max-steps", "500", "--time-budget", "0.01",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    steps = sorted(_losses(out))
    assert 1 <= len(steps) < 500
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(out / "checkpoints"))
    assert saved["step"] == steps[-1]


def test_ddp_two_processes_match_one(shards, tmp_path):
    common = [
        "--data",
        str(shards / "seq128"),
        *TRAIN,
        "--max-steps",
        "3",
        "--global-batch",
        "8",
        "--dropout",
        "0",
        "--log-samples",
    ]
    single = tmp_path / "single"
    assert _train(*common, "--output", str(single)).returncode == 0
    ddp = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if Path("/sys/class/net/lo").exists():
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # both ranks on this host: loopback only
    res = proc.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",  # a free rendezvous port on localhost
            "--nproc_per_node",
            "2",
            "-m",
            "pretrain.train",
            *common,
            "--output",
            str(ddp),
            "--micro-batch",
            "2",  # 2 micro-steps per rank: no_sync() on the first, all-reduce on the second
        ],
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    for step, loss in _losses(single).items():
        assert abs(_losses(ddp)[step] - loss) < 1e-4 * max(1.0, abs(loss))

    def ids(path):
        return {r["step"]: r["ids"] for r in map(json.loads, path.read_text().splitlines())}

    one = ids(single / "samples-rank0.jsonl")
    r0, r1 = ids(ddp / "samples-rank0.jsonl"), ids(ddp / "samples-rank1.jsonl")
    for step in one:
        assert not set(r0[step]) & set(r1[step])
        assert sorted(r0[step] + r1[step]) == sorted(one[step])


def test_bad_inputs_fail_before_training(shards, tmp_path, corpus_dir):
    bad_ckpt = tmp_path / "bad.pt"
    bad_ckpt.write_bytes(b"not a checkpoint")
    res = _train(
        "--data",
        str(shards / "seq128"),
        "--output",
        str(tmp_path / "a"),
        *TRAIN,
        "--init-from",
        str(bad_ckpt),
    )
    assert res.returncode == 2 and "corrupt" in res.stderr
    cfg = tmp_path / "cfg.json"
    cfg.write_text(
        json.dumps(
            {
                "vocab_size": 30522,
                "hidden_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 128,
            }
        )
    )
    res = _train(
        "--data",
        str(shards / "seq128"),
        "--output",
        str(tmp_path / "b"),
        *TRAIN,
        "--config",
        str(cfg),
    )
    assert res.returncode == 2 and "vocabulary" in res.stderr
    mixed = tmp_path / "mixed"
    shutil.copytree(shards / "seq128", mixed)
    shutil.copy(
        next((shards / "seq512").glob("shard_training_*.hdf5")), mixed / "shard_training_00009.hdf5"
    )
    (mixed / "manifest.json").unlink()  # a foreign (NVIDIA-made) directory: no manifest
    res = _train("--data", str(mixed), "--output", str(tmp_path / "c"), *TRAIN)
    assert res.returncode == 2 and "seq" in res.stderr and "Traceback" not in res.stderr
    foreign = tmp_path / "foreign"  # NVIDIA-made: no manifest, no vocab.txt; ids up to ~30k
    foreign.mkdir()
    for f in (shards / "seq128").glob("shard_*.hdf5"):
        shutil.copy(f, foreign / f.name)
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "vocab_size": 1000}))
    res = _train(
        "--data", str(foreign), "--output", str(tmp_path / "e"), *TRAIN, "--config", str(cfg)
    )  # fmt: skip
    assert res.returncode == 2 and "vocabulary of 1000" in res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    missing = tmp_path / "missing"
    shutil.copytree(shards / "seq128", missing)
    (missing / "shard_training_00001.hdf5").unlink()
    res = _train("--data", str(missing), "--output", str(tmp_path / "d"), *TRAIN)
    assert res.returncode == 2 and "shard_training_00001.hdf5" in res.stderr


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_steps(shards, tmp_path, precision):
    out = tmp_path / precision
    res = _train(
        "--data",
        str(shards / "seq128"),
        "--output",
        str(out),
        *TRAIN,
        "--max-steps",
        "3",
        "--precision",
        precision,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [r for r in _rows(out) if "loss" in r]
    assert len(rows) == 3 and all(math.isfinite(r["loss"]) for r in rows)
    scales = [r["loss_scale"] for r in rows]
    if precision == "fp16":  # GradScaler starts at 2**20 and only ever halves or grows
        assert all(s <= 2.0**20 for s in scales) and scales[0] >= 2.0**17
    else:
        assert scales == [1.0, 1.0, 1.0]
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(out / "checkpoints"))
    assert state["config"]["precision"] == precision
    assert all(v.dtype == torch.float32 for v in state["model"].values() if v.is_floating_point())


def test_corrupt_latest_checkpoint_is_refused_and_the_good_one_resumes(shards, tmp_path):
    """64 flipped bytes inside the latest checkpoint (tensor data: torch's zip loader does not
    notice) -> --resume fails with one line naming the newest good checkpoint; --resume CKPT
    continues from it, and the run ends with the losses of a run never interrupted."""
    args = ["--data", str(shards / "seq128"), *TRAIN, "--total-steps", "6"]
    straight = tmp_path / "straight"
    assert _train(*args, "--output", str(straight)).returncode == 0
    out = tmp_path / "bad"
    res = _train(*args, "--output", str(out), "--max-steps", "4", "--checkpoint-every", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    latest, good = (
        out / "checkpoints" / "ckpt-00000004.pt",
        out / "checkpoints" / "ckpt-00000002.pt",
    )
    assert (out / "checkpoints" / "ckpt-00000004.pt.sha256").is_file()
    data = bytearray(latest.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(b ^ 0xFF for b in data[mid : mid + 64])
    latest.write_bytes(bytes(data))
    res = _train(*args, "--output", str(out), "--resume")
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "sha256 differs" in err[0] and str(good) in err[0], res.stderr
    assert "Traceback" not in res.stderr
    res = _train(*args, "--output", str(out), "--resume", str(good))
    assert res.returncode == 0, res.stderr[-3000:]
    assert _losses(out)[6] == _losses(straight)[6]


def test_a_corrupt_shard_is_refused_before_it_is_trained_on(shards, tmp_path):
    data = Path(shutil.copytree(shards / "seq128", tmp_path / "seq128"))
    for shard in data.glob("shard_training_*.hdf5"):  # whichever is read first
        raw = bytearray(shard.read_bytes())
        mid = len(raw) // 2
        raw[mid : mid + 64] = bytes(b ^ 0xFF for b in raw[mid : mid + 64])
        shard.write_bytes(bytes(raw))
    res = _train("--data", str(data), "--output", str(tmp_path / "o"), *TRAIN, "--total-steps", "2")
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert any("sha256 differs from manifest.json" in x for x in err), err
    assert "Traceback" not in res.stderr
