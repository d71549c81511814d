"""Beam building blocks whose meaning does not depend on the runner.

The stages once leaned on what the FnApiRunner happens to do, and Beam's DaskRunner does
otherwise (``apache_beam/runners/dask``):

- a DoFn's tagged outputs all land in one Dask bag, main output and tags mixed, so every
  consumer of a tag sees the others' elements too. Here a DoFn yields ``(tag, value)``
  pairs on its one output and :class:`SplitByTag` selects each tag with a plain FlatMap.
- a side input is computed again, graph and all, by every partition that reads it (an
  extraction read as a side input ran twice per unit). :class:`Collect` gathers a
  PCollection through a GroupByKey instead of ``ToList``, whose default-value branch is a
  side input, and the stages join with ``CoGroupByKey`` or through files.
- ``Reshuffle`` is a no-op there: what came out of one partition stays in one partition.
  :class:`Spread` redistributes through a GroupByKey, a real shuffle on every runner; Dask
  spreads its keys over the bag's partitions by a hash that is the same in every process.
- only the pipeline's last leaf is computed, and so only the branches that feed it run. A
  stage makes every branch that writes something it needs end in that last step.

Each transform is a few lines of wiring around pure functions, tested on their own.
"""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam

_ITEM, _SEED = "item", "seed"


def select(item, tag: str):
    """The value of a ``(tag, value)`` pair when its tag is ``tag`` (for a FlatMap)."""
    found, value = item
    if found == tag:
        yield value


def keyed_for_collect(value):
    """One element, under the single key every element of a :class:`Collect` shares."""
    return None, (_ITEM, value)


def collected(group) -> list:
    """The elements of a :class:`Collect` group, the seed that makes it exist left out."""
    _, pairs = group
    return [value for kind, value in pairs if kind == _ITEM]


def keyed_by(value, key: Callable):
    """``(key(value), value)``: a :class:`Spread` element."""
    return key(value), value


def ungrouped(group):
    """Every value of a ``(key, values)`` group, in the order grouping gave them."""
    _, values = group
    yield from values


class SplitByTag(beam.PTransform):
    """``(tag, value)`` pairs in; ``{tag: PCollection of its values}`` out, one per tag."""

    def __init__(self, *tags: str):
        super().__init__()
        self._tags = tags

    def expand(self, pairs):
        return {
            tag: pairs | f"Only{tag.title()}" >> beam.FlatMap(select, tag) for tag in self._tags
        }


class Collect(beam.PTransform):
    """A PCollection in; exactly one element out: the list of all its elements (order not
    guaranteed; empty when the input is).

    A seed element created here makes the single group exist even for an empty input, as
    ``ToList`` does with its default, but without the side input that default costs.
    """

    def expand(self, pcoll):
        items = pcoll | "Key" >> beam.Map(keyed_for_collect)
        seed = pcoll.pipeline | "Seed" >> beam.Create([(None, (_SEED, None))])
        return (
            (items, seed)
            | "WithSeed" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "List" >> beam.Map(collected)
        )


class Spread(beam.PTransform):
    """Redistribute elements over workers by ``key(element)`` (distinct keys spread best).

    Used after a step that emits many elements from one place (a plan made from a collected
    list): a GroupByKey moves them on every runner, where ``Reshuffle`` is a no-op on Dask.
    """

    def __init__(self, key: Callable):
        super().__init__()
        self._key = key

    def expand(self, pcoll):
        return (
            pcoll
            | "Key" >> beam.Map(keyed_by, self._key)
            | "Group" >> beam.GroupByKey()
            | "Values" >> beam.FlatMap(ungrouped)
        )
