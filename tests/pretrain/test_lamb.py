"""LAMB: hand-computed steps, clipping, trust ratio edge cases, equality to the per-parameter
reference over 20 steps of a tiny BERT, state_dict round trip with weights_only=True."""

from __future__ import annotations

import io
import math

import pytest
import torch

from ground.errors import UserError
from pretrain.config import BertConfig
from pretrain.lamb import Lamb, LambReference, lamb_param_groups, make_lamb, reset_step_count
from pretrain.model import BertForPreTraining

EPS = 1e-6


def _param(values, grad):
    p = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))
    p.grad = torch.tensor(grad, dtype=torch.float64)
    return p


@pytest.mark.parametrize("cls", [Lamb, LambReference])
def test_step_one_with_decay_hand_computed(cls):
    w, g, lr, wd = [3.0, 4.0], [0.3, -0.4], 0.1, 0.01
    p = _param(w, g)
    cls([{"params": [p], "weight_decay": wd}], lr=lr).step()
    # Step 1: m_hat = g, v_hat = g^2, so m_hat / (sqrt(v_hat) + eps) = g / (|g| + eps).
    u = [gi / (abs(gi) + EPS) + wd * wi for gi, wi in zip(g, w)]
    ratio = math.hypot(*w) / math.hypot(*u)
    expected = [wi - lr * ratio * ui for wi, ui in zip(w, u)]
    assert p.detach().tolist() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("cls", [Lamb, LambReference])
def test_no_decay_params_use_ratio_one(cls):
    w, g, lr = [3.0, 4.0], [0.3, -0.4], 0.1
    p = _param(w, g)
    cls([{"params": [p], "weight_decay": 0.0}], lr=lr).step()
    expected = [wi - lr * gi / (abs(gi) + EPS) for gi, wi in zip(g, w)]
    assert p.detach().tolist() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("cls", [Lamb, LambReference])
def test_zero_weight_norm_uses_ratio_one(cls):
    p = _param([0.0, 0.0], [0.5, 0.0])
    q = _param([0.0, 0.0], [0.0, 0.0])  # zero weight and zero update: stays 0, no NaN
    cls([{"params": [p, q], "weight_decay": 0.01}], lr=0.1).step()
    assert p.detach().tolist() == pytest.approx([-0.1 * 0.5 / (0.5 + EPS), 0.0], rel=1e-12)
    assert q.detach().tolist() == [0.0, 0.0]


@pytest.mark.parametrize("cls", [Lamb, LambReference])
@pytest.mark.parametrize("scale", [5.0, 0.5])
def test_global_clipping_across_groups(cls, scale):
    # Global norm over both groups = 5 * scale; clipped to 1 only when it exceeds 1.
    p = _param([1.0, 2.0], [0.6 * scale, 0.0])
    q = _param([1.0], [0.8 * scale])
    opt = cls([{"params": [p], "weight_decay": 0.01}, {"params": [q], "weight_decay": 0.0}])
    opt.step()
    norm = scale
    coef = 1.0 / norm if norm > 1.0 else 1.0
    assert float(opt.last_grad_norm) == pytest.approx(norm, rel=1e-12)
    m_p, v_p = opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]
    assert m_p.tolist() == pytest.approx([0.1 * 0.6 * scale * coef, 0.0], rel=1e-12)
    assert v_p.tolist() == pytest.approx([0.001 * (0.6 * scale * coef) ** 2, 0.0], rel=1e-12)
    assert opt.state[q]["exp_avg"].tolist() == pytest.approx([0.1 * 0.8 * scale * coef])
    assert p.grad.tolist() == [0.6 * scale, 0.0]  # gradients themselves are not modified


def test_global_norm_of_a_large_fp32_gradient_is_accurate():
    """An embedding-sized fp32 gradient with a non-zero mean (as real ones have): a norm summed
    sequentially in fp32 comes out ~2e-5 low on CPU; the clip must see the true norm."""
    g = torch.Generator().manual_seed(0)
    big = torch.nn.Parameter(torch.zeros(2_000_000))
    big.grad = torch.randn(2_000_000, generator=g) * 1e-3 + 1e-3
    small = [torch.nn.Parameter(torch.zeros(n)) for n in (1, 64, 300)]
    for q in small:
        q.grad = torch.randn(q.shape, generator=g) * 1e-2
    opt = Lamb([{"params": [big], "weight_decay": 0.01}, {"params": small, "weight_decay": 0.0}])
    opt.step()
    grads = [big.grad] + [q.grad for q in small]
    ref = math.sqrt(sum(float((x.double() ** 2).sum()) for x in grads))
    assert ref > 1.0  # clipping active, so the norm sets the update
    assert float(opt.last_grad_norm) == pytest.approx(ref, rel=1e-6)
    # The clipped gradient entered the moments: m = 0.1 * g / norm.
    expect = 0.1 * big.grad.double() / ref
    torch.testing.assert_close(opt.state[big]["exp_avg"].double(), expect, rtol=1e-6, atol=0)


