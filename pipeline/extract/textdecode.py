"""Bytes of a plain-text file of unknown encoding -> text (:func:`decode_text`).

UTF-8 with stray bytes repaired one by one, or a whole-file legacy fallback; binary garbage is
refused (:class:`BinaryFileError`). Used for books (:mod:`pipeline.extract.books`).

Decoding rule (why not "try UTF-8, else re-decode everything"): one stray cp1252 byte in a
UTF-8 book would otherwise turn every curly quote of the book into mojibake. The bytes are
decoded as UTF-8 with ``surrogateescape``, which maps each invalid byte, one by one, to a lone
surrogate U+DC80..U+DCFF (valid UTF-8 never yields one). Let ``bad`` be those bytes and
``multi`` the correctly decoded non-ASCII characters. If ``bad > multi`` the file is clearly not
UTF-8 (a legacy file has almost no valid multi-byte sequences) and the whole file is decoded as
windows-1252; otherwise each bad byte is repaired alone. Both use the same byte table: cp1252,
with latin-1 for the 5 bytes cp1252 leaves undefined (0x81 0x8D 0x8F 0x90 0x9D), as WHATWG's
windows-1252 does; so ASCII text with a few high bytes gives the same result either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UTF8_BOM = b"\xef\xbb\xbf"
# A NUL in the first 8 KiB marks a binary file (the rule git and grep use).
BINARY_SNIFF_BYTES = 8192
# C0 control bytes except \t \n \v \f \r, plus DEL: plain text (of any legacy encoding) has
# almost none; binary data has about 11%. UTF-16 without a BOM has NULs and counts as binary.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
# More than 1% control bytes is binary.
MAX_CONTROL_RATIO = 0.01
_HIGH_BYTES = bytes(range(0x80, 0x100))


def _byte_char(b: int) -> str:
    try:
        return bytes([b]).decode("cp1252")
    except UnicodeDecodeError:  # the 5 bytes cp1252 leaves undefined
        return bytes([b]).decode("latin-1")


# Index b - 0x80 -> the character that byte b stands for in a legacy (windows-1252) file.
_LEGACY = [_byte_char(b) for b in range(0x80, 0x100)]
_LEGACY_TABLE = {0x80 + i: c for i, c in enumerate(_LEGACY)}  # str.translate over latin-1
_ESCAPED = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class DecodeStats:
    """How a file's bytes became text.

    ``encoding``: ``utf-8``, ``utf-8-sig`` (BOM), ``utf-16`` (BOM) or ``windows-1252`` (whole-file
    fallback). ``invalid_bytes``: bytes that were not valid UTF-8. ``repaired_bytes``: of those,
    the ones repaired one by one inside a UTF-8 file (0 after a whole-file fallback).
    """

    encoding: str
    invalid_bytes: int = 0
    repaired_bytes: int = 0


class BinaryFileError(ValueError):
    """The bytes are not text (NUL bytes or too many control bytes)."""


def _repair(match: re.Match[str]) -> str:
    return _LEGACY[ord(match.group()) - 0xDC80]


def decode_text(raw: bytes) -> tuple[str, DecodeStats]:
    """Decode a text file's bytes; see the module docstring for the rule.

    Returns the text (BOM removed, line ends untouched) and its :class:`DecodeStats`.
    Raises :class:`BinaryFileError` for binary data, :class:`UnicodeDecodeError` for a UTF-16
    file (BOM) that is not valid UTF-16.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), DecodeStats("utf-16")
    if b"\x00" in raw[:BINARY_SNIFF_BYTES]:
        raise BinaryFileError("NUL bytes")
    controls = len(raw) - len(raw.translate(None, _CONTROL_BYTES))
    if raw and controls / len(raw) > MAX_CONTROL_RATIO:
        raise BinaryFileError(f"{controls} control bytes in {len(raw)}")
    encoding = "utf-8"
    if raw.startswith(UTF8_BOM):
        raw, encoding = raw[len(UTF8_BOM) :], "utf-8-sig"
    text = raw.decode("utf-8", errors="surrogateescape")
    ascii_bytes = len(raw.translate(None, _HIGH_BYTES))
    if ascii_bytes == len(text):  # every byte decoded to one character: plain ASCII
        return text, DecodeStats(encoding)
    bad = len(_ESCAPED.findall(text))
    if bad == 0:
        return text, DecodeStats(encoding)
    multi = len(text) - ascii_bytes - bad
    if bad > multi:
        legacy = raw.decode("latin-1").translate(_LEGACY_TABLE)
        return legacy, DecodeStats("windows-1252", invalid_bytes=bad)
    repaired, n = _ESCAPED.subn(_repair, text)
    return repaired, DecodeStats(encoding, invalid_bytes=bad, repaired_bytes=n)
