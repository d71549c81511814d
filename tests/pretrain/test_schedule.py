"""PolyWarmUp schedule: values at known points, the LambdaLR wrapper, state round trip."""

from __future__ import annotations

import io

import pytest
import torch

from ground.errors import UserError
from pretrain.schedule import poly_warmup_lr, poly_warmup_scheduler


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.0),
        (1, 0.001 / 0.1),  # warmup on step / total = 0.001
        (50, 0.5),  # half way through warmup
        (99, 0.99),
        (100, 0.901**0.5),  # warmup over: step down to sqrt(1 - 99/1000), kept as NVIDIA's
        (501, 0.5**0.5),  # decay on the progress before the step: (501 - 1) / 1000
        (1000, 0.001**0.5),  # the last step still updates
        (1001, 0.0),
        (1500, 0.0),  # past the end: 0, never a complex number
    ],
)
def test_values_at_known_points(step, expected):
    assert poly_warmup_lr(step, 1000, 1.0, 0.1) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("total", "warmup"), [(1, 0.0), (2, 0.5), (7, 0.3), (7038, 0.2843)])
def test_every_step_updates_and_none_after(total, warmup):
    lrs = [poly_warmup_lr(k, total, 6e-3, warmup) for k in range(1, total + 1)]
    assert min(lrs) > 0
    assert lrs[-1] == pytest.approx(6e-3 * (1 / total) ** 0.5, rel=1e-12)
    assert poly_warmup_lr(total + 1, total, 6e-3, warmup) == 0.0
    # Warmup rises, decay falls: the shape is NVIDIA's.
    peak_at = max(range(total), key=lrs.__getitem__)
    assert lrs[: peak_at + 1] == sorted(lrs[: peak_at + 1])
    assert lrs[peak_at:] == sorted(lrs[peak_at:], reverse=True)


def test_nvidia_phase1_points():
    peak, total, warmup = 6e-3, 7038, 0.2843
    assert poly_warmup_lr(1, total, peak, warmup) == pytest.approx(6e-3 / 7038 / 0.2843)
    # last warmup step vs first decay step: 2000/7038 = 0.28417 < 0.2843 <= 2001/7038
    assert poly_warmup_lr(2000, total, peak, warmup) == pytest.approx(6e-3 * 2000 / 7038 / 0.2843)
    assert poly_warmup_lr(2001, total, peak, warmup) == pytest.approx(6e-3 * (5038 / 7038) ** 0.5)
    assert poly_warmup_lr(2001, total, peak, warmup) < 0.85 * peak
    assert poly_warmup_lr(2000, total, peak, warmup) > 0.99 * peak  # the step down is kept


def test_scheduler_sets_lr_of_each_step():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p]}, {"params": [], "lr": 2.0}], lr=4e-3)
    sched = poly_warmup_scheduler(opt, total_steps=20, warmup=0.25)
    used = []
    for _ in range(25):
        used.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for k, (lr0, lr1) in enumerate(used, start=1):
        assert lr0 == pytest.approx(poly_warmup_lr(k, 20, 4e-3, 0.25), abs=1e-15)
        assert lr1 == pytest.approx(poly_warmup_lr(k, 20, 2.0, 0.25), abs=1e-15)
    assert used[0][0] > 0 and used[19][0] > 0  # the first and the last (20th) step update
    assert used[20][0] == 0.0


def test_state_dict_round_trip_weights_only():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1e-3)
    sched = poly_warmup_scheduler(opt, total_steps=100, warmup=0.1)
    for _ in range(7):
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched2 = poly_warmup_scheduler(opt2, total_steps=5, warmup=0.5)  # overwritten by the state
    sched2.load_state_dict(state)
    for _ in range(20):
        opt.step()
        sched.step()
        opt2.step()
        sched2.step()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert sched2.lr_lambdas[0].total_steps == 100


@pytest.mark.parametrize(("total", "warmup"), [(0, 0.1), (100, 1.0), (100, -0.1)])
def test_invalid_arguments_are_user_errors(total, warmup):
    with pytest.raises(UserError, match="LR schedule"):
        poly_warmup_lr(1, total, 1e-3, warmup)
