"""Record types at the extraction boundary and the document id rule.

A source reader (Wikipedia, books, corpora) turns one input file into a stream of
:class:`Document` (kept) and :class:`Dropped` (skipped or rejected, with a reason). Nothing is
lost silently: every input document becomes exactly one of the two.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Source kinds: the first component of every document id.
WIKIPEDIA = "wikipedia"
BOOKS = "books"
CORPUS = "corpus"

SKIPPED = "skipped"  # not a document by definition: redirects, other namespaces
REJECTED = "rejected"  # a document we refused: too short, too large, duplicate, failed to clean


def doc_id(source: str, relpath: str, key: str | int) -> str:
    """Stable 64-bit document id as 16 hex characters.

    Args:
        source: source kind (``wikipedia``, ``books``, ``corpus``).
        relpath: path of the file relative to its input root, ``/``-separated, so a ``gs://``
            run and a local run over the same files give the same ids.
        key: page id (Wikipedia), line or record number (corpora), ``""`` for a whole-file book.
    """
    raw = f"{source}\x00{relpath}\x00{key}".encode()
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Document:
    """One clean document.

    ``text`` holds paragraphs separated by ``"\\n"``; each paragraph is one line of NFC text
    with single spaces. ``page_id`` is the MediaWiki page id, or -1 for other sources.
    """

    id: str
    source: str
    path: str
    title: str
    text: str
    page_id: int = -1


@dataclass(frozen=True)
class Dropped:
    """An input document that did not become a :class:`Document`.

    ``kind`` is :data:`SKIPPED` or :data:`REJECTED`; ``reason`` is a short snake_case key
    (``redirect``, ``namespace``, ``too_short``, ``too_large``, ``duplicate``,
    ``clean_error``...); ``detail`` is free text for humans (an exception message, a size).
    """

    id: str
    source: str
    path: str
    title: str
    kind: str
    reason: str
    detail: str = ""
