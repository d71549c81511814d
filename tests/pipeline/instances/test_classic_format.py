"""The classic create_pretraining_data.py input: a sentence per line, blank line between docs."""

from __future__ import annotations

import pytest

from ground.errors import UserError
from pipeline.common.records import CORPUS, doc_id
from pipeline.instances.classic_format import read_documents, read_file, write_documents


def test_read_documents_blank_lines_and_ids():
    lines = ["  First sentence.\n", "Second one.\n", "\n", "\n", "  \n", "Doc two.\r\n", "\n"]
    docs = list(read_documents(lines, "dir/input.txt"))
    assert docs == [
        (doc_id(CORPUS, "dir/input.txt", 0), ["First sentence.", "Second one."]),
        (doc_id(CORPUS, "dir/input.txt", 1), ["Doc two."]),
    ]
    assert list(read_documents([], "x")) == [] and list(read_documents(["\n"], "x")) == []


def test_round_trip_real_text(corpus_dir, tmp_path):
    paras = (corpus_dir / "books" / "1661.txt").read_text(encoding="utf-8").split("\n\n")
    docs = [[ln.strip() for ln in p.splitlines() if ln.strip()] for p in paras]
    docs = [d for d in docs if d][:200]
    out = tmp_path / "classic.txt"
    write_documents(docs, str(out))
    back = list(read_file(str(out)))
    assert [s for _, s in back] == docs
    assert len({i for i, _ in back}) == len(docs)
    assert list(tmp_path.iterdir()) == [out]  # no temp file left behind


def test_bad_input_is_a_user_error(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        list(read_file(str(bad)))
    with pytest.raises(UserError, match="cannot read"):
        list(read_file(str(tmp_path / "missing.txt")))
    with pytest.raises(ValueError):
        write_documents([["two\nlines"]], str(tmp_path / "x.txt"))
    assert not (tmp_path / "x.txt").exists()
