"""The fast variant of `make demo`: raw corpus -> shards -> phase 1 -> phase 2 -> export ->
fine-tune -> report, asserting every artifact exists and verifies."""

from __future__ import annotations

import json

from transformers import BertForPreTraining

from bertprep import demo
from sharding.verify import verify_dir


def test_fast_demo_end_to_end(tmp_path, capsys):
    run = tmp_path / "demo"
    assert demo.main(["--output", str(run), "--fast"]) == 0
    out = capsys.readouterr().out
    assert "SST-2 dev accuracy over 1 paired seed(s)" in out and "time total" in out
    assert "pretrained - random: " in out
    for stage in ("extract", "segment", "vocab", "instances"):  # build's stages, timed
        assert f"  time {stage}: " in out, out[-3000:]
    for phase in ("seq128", "seq512"):
        assert verify_dir(run / phase) == []
    for phase in ("phase1", "phase2"):
        rows = [json.loads(x) for x in (run / phase / "metrics.jsonl").read_text().splitlines()]
        assert rows and all(r["phase"] == int(phase[-1]) for r in rows)
        assert list((run / phase / "checkpoints").glob("ckpt-*.pt"))
    model, info = BertForPreTraining.from_pretrained(run / "export", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    summary = json.loads((run / "finetune" / "summary.json").read_text())
    assert 0.0 <= summary["eval_accuracy"] <= 1.0
    assert (run / "finetune" / "best" / "model.safetensors").exists()
    res = json.loads((run / "compare" / "results.json").read_text())
    assert res["complete"] and set(res["choice"]) == {"pretrained", "random"}
    html = (run / "report" / "report.html").read_text()
    assert "<img" in html and len(list((run / "report" / "figures").glob("*.png"))) >= 6
