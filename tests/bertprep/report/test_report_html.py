"""``bertprep report``: every number in the page equals the run's own files, checked here by
reading those files independently (pyarrow rows, h5py arrays, JSON, TSV); no blank figure;
missing parts skipped with a note; a directory that is no run is a UserError.

One small real run (2 bundled books + 2 small wiki dumps, 5 + 2 training steps) is built once
with the ``bertprep`` command.
"""

from __future__ import annotations

import json
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import h5py
import matplotlib
import numpy as np
import pyarrow.parquet as pq
import pytest
from matplotlib import image as mpimg
from tokenizers.pre_tokenizers import BertPreTokenizer

from bertprep.cli import main as bertprep
from bertprep.report import data as report_data
from bertprep.report import page as report_html
from ground.errors import UserError
from tests import proc

ROOT = Path(__file__).resolve().parents[3]
BOOKS = ("11-0.txt", "1952-0.txt")
WIKI = ("dumpster-dive_tinywiki-latest-pages-articles.xml", "mediawiki-dump_fowiki-dump.xml.bz2")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, corpus_dir) -> Path:
    """A complete small run: build, phase 1 (5 steps), phase 2 (3 steps), then the report."""
    base = tmp_path_factory.mktemp("report")
    books = base / "books"
    books.mkdir()
    for name in BOOKS:
        shutil.copy(corpus_dir / "books" / name, books / name)
    run = base / "run"
    cmd = ["build", "--books", str(books), "--output", str(run), "--vocab-size", "3000"]
    for name in WIKI:
        cmd += ["--wikipedia", str(corpus_dir / "wikipedia" / name)]
    # A large validation fraction so that 6 documents still give validation shards (eval rows).
    assert bertprep([*cmd, "--dupe-factor", "1", "--validation-fraction", "0.3"]) == 0
    common = ["--model", "tiny", "--recipe", "cpu-demo", "--threads", "1", "--global-batch", "8"]
    p1 = ["train", "--data", str(run / "seq128"), "--output", str(run / "phase1")]
    assert bertprep([*p1, *common, "--max-steps", "5"]) == 0
    ckpt = sorted((run / "phase1" / "checkpoints").glob("*.pt"))[-1]
    p2 = ["train", "--phase", "2", "--data", str(run / "seq512"), "--output", str(run / "phase2")]
    assert bertprep([*p2, *common, "--max-steps", "2", "--init-from", str(ckpt)]) == 0
    assert _report(run) == 0
    return run


def _report(run: Path, *args: str) -> int:
    """``bertprep report RUN ARGS``, through the stage module's own parser and run()."""
    import argparse

    from bertprep.report import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args([str(run), *args]), [])


