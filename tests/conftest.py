"""Shared fixtures: paths to the corpus bundled in the repo and to ../shared when present."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
SHARED = ROOT.parent / "shared" / "corpora"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The small real corpus shipped in the repo (corpus/, see corpus/ATTRIBUTION.md)."""
    return CORPUS


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared/corpora: the full shared corpus; tests that need it fail loudly without it."""
    assert SHARED.is_dir(), f"{SHARED} is missing: CI always provides ../shared beside the clone"
    return SHARED


TWO_BOOKS = ("1952-0.txt", "11-0.txt")  # The Yellow Wallpaper (LF) and Alice (UTF-8 + BOM)


@pytest.fixture(scope="session")
def two_books(tmp_path_factory) -> Path:
    """A directory holding two bundled books: the small real input of the stage tests.

    Shared by the whole session: tests read it and must not write into it.
    """
    d = tmp_path_factory.mktemp("two-books")
    for name in TWO_BOOKS:
        (d / name).write_bytes((CORPUS / "books" / name).read_bytes())
    return d
