"""Faster equivalents of wikiextractor's hottest functions, same output (tested page for page).

Profiling ``bertprep extract`` on the wp2txt sample put about half of wikiextractor's cleaning
time in two places: splitting the arguments of template calls that, with no definitions, only
expand to ``""``; and ``replaceInternalLinks``, which re-enters ``findBalanced`` (two
``re.compile`` lookups and a generator) for every link. This module keeps wikiextractor's
semantics and skips the work whose result is known:

* :func:`is_plain_call`: a template call wikiextractor would expand to ``""`` when no template
  is defined (``pipeline.extract.wiki.clean`` then returns ``""`` without splitting its arguments).
* :func:`replace_internal_links`: ``replaceInternalLinks`` with one ``finditer`` pass over the
  ``[[``/``]]`` tokens (shared with its unclosed-link pass) and no inner scan of a link that
  holds no nested link.

:func:`install` puts :func:`replace_internal_links` in wikiextractor's module (its ``clean``
looks the name up there). A one-``finditer`` port of ``findMatchingBraces`` was measured
slower than the original (0.22 vs 0.17 CPU-s on the wp2txt sample) and is not used.
``ENABLED = False`` makes every function here defer to the original, which is how the tests
compare both on every article of the real samples.
"""

from __future__ import annotations

import re

from wikiextractor import extract as _wx

ENABLED = True  # False: wikiextractor's own code paths (for equality tests)

# The head (text before the first "|") of a call that can only name a template: no nested
# call, link, parser function (":"), tag, comment or entity that wikiextractor would expand.
_SPECIAL_HEAD = re.compile(r"[{\[:<&]")
_LINK_TOKEN = re.compile(r"\[\[|\]\]")
_original_replace_internal_links = _wx.replaceInternalLinks


def is_plain_call(body: str, magic_words) -> bool:
    """Whether wikiextractor's ``expandTemplate(body)`` is ``""`` when no template is defined.

    With no definitions wikiextractor returns ``""`` for every call that is not a parser
    function, magic word or ``subst:``, after splitting all its arguments. A head free of
    ``{ [ : < &`` is its own title (nothing in it expands, and it ends at the first ``|`` at
    depth 0), so the call is plain when that title is no magic word and not ``subst``.

    Args:
        body: the text between ``{{`` and ``}}``.
        magic_words: the extractor's magic-word table (lower-case names).
    """
    if not ENABLED:
        return False
    bar = body.find("|")
    head = body if bar < 0 else body[:bar]
    if _SPECIAL_HEAD.search(head):
        return False
    title = head.strip()
    return title.lower() not in magic_words and not _wx._SUBST_WORDS_RE.match(title)


def balanced_links(text: str):
    """``(start, end)`` of each outermost balanced ``[[...]]`` in ``text``, in order.

    The same spans as ``findBalanced(text, ["[["], ["]]"])``: a ``]]`` outside any link is
    skipped, an unclosed ``[[`` ends the iteration.
    """
    tokens = [(m.start(), m.group() == "[[") for m in _LINK_TOKEN.finditer(text)]
    return _balanced(tokens)


def _balanced(tokens: list[tuple[int, bool]]):
    depth = start = 0
    for pos, is_open in tokens:
        if is_open:
            if depth == 0:
                start = pos
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                yield start, pos + 2


def _unclosed(tokens: list[tuple[int, bool]]) -> list[int]:
    """Positions of ``[[`` that no ``]]`` closes (``findUnclosedLinkOpenPositions``)."""
    stack = []
    for pos, is_open in tokens:
        if is_open:
            stack.append(pos)
        elif stack:
            stack.pop()
    return stack


def replace_internal_links(text: str, extractor) -> str:
    """wikiextractor's ``replaceInternalLinks``: ``[[title|label]]trail`` -> label + trail.

    One tokenisation serves both of its passes: the unclosed ``[[`` that
    ``neutralizeUnclosedLinkOpens`` replaces by a same-length placeholder, and the balanced
    links (the placeholder holds no bracket, so the other tokens stay where they were).
    """
    if not ENABLED:
        return _original_replace_internal_links(text, extractor)
    text = _wx.collapseDoubledLinkBrackets(text)
    tokens = [(m.start(), m.group() == "[[") for m in _LINK_TOKEN.finditer(text)]
    unclosed = _unclosed(tokens)
    if unclosed:
        parts, cur = [], 0
        for pos in unclosed:
            parts += [text[cur:pos], _wx.LINK_OPEN_PLACEHOLDER]
            cur = pos + 2
        parts.append(text[cur:])
        text = "".join(parts)
        gone = set(unclosed)
        tokens = [t for t in tokens if t[0] not in gone]
    out = []
    cur = 0
    tail = _wx.tailRE.match
    for s, e in _balanced(tokens):
        m = tail(text, e)
        trail, end = (m.group(0), m.end()) if m else ("", e)
        inner = text[s + 2 : e - 2]
        pipe = inner.find("|")
        if pipe < 0:
            title = label = inner
        else:
            title = inner[:pipe].rstrip()
            if "[[" in inner:  # the label follows the last "|" outside nested links
                curp = pipe + 1
                for s1, e1 in balanced_links(inner):
                    last = inner.rfind("|", curp, s1)
                    if last >= 0:
                        pipe = last
                    curp = e1
            label = inner[pipe + 1 :].strip()
        out.append(text[cur:s])
        out.append(_wx.makeInternalLink(title, label, extractor))
        out.append(trail)
        cur = end
    out.append(text[cur:])
    return "".join(out).replace(_wx.LINK_OPEN_PLACEHOLDER, "[[")


def install() -> None:
    """Route wikiextractor's ``clean`` through :func:`replace_internal_links` (idempotent)."""
    _wx.replaceInternalLinks = replace_internal_links
