"""Equal-count shard splits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ground.errors import UserError
from sharding import balance


@settings(deadline=None)
@given(st.integers(1, 2000), st.integers(1, 300))
def test_sizes_cover_and_differ_by_at_most_one(total, shards):
    if total < shards:
        with pytest.raises(UserError, match="every shard needs at least one"):
            balance.shard_sizes(total, shards)
        return
    sizes = balance.shard_sizes(total, shards)
    assert len(sizes) == shards and sum(sizes) == total
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    bounds = balance.shard_bounds(total, shards)
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(b[1] == c[0] for b, c in zip(bounds, bounds[1:]))
    # shard_of_position is the inverse of the bounds, element by element.
    expected = np.concatenate([np.full(b - a, s) for s, (a, b) in enumerate(bounds)])
    np.testing.assert_array_equal(
        balance.shard_of_position(np.arange(total), total, shards), expected
    )


@settings(deadline=None)
@given(st.integers(1, 500), st.integers(1, 20), st.integers(0, 2**32))
def test_shuffled_assignment_is_a_seeded_partition(total, shards, seed):
    if total < shards:
        return
    parts = balance.shuffled_assignment(total, shards, seed)
    assert [len(p) for p in parts] == balance.shard_sizes(total, shards)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(total))
    again = balance.shuffled_assignment(total, shards, seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_shuffle_depends_on_seed_and_refusals():
    a = balance.shuffled_assignment(1000, 4, 1)
    b = balance.shuffled_assignment(1000, 4, 2)
    assert not np.array_equal(a[0], b[0])
    assert not np.array_equal(a[0], np.sort(a[0]))  # actually shuffled
    with pytest.raises(UserError, match="--num-shards must be at least 1"):
        balance.shard_sizes(10, 0)
    with pytest.raises(UserError, match="only 3 instances for 4 shards"):
        balance.shard_sizes(3, 4)
    assert balance.shard_of_position(9, 10, 3) == 2
