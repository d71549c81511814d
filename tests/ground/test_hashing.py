"""ground.hashing against splitmix64 written out with Python integers, and its published outputs."""

from __future__ import annotations

import numpy as np

from ground.hashing import GOLDEN, mix64, unit_floats

MASK = 2**64 - 1


def splitmix64_next(state: int) -> tuple[int, int]:
    """Vigna's splitmix64.c ``next()``: (new state, output), Python ints."""
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def test_mix64_is_splitmix64():
    # Seeded with 0, splitmix64's first three outputs (as published with the reference code).
    state, outputs = 0, []
    for _ in range(3):
        state, out = splitmix64_next(state)
        outputs.append(out)
    assert outputs == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    states = np.arange(1, 4, dtype=np.uint64) * GOLDEN  # wrapping, as the state advances
    assert mix64(states).tolist() == outputs
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2**64, size=(7, 5), dtype=np.uint64, endpoint=False)
    got = mix64(x)
    assert got.dtype == np.uint64 and got.shape == x.shape
    expected = [splitmix64_next((int(v) - 0x9E3779B97F4A7C15) & MASK)[1] for v in x.ravel()]
    assert got.ravel().tolist() == expected


def test_unit_floats_take_the_top_53_bits():
    h = np.array([0, 2**11 - 1, 2**11, MASK, 2**63], dtype=np.uint64)
    u = unit_floats(h)
    assert u.dtype == np.float64
    assert u.tolist() == [0.0, 0.0, 2.0**-53, 1.0 - 2.0**-53, 0.5]
