"""A fast, faithful Punkt sentence splitter (:class:`PunktSplitter`) and its patterns.

:class:`PunktSplitter` re-implements the sentence-boundary decision of NLTK's
``PunktSentenceTokenizer.sentences_from_text`` (``realign_boundaries=True``, what
``nltk.sent_tokenize`` does) on the same parameters, and gives the same sentences. It is
faster because it only looks at candidate boundaries, keeps no token objects, and caches two
things: the per-token-type facts (first-pass annotation, type, initial, case) and the
decision for each distinct candidate context (the word before a ``.?!``, the mark, and what
follows). The steps mirror nltk 3.10.4 ``nltk/tokenize/punkt.py``:

1. ``_period_context_re`` finds each ``.``, ``?`` or ``!`` followed by other punctuation
   or by whitespace and a token (``_match_potential_end_contexts``);
2. the word before it is found by the last ASCII whitespace, and overlapping candidates
   (``!!!``) keep only the last one, exactly as NLTK does;
3. the context is tokenised with Punkt's word regex and annotated: first pass
   (sentence-end marks, ellipses, known abbreviations), second pass (collocations,
   orthographic heuristic, frequent sentence starters, initials and numbers); a boundary is
   a context with a sentence break on any token but the last (``text_contains_sentbreak``);
4. closing quotes and brackets after a boundary move to the previous sentence
   (``_realign_boundaries``).

NLTK compiles its patterns with the third-party ``regex`` engine (via ``nltk.redos``), whose
Unicode classes (``\\w``, ``\\s``, ``\\d``) differ from ``re``'s: the token patterns (``\\d``,
``\\W``) are compiled with ``regex``; the text-level ones need only ``\\s``/``\\S`` and run on
the faster stdlib ``re`` with ``regex``'s whitespace set spelled out (``REGEX_WHITESPACE``).

Offsets from :meth:`PunktSplitter.spans` are character (code point) indices into the text.
The CJK splitter, ``get_splitter`` and the document function are in :mod:`pipeline.segment.segment`.
"""

from __future__ import annotations

import re

import regex

from pipeline.segment.punkt_params import PunktParams

# --- NLTK's PunktLanguageVars / PunktToken patterns (nltk 3.10.4), same text and flags ----
SENT_END_CHARS = (".", "?", "!")
_NON_WORD = r"(?:[)\";}\]\*:@\'\({\[\u2018\u2019\u201c\u201d\xab\xbb!\?])"
_MULTI_CHAR = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)"
_WORD_START = r"[^\(\"\`{\[:;&\#\*@\)}\]\-,]"
WORD_TOKENIZE_PATTERN = r"""(
        %(MultiChar)s
        |
        (?=%(WordStart)s)\S+?  # Accept word characters until end is found
        (?= # Sequences marking a word's end
            \s|                                 # White-space
            $|                                  # End-of-string
            %(NonWord)s|%(MultiChar)s|          # Punctuation
            ,(?=$|\s|%(NonWord)s|%(MultiChar)s) # Comma if at end of word
        )
        |
        \S
    )""" % {"NonWord": _NON_WORD, "MultiChar": _MULTI_CHAR, "WordStart": _WORD_START}  # noqa: UP031
PERIOD_CONTEXT_PATTERN = r"""
        %(SentEndChars)s             # a potential sentence ending
        (?=(?P<after_tok>
            %(NonWord)s              # either other punctuation
            |
            \s+(?P<next_tok>\S+)     # or whitespace and some other token
        ))""" % {"NonWord": _NON_WORD, "SentEndChars": r"[\.\?!]"}  # noqa: UP031
REALIGN_PATTERN = r'["\')\]}\u2018\u2019\u201c\u201d\xab\xbb]+?(?:\s+|(?=--)|$)'


# The whitespace that ``regex`` (what NLTK runs) matches with ``\s``: Unicode White_Space.
# Python's ``re`` also matches \x1c-\x1f, so we spell the class out and use the faster
# stdlib engine for the patterns that need nothing but ``\s``/``\S`` (checked in the tests
# over every code point).
_WS_CANDIDATES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
REGEX_WHITESPACE = "".join(c for c in _WS_CANDIDATES if regex.match(r"\s", c))
_WS_CLASS = "".join(f"\\u{ord(c):04x}" for c in REGEX_WHITESPACE)


def _with_regex_whitespace(pattern: str) -> str:
    r"""``pattern`` with ``\s``/``\S`` replaced by the explicit ``regex`` whitespace class."""
    return pattern.replace(r"\S", f"[^{_WS_CLASS}]").replace(r"\s", f"[{_WS_CLASS}]")


