"""Shared fixtures: paths to the corpus bundled in the repo and to ../shared when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before any test module imports torch, and inherited by every subprocess a test starts:
# one compute thread per process (pytest-xdist already runs one process per core; a machine that
# reports more CPUs than its quota would otherwise oversubscribe it many times over), and no
# library may reach for the network (CI has none; a blackholed connection waits, not fails).
for _name, _value in {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "2",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "MPLBACKEND": "Agg",
}.items():
    os.environ.setdefault(_name, _value)

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
