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
