"""Shared fixtures: paths to the corpus bundled in the repo and to ../shared when present."""

from __future__ import annotations

import bz2
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
# Files of ../shared/corpora that only the tests read, bundled so that `make test` needs nothing
# beside the clone; same layout as ../shared/corpora, books bz2-compressed (corpus/ATTRIBUTION.md).
TESTDATA = CORPUS / "testdata"
SHARED = ROOT.parent / "shared" / "corpora"


def gutenberg(name: str) -> Path:
    """The repo's copy of ../shared/corpora/books/gutenberg/NAME: corpus/books/NAME, else
    corpus/testdata/books/gutenberg/NAME.bz2 (read it with :func:`book_bytes`)."""
    for path in (CORPUS / "books" / name, TESTDATA / "books" / "gutenberg" / f"{name}.bz2"):
        if path.is_file():
            return path
    raise AssertionError(f"{name} is not bundled: a test that needs it must be marked shared")


def book_bytes(path: Path) -> bytes:
    """The bytes of a book file as distributed (a bundled ``.bz2`` copy decompressed)."""
    return bz2.decompress(path.read_bytes()) if path.suffix == ".bz2" else path.read_bytes()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The small real corpus shipped in the repo (corpus/, see corpus/ATTRIBUTION.md)."""
    return CORPUS


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared/corpora: the full shared corpus, for the tests marked ``shared`` only (`make
    test-shared`); they fail loudly without it."""
    assert SHARED.is_dir(), f"{SHARED} is missing: CI always provides ../shared beside the clone"
    return SHARED


def pytest_runtest_setup(item):
    """A test that takes ``shared_dir`` must be marked ``shared``: `make test` deselects those,
    and a fresh clone has no ../shared. Checked even where ../shared exists, as in CI."""
    if "shared_dir" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("shared"):
        pytest.fail(f"{item.nodeid} uses shared_dir but is not marked shared", pytrace=False)


def pytest_terminal_summary(terminalreporter, config):
    """Say so when the `shared` tests were left out (`make test`), as pytest-xdist does not."""
    if config.getoption("markexpr", "") == "not shared":
        terminalreporter.write_line(
            "tests marked shared were deselected: `make test-shared` runs them "
            "(they read ../shared/corpora)"
        )


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