def test_step_two_bias_correction_hand_computed():
    p = _param([1.0], [0.5])
    opt = Lamb([{"params": [p], "weight_decay": 0.0}], lr=0.01, betas=(0.9, 0.999))
    opt.step()
    p.grad = torch.tensor([0.25], dtype=torch.float64)
    opt.step()
    m = 0.9 * 0.05 + 0.1 * 0.25
    v = 0.999 * 0.001 * 0.25 + 0.001 * 0.0625
    u = (m / (1 - 0.9**2)) / (math.sqrt(v / (1 - 0.999**2)) + EPS)
    after_one = 1.0 - 0.01 * 0.5 / (0.5 + EPS)
    assert p.item() == pytest.approx(after_one - 0.01 * u, rel=1e-12)


TINY = BertConfig(
    vocab_size=500,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def _train(opt_cls, steps, state=None):
    torch.manual_seed(0)
    model = BertForPreTraining(TINY)
    opt = opt_cls(lamb_param_groups(model), lr=2e-2)
    g = torch.Generator().manual_seed(1)
    snapshots = []
    for _ in range(steps):
        ids = torch.randint(1, 500, (4, 16), generator=g)
        pos = torch.randint(1, 16, (4, 3), generator=g)
        labels = torch.randint(1, 500, (4, 3), generator=g)
        out = model(ids, torch.zeros_like(ids), torch.ones_like(ids), pos, labels,
                    torch.randint(0, 2, (4,), generator=g))  # fmt: skip
        loss = out["mlm_loss_sum"] / out["mlm_count"] + out["nsp_loss_sum"] / out["nsp_count"]
        # x 30 so the global norm exceeds 1 and clipping is exercised.
        (30 * loss).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        snapshots.append([p.detach().clone() for p in model.parameters()])
    return model, opt, snapshots


def test_foreach_equals_per_parameter_reference_over_20_steps():
    _, fast, a = _train(Lamb, 20)
    _, ref, b = _train(LambReference, 20)
    assert float(fast.last_grad_norm) > 1.0  # clipping was active
    for step, (pa, pb) in enumerate(zip(a, b)):
        for x, y in zip(pa, pb):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-6, msg=f"step {step}")
    assert not torch.equal(a[0][0], a[-1][0])  # the parameters did move


def test_state_dict_round_trip_weights_only():
    model, opt, _ = _train(Lamb, 3)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh = Lamb(lamb_param_groups(model), lr=1.0)
    fresh.load_state_dict(state)
    assert [g["step"] for g in fresh.param_groups] == [3, 3]
    assert fresh.param_groups[0]["lr"] == 2e-2
    for p in model.parameters():
        torch.testing.assert_close(fresh.state[p]["exp_avg"], opt.state[p]["exp_avg"])
    reset_step_count(fresh)
    assert [g["step"] for g in fresh.param_groups] == [0, 0]
    assert fresh.state[next(model.parameters())]["exp_avg"].abs().sum() > 0  # moments kept


def test_param_groups_no_decay_for_bias_and_layernorm():
    model = BertForPreTraining(TINY)
    decay, no_decay = lamb_param_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all("LayerNorm" in names[id(p)] or names[id(p)].endswith("bias")
               for p in no_decay["params"])  # fmt: skip
    assert all(p.dim() == 2 for p in decay["params"])
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert any(p is model.bert.embeddings.word_embeddings.weight for p in decay["params"])


def test_invalid_hyperparameters_are_user_errors():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(UserError, match="LAMB"):
        Lamb([p], lr=-1.0)
    with pytest.raises(UserError, match="LAMB"):
        Lamb([p], betas=(0.9, 1.0))


def test_make_lamb_without_apex_is_ours():
    p = torch.nn.Parameter(torch.zeros(2))
    assert type(make_lamb([{"params": [p]}], lr=1e-3, use_apex=True)) is Lamb


def test_compiled_update_equals_eager():
    """The one compile test CI runs (a cold compile costs about a minute here): torch.compile
    of the whole update gives the eager foreach result."""
    import functools

    _, _, eager = _train(Lamb, 4)
    _, opt, compiled = _train(functools.partial(Lamb, compiled=True), 4)
    for step, (pa, pb) in enumerate(zip(eager, compiled)):
        for x, y in zip(pa, pb):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-6, msg=f"step {step}")
    assert not torch.equal(compiled[0][0], compiled[-1][0])