_WORD_RE = re.compile(_with_regex_whitespace(WORD_TOKENIZE_PATTERN), re.VERBOSE)
_PERIOD_CONTEXT_RE = re.compile(_with_regex_whitespace(PERIOD_CONTEXT_PATTERN), re.VERBOSE)
_REALIGN_RE = re.compile(_with_regex_whitespace(REALIGN_PATTERN), re.MULTILINE)
# Token-level patterns use \d and \W, whose Unicode sets differ between the engines: keep
# ``regex`` (their results are cached per token type anyway).
_RE_ELLIPSIS = regex.compile(r"\.\.+$")
_RE_NUMERIC = regex.compile(r"^-?[\.,]?\d[\d,\.-]*\.?$")
_RE_INITIAL = regex.compile(r"[^\W\d]\.$", regex.UNICODE)
_REALIGN_FIRST = frozenset("\"')]}\u2018\u2019\u201c\u201d\xab\xbb")
_PUNCTUATION = frozenset(";:,.!?")  # PunktSentenceTokenizer.PUNCTUATION (single chars)
_ASCII_WS = " \t\n\r\x0b\x0c"  # string.whitespace, used by NLTK's _get_last_whitespace_index

# Orthographic context flags (NLTK's _ORTHO_*).
_BEG_UC, _MID_UC, _UNK_UC, _BEG_LC, _MID_LC, _UNK_LC = (1 << i for i in range(1, 7))
_ORTHO_UC = _BEG_UC | _MID_UC | _UNK_UC
_ORTHO_LC = _BEG_LC | _MID_LC | _UNK_LC

# First-pass annotation of a token.
_NONE, _BREAK, _ABBR, _ELLIPSIS = 0, 1, 2, 3
_UNKNOWN = "unknown"
# Contexts longer than this are decided but not cached (a pathological run of text).
_CACHE_MAX_KEY = 256
_CACHE_MAX_ENTRIES = 200_000  # per cache; cleared when full (memory bound, ~50 MB)