class _Tables(HTMLParser):
    """Collects ``<table id=...>`` cell texts and ``<img src=...>`` from a page."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.notes: list[str] = []
        self._table = self._cell = None
        self._in_note = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "p" and a.get("class") == "note":
            self._in_note = True
            self.notes.append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th"):
            self._table[-1].append(self._cell)
            self._cell = None
        elif tag == "p":
            self._in_note = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        elif self._in_note:
            self.notes[-1] += data


def parse(page: Path) -> _Tables:
    p = _Tables()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def as_dicts(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def keyed(rows: list[list[str]]) -> dict[str, list[str]]:
    """First column -> the other cells (tables of name/value rows)."""
    return {r[0]: r[1:] for r in rows[1:]}


def num(cell: str) -> float:
    return float(cell)


def close(cell: str, value: float) -> bool:
    """A cell shows ``value`` (floats are printed with 6 significant digits)."""
    return np.isclose(num(cell), value, rtol=1e-5, atol=0)


def in_bin(label: str, values: np.ndarray) -> int:
    """How many values fall in a bin labelled ``lo-hi`` (inclusive), ``lo+`` or ``n``."""
    if label.endswith("+"):
        return int((values >= int(label[:-1])).sum())
    lo, _, hi = label.partition("-")
    return int(((values >= int(lo)) & (values <= int(hi or lo))).sum())


def rows_of(directory: Path) -> list[dict]:
    """Every row of every Parquet file of a stage directory, read with pyarrow."""
    return [r for f in sorted(directory.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="session")
def page(run_dir) -> _Tables:
    return parse(run_dir / "report" / "report.html")


@pytest.fixture(scope="session")
def docs(run_dir) -> list[dict]:
    return rows_of(run_dir / "docs")


@pytest.fixture(scope="session")
def run_report(run_dir) -> dict:
    return json.loads((run_dir / "report.json").read_text())


def test_sources_table_matches_documents_and_sentences(run_dir, page, docs, run_report):
    sents = rows_of(run_dir / "sentences")
    tpw = json.loads((run_dir / "vocab" / "report.json").read_text())["tokens_per_word"]
    pre = BertPreTokenizer()
    rows = {r["source"]: r for r in as_dicts(page.tables["t-sources"])}
    assert set(rows) == {"books", "wikipedia"}
    for src, row in rows.items():
        mine = [d for d in docs if d["source"] == src]
        assert int(row["documents"]) == len(mine) == run_report["by_source"][src]["docs_out"]
        assert int(row["words"]) == sum(len(d["text"].split()) for d in mine)
        assert int(row["chars"]) == sum(len(d["text"]) for d in mine)
        pretok = sum(len(pre.pre_tokenize_str(d["text"])) for d in mine)
        assert int(row["tokens (estimated)"]) == round(pretok * tpw)
        ss = [s for s in sents if s["source"] == src]
        assert int(row["paragraphs"]) == sum(len(s["paragraphs"]) for s in ss)
        assert int(row["sentences"]) == sum(len(p) for s in ss for p in s["paragraphs"])
    assert sum(int(r["sentences"]) for r in rows.values()) == run_report["segment"]["sentences"]
    assert sum(int(r["paragraphs"]) for r in rows.values()) == run_report["segment"]["paragraphs"]
    # The figure shows the same numbers: bar heights of the three panels.
    data = report_data.gather(run_dir)
    fig = report_html.fig_sources(data)
    heights = [[p.get_height() for p in ax.patches] for ax in fig.axes]
    srcs = sorted(rows)
    assert heights[0] == [int(rows[s]["documents"]) for s in srcs]
    assert heights[1] == [int(rows[s]["sentences"]) for s in srcs]
    assert heights[2] == [int(rows[s]["tokens (estimated)"]) for s in srcs]


def test_length_histograms_count_every_document_and_sentence(run_dir, page, docs, run_report):
    words = np.array([len(d["text"].split()) for d in docs])
    chars = np.array([len(d["text"]) for d in docs])
    sents = [
        s
        for f in sorted((run_dir / "sentences").glob("*.parquet"))
        for r in pq.read_table(f).to_pylist()
        for p in r["paragraphs"]
        for s in p
    ]
    swords = np.array([len(s.split()) for s in sents])
    schars = np.array([len(s) for s in sents])
    for table_id, values, total in [
        ("t-doclen-words", words, run_report["docs_out"]),
        ("t-doclen-chars", chars, run_report["docs_out"]),
        ("t-sentlen-words", swords, run_report["segment"]["sentences"]),
        ("t-sentlen-chars", schars, run_report["segment"]["sentences"]),
    ]:
        rows = page.tables[table_id][1:]
        assert sum(int(c) for _, c in rows) == total == len(values)
        for label, count in rows:
            assert int(count) == in_bin(label, values), (table_id, label)
    # The plotted bars are the table's counts, in order.
    fig = report_html.fig_pair(
        report_data.gather(run_dir)["docs"]["length_words"],
        report_data.gather(run_dir)["docs"]["length_chars"],
        ("a", "b"),
        ("w", "c"),
    )
    assert [p.get_height() for p in fig.axes[0].patches] == [
        int(c) for _, c in page.tables["t-doclen-words"][1:]
    ]


def test_dropped_table_matches_report_and_rejected_files(run_dir, page, run_report):
    rejected = rows_of(run_dir / "rejected")
    rows = as_dicts(page.tables["t-dropped"])
    expected = {("skipped", k): v for k, v in run_report["skipped"].items()}
    expected |= {("rejected", k): v for k, v in run_report["rejected"].items()}
    assert expected, "the fixture run must drop something for this test to mean anything"
    assert {(r["kind"], r["reason"]): int(r["documents (report.json)"]) for r in rows} == expected
    for r in rows:
        for src in {x["source"] for x in rejected}:
            key = (r["kind"], r["reason"], src)
            n = sum(1 for x in rejected if (x["kind"], x["reason"], x["source"]) == key)
            assert int(r[src]) == n


def test_extraction_table(page, run_report):
    rows = keyed(page.tables["t-extract"])
    assert int(rows["docs_in"][0]) == run_report["docs_in"]
    assert int(rows["docs_out"][0]) == run_report["docs_out"]
    for src, c in run_report["by_source"].items():
        assert int(rows[f"{src} docs_in"][0]) == c["docs_in"]


def test_vocab_tables_match_vocab_report_and_counts(run_dir, page):
    rep = json.loads((run_dir / "vocab" / "report.json").read_text())
    rows = keyed(page.tables["t-vocab"])
    numeric = {
        k: v for k, v in rep.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    assert {"tokens_per_word", "unk_rate", "train_word_coverage"} <= set(numeric)
    for k, v in numeric.items():
        assert close(rows[k][0], v), k
    lines = (run_dir / "vocab" / "counts.tsv").read_text(encoding="utf-8").splitlines()
    counts = [int(ln.split("\t")[1]) for ln in lines]
    c = keyed(page.tables["t-vocab-counts"])
    assert int(c["distinct words"][0]) == len(counts)
    assert int(c["occurrences"][0]) == sum(counts)
    assert close(c["share of occurrences in top 1000 words"][0], sum(counts[:1000]) / sum(counts))


def test_instances_table_matches_shards(run_dir, page, run_report):
    table = page.tables["t-instances"]
    phases = table[0][1:]
    assert phases == ["seq128", "seq512"]
    rows = keyed(table)
    for col, phase in enumerate(phases):
        d = run_dir / phase
        manifest = json.loads((d / "manifest.json").read_text())
        mask_id = (d / "vocab.txt").read_text(encoding="utf-8").splitlines().index("[MASK]")
        for split in ("training", "validation"):
            files = sorted(d.glob(f"shard_{split}_*.hdf5"))
            assert len(files) == 1
            with h5py.File(files[0]) as f:
                lengths = f["input_mask"][:].sum(1)
                nsp = f["next_sentence_labels"][:]
                pos = f["masked_lm_positions"][:]
                masked = (pos != 0).sum(1)
                stored = np.take_along_axis(f["input_ids"][:], pos, 1)[pos != 0]
            assert close(rows[f"{split} mean_length"][col], lengths.mean())
            assert close(rows[f"{split} nsp_random_fraction"][col], nsp.mean())
            assert close(rows[f"{split} mean_masked"][col], masked.mean())
            assert close(rows[f"{split} mask_split mask"][col], (stored == mask_id).mean())
        with h5py.File(next(d.glob("shard_training_*.hdf5"))) as f:
            lengths = f["input_mask"][:].sum(1)
            nsp = f["next_sentence_labels"][:]
        assert int(rows["training instances"][col]) == manifest["totals"]["training"] == len(nsp)
        validation = run_report["instances"][phase]["validation"]
        assert int(rows["validation instances"][col]) == validation > 0
        assert int(rows["seq_length"][col]) == manifest["seq_length"]
        for k, v in run_report["instances"][phase]["stats"].items():
            assert int(rows[f"builder {k}"][col]) == v, k
        hist = page.tables[f"t-inslen-{phase}"][1:]
        assert sum(int(n) for _, n in hist) == len(lengths)
        for label, n in hist:
            assert int(n) == in_bin(label, lengths)


def test_training_table_and_curves_match_metrics(run_dir, page):
    p1 = [json.loads(ln) for ln in (run_dir / "phase1" / "metrics.jsonl").read_text().splitlines()]
    p2 = [json.loads(ln) for ln in (run_dir / "phase2" / "metrics.jsonl").read_text().splitlines()]
    table = page.tables["t-training"]
    assert table[0][1:] == ["phase1", "phase2"]
    rows = keyed(table)
    for col, metrics in enumerate((p1, p2)):
        train = [r for r in metrics if "loss" in r]
        evals = [r for r in metrics if "eval_mlm_loss" in r]
        assert int(rows["steps"][col]) == len(train) and evals
        for k in ("loss", "mlm_acc", "nsp_acc", "lr"):
            assert close(rows[f"final_{k}"][col], train[-1][k])
        assert close(rows["mean_tokens_per_s"][col], np.mean([r["tokens_per_s"] for r in train]))
        assert close(rows["last_eval_mlm_acc"][col], evals[-1]["eval_mlm_acc"])
    # Phase 2 follows phase 1 on one step axis.
    last1 = max(r["step"] for r in p1)
    assert rows["step offset"] == ["0", str(last1)]
    fig = report_html.fig_training(report_data.gather(run_dir)["training"])
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert list(lines["phase1 loss"].get_xdata()) == [r["step"] for r in p1 if "loss" in r]
    assert list(lines["phase2 loss"].get_xdata()) == [r["step"] + last1 for r in p2 if "loss" in r]
    assert list(lines["phase2 loss"].get_ydata()) == [r["loss"] for r in p2 if "loss" in r]


def test_remaining_figures_plot_the_tables_numbers(run_dir, page):
    data = report_data.gather(run_dir)
    # sentence lengths: bars = the table's counts
    fig = report_html.fig_pair(
        data["sentences"]["length_words"], data["sentences"]["length_chars"], ("a", "b"), ("w", "c")
    )
    for ax, table in zip(fig.axes, ("t-sentlen-words", "t-sentlen-chars")):
        assert ax.patches
        assert [p.get_height() for p in ax.patches] == [int(c) for _, c in page.tables[table][1:]]
    # dropped documents: bar lengths = the table's report.json counts, in order
    fig = report_html.fig_dropped(data["dropped"])
    rows = as_dicts(page.tables["t-dropped"])
    assert rows
    assert [p.get_width() for p in fig.axes[0].patches] == [
        int(r["documents (report.json)"]) for r in rows
    ]
    # vocab coverage: the first two bars are the vocab report's figures
    fig = report_html.fig_vocab(data["vocab"])
    rep = json.loads((run_dir / "vocab" / "report.json").read_text())
    bars = [p.get_height() for p in fig.axes[1].patches]
    assert bars[:2] == [rep["train_word_coverage"], rep["unk_rate"]]
    # instances: length bars = the length table; NSP bar = the instances table's fraction
    fig = report_html.fig_instances(data["instances"])
    rows = keyed(page.tables["t-instances"])
    for col, phase in enumerate(("seq128", "seq512")):
        lengths = [p.get_height() for p in fig.axes[col].patches]
        assert sum(lengths) > 0
        assert lengths == [int(n) for _, n in page.tables[f"t-inslen-{phase}"][1:]]
        nsp = fig.axes[2 + col].patches[0].get_height()
        assert close(rows["training nsp_random_fraction"][col], nsp)
    # training: accuracy and throughput panels plot the metrics rows
    p1 = [json.loads(ln) for ln in (run_dir / "phase1" / "metrics.jsonl").read_text().splitlines()]
    fig = report_html.fig_training(data["training"])
    for ax, key in ((fig.axes[1], "mlm_acc"), (fig.axes[2], "tokens_per_s")):
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        assert list(lines[f"phase1 {key}"].get_ydata()) == [r[key] for r in p1 if "loss" in r]


def test_every_figure_exists_and_is_not_blank(run_dir, page):
    expected = {"sources", "document_lengths", "sentence_lengths", "dropped", "vocab", "instances"}
    assert {Path(s).stem for s in page.images} == expected | {"training"}
    for src in page.images:
        assert_not_blank(run_dir / "report" / src)


def assert_not_blank(path: Path) -> None:
    """A real picture: big enough, many colours, not one flat tone."""
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400, path
    rgb = (img[..., :3] * 255).round().astype(np.int64).reshape(-1, 3)
    assert len(np.unique(rgb @ np.array([65536, 256, 1]))) > 20, path
    assert img.std() > 0.05, path


def test_rerun_is_byte_identical(run_dir, tmp_path):
    assert _report(run_dir, "--output", str(tmp_path / "again")) == 0
    first = run_dir / "report"
    for path in sorted((tmp_path / "again").rglob("*")):
        if path.is_file():
            rel = path.relative_to(tmp_path / "again")
            if rel.name == "report.html":  # names the output dir nowhere, so equal too
                assert path.read_bytes() == (first / rel).read_bytes()
            else:
                assert path.read_bytes() == (first / rel).read_bytes(), rel


def test_missing_parts_are_skipped_with_a_note(run_dir, tmp_path):
    part = tmp_path / "run"
    part.mkdir()
    for name in ("docs", "rejected"):
        shutil.copytree(run_dir / name, part / name)
    shutil.copy(run_dir / "report.json", part / "report.json")
    assert _report(part) == 0
    p = parse(part / "report" / "report.html")
    assert "t-sources" in p.tables and "t-dropped" in p.tables
    assert not {"t-instances", "t-training", "t-vocab", "t-sentlen-words"} & set(p.tables)
    skipped = {n.split(":")[0] for n in p.notes}
    expected = {"sentences", "vocab", "instances", "training", "finetune"}
    assert skipped == {f"Skipped {s}" for s in expected}
    # Without a vocab there is no tokens-per-word, so no token estimate either.
    assert {r["tokens (estimated)"] for r in as_dicts(p.tables["t-sources"])} == {"-"}


def test_explicit_train_and_finetune_dirs(run_dir, tmp_path):
    # Stand-ins shaped like `bertprep finetune` output (pretrain/finetune_cli.py: summary.json,
    # metrics.jsonl one row per epoch); the real stage is too slow to run here.
    tunes = []
    for name, acc, random_init in (("ft", 0.8125, False), ("ft-random", 0.53125, True)):
        tune = tmp_path / name
        tune.mkdir()
        summary = {
            "eval_accuracy": acc,
            "eval_macro_f1": acc - 0.0625,
            "majority_baseline_accuracy": 0.5,
            "labels": {"0": "negative", "1": "positive"},
            "random_init": random_init,
            "num_train": 48,
        }
        (tune / "summary.json").write_text(json.dumps(summary))
        (tune / "metrics.jsonl").write_text(f'{{"epoch": 1, "step": 3, "eval_accuracy": {acc}}}\n')
        tunes += ["--finetune", str(tune)]
    out = tmp_path / "rep"
    # A run dir with only report.json keeps this test fast: few figures to draw.
    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(run_dir / "report.json", small / "report.json")
    assert _report(small, "--train", str(run_dir / "phase2"), *tunes, "--output", str(out)) == 0
    p = parse(out / "report.html")
    assert p.tables["t-training"][0] == ["metric", "phase2"]
    assert keyed(p.tables["t-training"])["step offset"] == ["0"]  # alone, nothing to follow
    rows = {(r[0], r[1]): r[2] for r in p.tables["t-finetune"][1:]}
    assert rows == {
        (run, k): v
        for run, acc in (("ft", "0.8125"), ("ft-random", "0.53125"))
        for k, v in (
            ("eval_accuracy", acc),
            ("eval_macro_f1", str(float(acc) - 0.0625)),
            ("majority_baseline_accuracy", "0.5"),
            ("num_train", "48"),
        )
    }
    assert "figures/finetune.png" in p.images
    assert_not_blank(out / "figures" / "finetune.png")
    data = report_data.gather(small, finetune_dirs=tunes[1::2])
    bars = report_html.fig_finetune(data["finetune"]).axes[0].patches
    # Baselines (majority class, random init) grey, the pretrained model's scores not.
    grey = [b.get_facecolor()[:3] == matplotlib.colors.to_rgb("tab:gray") for b in bars]
    heights = [b.get_height() for b in bars]
    assert list(zip(heights, grey)) == [
        (0.8125, False), (0.75, False), (0.5, True), (0.53125, True), (0.46875, True), (0.5, True)
    ]  # fmt: skip
    # Metrics without a summary: the figure plots the accuracy series instead.
    tune = Path(tunes[1])
    (tune / "summary.json").unlink()
    (tune / "metrics.jsonl").write_text('{"eval_accuracy": 0.5}\n{"eval_accuracy": 0.75}\n')
    data = report_data.gather(small, finetune_dirs=[str(tune)])
    assert data["finetune"][0]["series"] == {"eval_accuracy": [0.5, 0.75]}
    line = report_html.fig_finetune(data["finetune"]).axes[0].get_lines()[0]
    assert list(line.get_ydata()) == [0.5, 0.75]


def test_report_modules_import_neither_torch_nor_beam():
    code = (
        "import sys, bertprep.report.cli; "
        "sys.exit(any(m in sys.modules for m in ('torch', 'apache_beam')))"
    )
    res = proc.run([sys.executable, "-c", code], cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]


def test_not_a_run_dir_is_a_user_error(tmp_path, capsys):
    with pytest.raises(UserError, match="not a bertprep run directory"):
        report_data.gather(tmp_path)
    with pytest.raises(UserError, match="not a directory"):
        report_data.gather(tmp_path / "nope")
    (tmp_path / "docs").mkdir()
    with pytest.raises(UserError, match="no metrics.jsonl"):
        report_data.gather(tmp_path, train_dirs=[str(tmp_path)])
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "metrics.jsonl").write_text("{not json\n")
    with pytest.raises(UserError, match="not JSON"):
        report_data.gather(tmp_path, train_dirs=[str(tmp_path / "t")])
