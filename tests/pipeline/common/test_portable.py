"""The runner-portable building blocks: their pure functions, and each transform on the
FnApiRunner (the Dask side runs in tests/pipeline/test_dask_runner.py)."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing import test_pipeline  # not TestPipeline: pytest would collect it
from apache_beam.testing.util import assert_that, equal_to

from pipeline.common import portable

RUNNER = "FnApiRunner"  # TestPipeline's default DirectRunner first tries Prism (a download)


def test_pure_functions():
    assert list(portable.select(("a", 1), "a")) == [1]
    assert list(portable.select(("b", 1), "a")) == []
    group = (None, [portable.keyed_for_collect(3)[1], ("seed", None), ("item", None)])
    assert portable.collected(group) == [3, None]  # a None element is kept, the seed is not
    assert portable.keyed_by("unit-7", str.upper) == ("UNIT-7", "unit-7")
    assert list(portable.ungrouped(("k", iter([1, 2])))) == [1, 2]


def test_split_by_tag_keeps_each_tag_apart():
    pairs = [("hash", 1), ("counts", "a"), ("hash", 2), ("other", 9)]
    with test_pipeline.TestPipeline(runner=RUNNER) as p:
        split = p | beam.Create(pairs) | portable.SplitByTag("hash", "counts")
        assert_that(split["hash"], equal_to([1, 2]), label="Hashes")
        assert_that(split["counts"], equal_to(["a"]), label="Counts")


def test_collect_emits_one_list_even_when_empty():
    with test_pipeline.TestPipeline(runner=RUNNER) as p:
        full = p | "Full" >> beam.Create([3, 1, 2]) | "CollectFull" >> portable.Collect()
        empty = p | "Empty" >> beam.Create([]) | "CollectEmpty" >> portable.Collect()
        assert_that(full | beam.Map(sorted), equal_to([[1, 2, 3]]), label="FullList")
        assert_that(empty, equal_to([[]]), label="EmptyList")


def test_spread_keeps_every_element_once():
    items = [f"unit-{i}" for i in range(20)]
    with test_pipeline.TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create(items) | portable.Spread(lambda s: s)
        assert_that(out, equal_to(items))