class PunktSplitter:
    """Splits one text into sentences exactly like ``PunktSentenceTokenizer`` with ``params``.

    ``splitter(text) -> list[str]``; :meth:`spans` gives ``(start, end)`` character offsets.
    Instances are picklable (the caches are rebuilt), so a Beam DoFn can hold one.
    """

    def __init__(self, params: PunktParams, language: str = "english"):
        self.params = params
        self.language = language
        self._abbrevs = params.abbrev_types
        self._collocs = params.collocations
        self._starters = params.sent_starters
        self._ortho = params.ortho_context
        self._tok_cache: dict[str, tuple] = {}
        self._ctx_cache: dict[str, bool] = {}

    def __reduce__(self):
        return (PunktSplitter, (self.params, self.language))

    def __call__(self, text: str) -> list[str]:
        return [text[s:e] for s, e in self.spans(text)]

    # -- token facts (cached per token string) ----------------------------------------------
    def _token(self, tok: str) -> tuple:
        """(first-pass mark, period_final, type, type_no_period, initial, upper, lower, punct)."""
        info = self._tok_cache.get(tok)
        if info is not None:
            return info
        period_final = tok.endswith(".")
        if tok in SENT_END_CHARS:
            mark = _BREAK
        elif _RE_ELLIPSIS.match(tok):
            mark = _ELLIPSIS
        elif period_final and not tok.endswith(".."):
            low = tok[:-1].lower()
            if low in self._abbrevs or low.split("-")[-1] in self._abbrevs:
                mark = _ABBR
            else:
                mark = _BREAK
        else:
            mark = _NONE
        typ = _RE_NUMERIC.sub("##number##", tok.lower())
        typ_np = typ[:-1] if len(typ) > 1 and typ[-1] == "." else typ
        first = tok[0]
        info = (
            mark,
            period_final,
            typ,
            typ_np,
            _RE_INITIAL.match(tok) is not None,
            first.isupper(),
            first.islower(),
            tok in _PUNCTUATION,
        )
        if len(self._tok_cache) >= _CACHE_MAX_ENTRIES:
            self._tok_cache.clear()
        self._tok_cache[tok] = info
        return info

    def _ortho_heuristic(self, tok2: tuple, next_typ: str):
        """True / False / "unknown": does the token start a sentence (NLTK 4.1.1)."""
        if tok2[7]:
            return False
        ctx = self._ortho.get(next_typ, 0)
        if tok2[5] and (ctx & _ORTHO_LC) and not (ctx & _MID_UC):
            return True
        if tok2[6] and ((ctx & _ORTHO_UC) or not (ctx & _BEG_LC)):
            return False
        return _UNKNOWN

    def _is_break(self, tok1: tuple, tok2: tuple) -> bool:
        """Sentence break on ``tok1`` after NLTK's second pass, ``tok2`` following it."""
        mark = tok1[0]
        if not tok1[1]:  # only period-final tokens are reconsidered
            return mark == _BREAK
        typ = tok1[3]
        next_typ = tok2[3] if tok2[0] == _BREAK else tok2[2]
        initial = tok1[4]
        if (typ, next_typ) in self._collocs:  # 4.1.2 collocation
            return False
        if (mark == _ABBR or mark == _ELLIPSIS) and not initial:  # 4.2
            if self._ortho_heuristic(tok2, next_typ) is True:
                return True
            if tok2[5] and next_typ in self._starters:  # 4.1.3 frequent starter
                return True
        if initial or typ == "##number##":  # 4.3 initials and ordinals
            ortho = self._ortho_heuristic(tok2, next_typ)
            if ortho is False:
                return False
            if (
                ortho == _UNKNOWN
                and initial
                and tok2[5]
                and not (self._ortho.get(next_typ, 0) & _ORTHO_LC)
            ):
                return False
        return mark == _BREAK

    def _contains_break(self, context: str) -> bool:
        """NLTK's ``text_contains_sentbreak``: a break on any token but the last."""
        if "\n" in context:
            toks = []
            for line in context.split("\n"):
                if line.strip():
                    toks.extend(_WORD_RE.findall(line))
        else:
            toks = _WORD_RE.findall(context) if context.strip() else []
        token = self._token
        is_break = self._is_break
        prev = None
        for tok in toks:
            info = token(tok)
            if prev is not None and is_break(prev, info):
                return True
            prev = info
        return False

    # -- the text-level walk ------------------------------------------------------------------
    def _breaks(self, text: str) -> list[tuple[int, int]]:
        """Sentence slices before realignment (NLTK's ``_slices_from_text``)."""
        if "\t" in text or "\n" in text or "\r" in text or "\x0b" in text or "\x0c" in text:

            def last_ws(lo: int, hi: int) -> int:
                return max(text.rfind(c, lo, hi) for c in _ASCII_WS)

        else:

            def last_ws(lo: int, hi: int) -> int:
                return text.rfind(" ", lo, hi)

        cache = self._ctx_cache
        decide = self._contains_break
        slices = []

        def settle(cand, ctx_start: int, last: int) -> int:
            """Decide candidate ``cand``; on a break, record the slice. Returns the new start."""
            context = text[ctx_start : cand.end(1)]
            decision = cache.get(context)
            if decision is None:
                decision = self._remember(context, decide(context))
            if not decision:
                return last
            end = cand.end()
            slices.append((last, end))
            nxt = cand.start(2)
            return nxt if nxt >= 0 else end

        last_break = 0
        # The last candidate, not yet decided: NLTK drops it if the next one's word overlaps.
        pending = None
        prev_start = prev_stop = 0
        for m in _PERIOD_CONTEXT_RE.finditer(text):
            ms = m.start()
            ws = last_ws(prev_stop, ms)
            # NLTK treats "not found" and "found at offset 0" alike (keeps the old start).
            start = ws + 1 if ws > prev_stop else prev_start
            if pending is not None and prev_stop <= start:
                last_break = settle(pending, prev_start, last_break)
            pending = m
            prev_start, prev_stop = start, ms
        if pending is not None:
            last_break = settle(pending, prev_start, last_break)
        slices.append((last_break, len(text.rstrip())))
        return slices

    def _remember(self, context: str, decision: bool) -> bool:
        if len(context) <= _CACHE_MAX_KEY:
            if len(self._ctx_cache) >= _CACHE_MAX_ENTRIES:
                self._ctx_cache.clear()
            self._ctx_cache[context] = decision
        return decision

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) offsets of the sentences of ``text``, NLTK's ``span_tokenize``."""
        if "." not in text and "?" not in text and "!" not in text:
            end = len(text.rstrip())  # no candidate: one sentence (or none)
            return [(0, end)] if end else []
        slices = self._breaks(text)
        out = []
        realign = 0
        last = len(slices) - 1
        for i, (s1, e1) in enumerate(slices):
            s1 += realign
            if i == last:
                if s1 < e1:
                    out.append((s1, e1))
                break
            s2, e2 = slices[i + 1]
            m = None
            if s2 < e2 and text[s2] in _REALIGN_FIRST:
                m = _REALIGN_RE.match(text, s2, e2)
            if m is not None:
                out.append((s1, s2 + len(m.group(0).rstrip())))
                realign = m.end() - s2
            else:
                realign = 0
                if s1 < e1:
                    out.append((s1, e1))
        return out
