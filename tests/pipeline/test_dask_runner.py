"""Every stage on Beam's DaskRunner, against a real dask.distributed cluster (two worker
processes), writes the same bytes as the FnApiRunner.

One ``bertprep build`` per runner over small real inputs that reach every branch: a book
copied under a second name (dedup drops a real duplicate), a bundled Wikipedia sample plus a
dump in three parts whose Template pages the others use (``--expand-templates``: the
definitions cross units), through segment, vocab and both instance phases. Then the cluster's
task stream shows that both workers ran tasks of the run (one work unit per partition).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bertprep.cli import main as bertprep
from tests.pipeline.extract.test_extract_stage import _template_parts

distributed = pytest.importorskip("distributed", reason="the dask extra: pip install .[dask]")

pytestmark = pytest.mark.slow
TINYWIKI = "dumpster-dive_tinywiki-latest-pages-articles.xml"


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes, 1 thread each: the smallest real cluster."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as c:
        yield c


@pytest.fixture(scope="module")
def inputs(corpus_dir, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("dask-inputs")
    books = tmp / "books"
    books.mkdir()
    shutil.copy(corpus_dir / "books" / "1952-0.txt", books / "wallpaper.txt")
    shutil.copy(corpus_dir / "books" / "1952-0.txt", books / "wallpaper-copy.txt")
    shutil.copy(corpus_dir / "books" / "11-0.txt", books / "alice.txt")
    wiki = _template_parts(tmp)  # part1.xml, part2.xml.bz2, part3.xml
    shutil.copy(corpus_dir / "wikipedia" / TINYWIKI, wiki / TINYWIKI)
    return books, wiki


def _build(inputs, run: Path, beam_args: list[str]) -> None:
    books, wiki = inputs
    args = ["build", "--books", str(books), "--wikipedia", str(wiki / "*"), "--output", str(run)]
    args += ["--expand-templates", "--min-words", "0", "--vocab-size", "1000"]
    args += ["--dupe-factor", "1", "--num-shards", "2", "--group-tokens", "5000"]
    assert bertprep(args + beam_args) == 0


def _hashes(run: Path) -> dict[str, str]:
    """sha256 of every output file; RUN/report.json (wall seconds) and RUN/tmp left out."""
    out = {}
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        rel = path.relative_to(run).as_posix()
        if rel != "report.json" and not rel.startswith("tmp/"):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _docs(run: Path) -> list[dict]:
    rows = []
    for f in sorted((run / "docs").glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def test_build_on_dask_is_byte_identical_to_fnapi(inputs, cluster, tmp_path):
    _build(inputs, tmp_path / "fnapi", [])
    with distributed.Client(cluster) as client:
        client.get_task_stream()  # start recording on the scheduler
        start = time.time()
        address = ["--dask_client_address", cluster.scheduler_address]
        _build(inputs, tmp_path / "dask", ["--runner", "dask", *address])
        tasks = client.get_task_stream(start=start)
    want, got = _hashes(tmp_path / "fnapi"), _hashes(tmp_path / "dask")
    assert got == want
    names = set(want)
    # every stage's outputs are there, including the ones a half-run pipeline lost
    assert {"seq128/manifest.json", "seq512/manifest.json", "vocab/vocab.txt"} <= names
    assert any(n.endswith(".dup.parquet") for n in names)  # the copied book, rejected
    texts = {r["title"]: r["text"] for r in _docs(tmp_path / "dask")}
    assert texts["Alpha"] == "Alpha was born 1900 in a village by the sea."  # part1's template
    assert texts["Person 2"] == "Person 2 was born 1952 and is famous as of 2018."  # across parts
    assert sum(n.startswith("sentences/") for n in names) >= 6
    assert len({t["worker"] for t in tasks}) == 2  # the work was spread over both workers
