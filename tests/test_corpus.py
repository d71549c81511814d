"""The data bundled in the repo: every file is listed in corpus/ATTRIBUTION.md with its sha256,
and (marked shared) every bundled copy is its ../shared/corpora original, compressed or cut as
ATTRIBUTION.md says."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import random
import re

import pytest

from tests.conftest import CORPUS, ROOT


def attributed() -> dict[str, str]:
    """{path from the repo root: sha256}, the sha256 block of corpus/ATTRIBUTION.md."""
    text = (CORPUS / "ATTRIBUTION.md").read_text(encoding="utf-8")
    return {m[2]: m[1] for m in re.finditer(r"^([0-9a-f]{64})  (\S+)$", text, re.MULTILINE)}


def test_every_bundled_file_is_attributed_with_its_sha256():
    listed = attributed()
    assert len(listed) >= 30
    on_disk = {p.relative_to(ROOT).as_posix() for p in CORPUS.rglob("*") if p.is_file()}
    missing = on_disk - set(listed) - {"corpus/ATTRIBUTION.md"}
    assert not missing, f"bundled but not in corpus/ATTRIBUTION.md: {sorted(missing)}"
    for rel, digest in listed.items():
        assert hashlib.sha256((ROOT / rel).read_bytes()).hexdigest() == digest, rel


def original(rel: str) -> str:
    """The ../shared/corpora file a bundled file (path from the repo root) was taken from."""
    name = rel.rsplit("/", 1)[1]
    if rel.startswith("pipeline/segment/data/punkt_tab/"):
        return f"nltk_data/tokenizers/punkt_tab/english/{name}"
    if rel.startswith("corpus/books/"):
        return f"books/gutenberg/{name}"
    if rel == "corpus/GUTENBERG-LICENSE.txt":
        return "books/GUTENBERG-LICENSE.txt"
    if rel == "corpus/finetune/glue-sst2-train-8k.tsv":
        return "glue/SST-2/train.tsv"
    if rel == "corpus/testdata/squad/dev-v1.1-slice.json":
        return "squad/dev-v1.1.json"
    rel = rel.removeprefix("corpus/").removeprefix("testdata/")
    if rel.startswith("wikitext-en"):  # the json and bz2 forms come from the plain slices
        return re.sub(r"^wikitext-en-(json|bz2)/", "wikitext-en/", rel).removesuffix(".bz2")
    if rel.startswith("books/gutenberg/"):
        return rel.removesuffix(".bz2")
    rel = re.sub(r"-first-\d+\.jsonl\.gz$", ".jsonl.gz", rel)  # snli/snli_1.0_dev-first-100
    return re.sub(r"/train-first-\d+\.tsv$", "/train.tsv", rel)


def wikiextractor_json(plain: bytes) -> bytes:
    """``<doc>`` blocks as ``wikiextractor --json`` writes them (one object per line, the text
    without the title line and the blank lines around it; no ``revid``: plain output has none)."""
    out = []
    doc = re.compile(rb'<doc id="([^"]*)" url="([^"]*)" title="([^\n]*)">\n(.*?)\n</doc>\n', re.S)
    for m in doc.finditer(plain):
        ident, url, title = (g.decode() for g in m.groups()[:3])
        title_line, blank, *text, last = m[4].decode().split("\n")
        assert (title_line, blank, last) == (title, "", ""), m[0][:200]
        record = {"id": ident, "url": url, "title": title, "text": "\n".join(text)}
        out.append(json.dumps(record).encode() + b"\n")
    return b"".join(out)


def is_slice(part: bytes, whole: bytes) -> bool:
    """Whether ``part`` is a run of whole lines of ``whole``."""
    at = whole.find(part)
    return part.endswith(b"\n") and at >= 0 and (at == 0 or whole[at - 1 : at] == b"\n")


def squad_slice(data: dict) -> dict:
    """The SQuAD slice ATTRIBUTION.md names: the first 4 articles, the first 8 paragraphs of
    each, the first question of each paragraph, every field as in the file."""
    return {
        "version": data["version"],
        "data": [
            {
                "title": a["title"],
                "paragraphs": [
                    {"context": p["context"], "qas": p["qas"][:1]} for p in a["paragraphs"][:8]
                ],
            }
            for a in data["data"][:4]
        ],
    }


@pytest.mark.shared
def test_bundled_copies_are_the_shared_files(shared_dir):
    for rel in attributed():
        bundled, source = (ROOT / rel).read_bytes(), (shared_dir / original(rel)).read_bytes()
        if "/wikitext-en" in rel:  # a slice of WikiExtractor output, as is, bz2 or --json
            plain = ROOT / rel.replace("-bz2/", "/").replace("-json/", "/").removesuffix(".bz2")
            assert is_slice(plain.read_bytes(), source), rel
            if rel.endswith(".bz2"):
                assert bz2.decompress(bundled) == plain.read_bytes(), rel
            elif "-json/" in rel:
                assert bundled == wikiextractor_json(plain.read_bytes()), rel
        elif rel.endswith(".txt.bz2"):  # a book compressed for the repo
            assert bz2.decompress(bundled) == source, rel
        elif m := re.search(r"/train-first-(\d+)\.tsv$", rel):  # the header and first N rows
            assert (
                bundled.splitlines(keepends=True)
                == source.splitlines(keepends=True)[: int(m[1]) + 1]
            ), rel
        elif m := re.search(r"-first-(\d+)\.jsonl\.gz$", rel):  # the first N lines, gzipped
            lines = gzip.decompress(source).splitlines(keepends=True)
            assert gzip.decompress(bundled) == b"".join(lines[: int(m[1])]), rel
        elif rel.endswith("glue-sst2-train-8k.tsv"):  # the seeded sample ATTRIBUTION.md names
            header, *rows = source.splitlines(keepends=True)
            random.Random(20261205).shuffle(rows)
            assert bundled == b"".join([header, *rows[:8000]]), rel
        elif rel.endswith("squad/dev-v1.1-slice.json"):
            assert json.loads(bundled) == squad_slice(json.loads(source)), rel
        else:
            assert bundled == source, rel
