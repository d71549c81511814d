from pipeline.common import textnorm


def test_normalize_nfc_and_spaces():
    # "e" + combining acute -> precomposed; NBSP, tabs and zero-width chars disappear.
    raw = "Cafe\u0301\u00a0 au\tlait\u200b  \u2028 noir "
    assert textnorm.normalize(raw) == "Caf\u00e9 au lait noir"


def test_unwrap_joins_hard_wraps_and_splits_paragraphs():
    text = "It was the best\r\nof times.\r\n\r\n\r\nIt was the worst\nof times.\n"
    assert textnorm.unwrap(text) == ["It was the best of times.", "It was the worst of times."]


def test_headings_detected():
    assert textnorm.is_heading("CHAPTER I.")
    assert textnorm.is_heading("Stave One")
    assert textnorm.is_heading("Early life")
    assert textnorm.is_heading("THE END")
    assert not textnorm.is_heading("It is a truth universally acknowledged.")
    assert not textnorm.is_heading("“Why, my dear, you must know.”")


def test_join_paragraphs_drops_headings_unless_kept():
    paras = ["Chapter 1", "Call me Ishmael.", "Some years ago, never mind how long."]
    assert (
        textnorm.join_paragraphs(paras) == "Call me Ishmael.\nSome years ago, never mind how long."
    )
    assert textnorm.join_paragraphs(paras, keep_headings=True).split("\n")[0] == "Chapter 1"
