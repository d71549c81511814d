"""BertForPreTraining: shapes, masked-position gather, padding mask, init, transformers parity,
and learning (the tiny model overfits a fixed batch built from real SST-2 sentences)."""

from __future__ import annotations

import random

import pytest
import torch
import transformers
from tokenizers import BertWordPieceTokenizer

from pretrain.config import BertConfig, preset
from pretrain.lamb import Lamb, lamb_param_groups
from pretrain.model import BertForPreTraining, pad_vocab, strip_vocab_padding

SMALL = BertConfig(
    vocab_size=997,  # padded to 1000: exercises the padding rows
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
)
CLS, SEP, MASK = 101, 102, 103


def _batch(cfg: BertConfig, b=3, t=16, p=4, seed=0):
    """Random batch; sequence 1 has 6 padding tokens, sequence 2 has 2 unused prediction slots."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, cfg.vocab_size, (b, t), generator=g)
    tt = (torch.arange(t) >= t // 2).long().expand(b, t).clone()
    am = torch.ones(b, t, dtype=torch.long)
    am[1, t - 6 :] = 0
    ids[1, t - 6 :] = 0
    tt[1, t - 6 :] = 0
    pos = torch.stack([torch.randperm(t - 7, generator=g)[:p].sort().values + 1 for _ in range(b)])
    labels = torch.randint(1, cfg.vocab_size, (b, p), generator=g)
    pos[2, -2:] = 0
    labels[2, -1] = -100
    nsp = torch.tensor([0, 1, 0])
    return ids, tt, am, pos, labels, nsp


def _model(cfg=SMALL, seed=0):
    torch.manual_seed(seed)
    return BertForPreTraining(cfg).eval()


def _loss(out):
    """One batch's training loss as pretrain.step forms it: MLM mean + NSP mean."""
    return out["mlm_loss_sum"] / out["mlm_count"] + out["nsp_loss_sum"] / out["nsp_count"]


def test_output_shapes_and_counts():
    out = _model()(*_batch(SMALL))
    assert out["mlm_logits"].shape == (3, 4, 1000)
    assert out["nsp_logits"].shape == (3, 2)
    assert int(out["mlm_count"]) == 3 * 4 - 2  # position 0 and label -100 are both ignored
    assert int(out["nsp_count"]) == 3
    assert out["mlm_loss_sum"].shape == () and torch.isfinite(out["mlm_loss_sum"])
    assert 0 <= int(out["mlm_correct"]) <= 10 and 0 <= int(out["nsp_correct"]) <= 3


def test_loss_sums_match_cross_entropy_means():
    ids, tt, am, pos, labels, nsp = _batch(SMALL)
    out = _model()(ids, tt, am, pos, labels, nsp)
    logits = out["mlm_logits"].reshape(-1, 1000)
    valid = (pos.flatten() != 0) & (labels.flatten() != -100)
    ref = torch.nn.functional.cross_entropy(logits[valid], labels.flatten()[valid])
    torch.testing.assert_close(out["mlm_loss_sum"] / out["mlm_count"], ref)
    nsp_ref = torch.nn.functional.cross_entropy(out["nsp_logits"], nsp)
    torch.testing.assert_close(out["nsp_loss_sum"] / out["nsp_count"], nsp_ref)


def test_gather_equals_head_on_all_positions_then_select():
    # The model also runs its last layer on the gathered rows only: still the same numbers.
    model = _model()
    ids, tt, am, pos, _, _ = _batch(SMALL)
    with torch.no_grad():
        out = model(ids, tt, am, pos)
        hidden, pooled = model.bert(ids, tt, am)  # every position through every layer
        all_logits = model.cls.predictions(hidden)  # [B, T, V_pad]
        nsp = model.cls.seq_relationship(pooled)
    for i in range(pos.shape[0]):
        torch.testing.assert_close(out["mlm_logits"][i], all_logits[i, pos[i]])
    torch.testing.assert_close(out["nsp_logits"], nsp)


def test_padding_content_does_not_change_real_outputs():
    model = _model()
    ids, tt, am, pos, labels, nsp = _batch(SMALL)
    ids2, tt2 = ids.clone(), tt.clone()
    ids2[1, -6:] = torch.arange(500, 506)
    tt2[1, -6:] = 1
    with torch.no_grad():
        h1, p1 = model.bert(ids, tt, am)
        h2, p2 = model.bert(ids2, tt2, am)
        o1, o2 = model(ids, tt, am, pos), model(ids2, tt2, am, pos)
    real = am.bool()
    torch.testing.assert_close(h1[real], h2[real], rtol=0, atol=1e-6)
    torch.testing.assert_close(p1, p2, rtol=0, atol=1e-6)
    torch.testing.assert_close(o1["mlm_logits"], o2["mlm_logits"], rtol=0, atol=1e-5)
    # Without the mask the padding content would leak into the real tokens.
    with torch.no_grad():
        h3, _ = model.bert(ids2, tt2, torch.ones_like(am))
    assert (h3[1, :10] - h1[1, :10]).abs().max() > 1e-3


def test_fully_padded_sequence_gives_finite_outputs_and_grads():
    model = _model().train()
    ids, tt, am, pos, labels, nsp = _batch(SMALL)
    am[0] = 0
    out = model(ids, tt, am, pos, labels, nsp)
    assert torch.isfinite(out["mlm_logits"]).all() and torch.isfinite(out["nsp_logits"]).all()
    _loss(out).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_bert_init():
    model = _model(preset("tiny"))
    sd = model.state_dict()
    w = sd["bert.encoder.layer.0.attention.self.query.weight"]
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    assert (sd["bert.encoder.layer.1.output.dense.bias"] == 0).all()
    assert (sd["bert.embeddings.LayerNorm.weight"] == 1).all()
    assert (sd["cls.predictions.transform.LayerNorm.bias"] == 0).all()
    emb = sd["bert.embeddings.word_embeddings.weight"]
    assert emb.shape == (30528, 128)
    assert (emb[0] == 0).all() and (emb[30522:] == 0).all()
    assert abs(emb[1:30522].std().item() - 0.02) < 0.001
    assert sd["cls.predictions.decoder.weight"] is emb or torch.equal(
        sd["cls.predictions.decoder.weight"], emb
    )
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.bias is model.cls.predictions.decoder.bias


def test_padded_vocab_rows_get_no_gradient():
    model = _model().train()
    ids, tt, am, pos, labels, nsp = _batch(SMALL)
    out = model(ids, tt, am, pos, labels, nsp)
    assert (out["mlm_logits"][..., 997:] < -9000).all()
    _loss(out).backward()
    assert (model.bert.embeddings.word_embeddings.weight.grad[997:] == 0).all()
    assert (model.cls.predictions.bias.grad[997:] == 0).all()


def _hf_model(cfg: BertConfig):
    hf_cfg = transformers.BertConfig(
        **{k: v for k, v in cfg.to_dict().items() if k != "vocab_pad_multiple"},
        attn_implementation="eager",  # independent of SDPA
    )
    return transformers.BertForPreTraining(hf_cfg).eval()


def test_state_dict_names_match_transformers():
    cfg = preset("tiny")
    ours = _model(cfg).state_dict()
    theirs = _hf_model(cfg).state_dict()
    assert set(ours) == set(theirs)
    stripped = strip_vocab_padding(ours, cfg.vocab_size)
    for k, v in theirs.items():
        assert stripped[k].shape == v.shape, k
    assert ours["bert.embeddings.word_embeddings.weight"].shape[0] == 30528


def test_logits_equal_transformers_with_same_weights():
    model = _model(SMALL)
    for p in model.parameters():  # move LayerNorm/biases away from their trivial init
        p.data.add_(torch.randn_like(p) * 0.05)
    hf = _hf_model(SMALL)
    hf.load_state_dict(strip_vocab_padding(model.state_dict(), SMALL.vocab_size), strict=True)
    ids, tt, am, pos, _, _ = _batch(SMALL)
    with torch.no_grad():
        ours = model(ids, tt, am, pos)
        theirs = hf(input_ids=ids, token_type_ids=tt, attention_mask=am)
    ref = torch.gather(theirs.prediction_logits, 1, pos[..., None].expand(-1, -1, 997))
    torch.testing.assert_close(ours["mlm_logits"][..., :997], ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        ours["nsp_logits"], theirs.seq_relationship_logits, rtol=0, atol=1e-5
    )


def test_pad_vocab_round_trip_from_transformers():
    hf_sd = _hf_model(SMALL).state_dict()
    model = BertForPreTraining(SMALL)
    model.load_state_dict(pad_vocab(hf_sd, SMALL), strict=True)
    back = strip_vocab_padding(model.state_dict(), SMALL.vocab_size)
    for k, v in hf_sd.items():
        assert torch.equal(back[k], v), k
    assert (model.cls.predictions.bias[997:] == -10000.0).all()


def _sst2_batch(corpus_dir, n=64, max_len=32, max_pred=5, seed=0):
    """64 NSP pairs of real SST-2 sentences, 15% of the word pieces replaced by [MASK]."""
    tok = BertWordPieceTokenizer(
        str(corpus_dir / "vocab/bert-base-uncased-vocab.txt"), lowercase=True
    )
    tok.enable_truncation(max_length=max_len)  # keeps [CLS] A [SEP] B [SEP]
    lines = (corpus_dir / "finetune/glue-sst2-dev.tsv").read_text(encoding="utf-8").splitlines()
    sents = [line.split("\t")[0] for line in lines[1:]]
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        is_random = rng.random() < 0.5
        b = sents[rng.randrange(len(sents))] if is_random else sents[2 * i + 1]
        enc = tok.encode(sents[2 * i], b)
        ids, tts = enc.ids, enc.type_ids
        cand = [j for j, t in enumerate(ids) if t not in (CLS, SEP)]
        pos = sorted(rng.sample(cand, max(1, min(max_pred, round(0.15 * len(cand))))))
        labels = [ids[j] for j in pos]
        for j in pos:
            ids[j] = MASK
        pad, ppad = max_len - len(ids), max_pred - len(pos)
        rows.append(
            (ids + [0] * pad, tts + [0] * pad, [1] * len(ids) + [0] * pad,
             pos + [0] * ppad, labels + [-100] * ppad, int(is_random))
        )  # fmt: skip
    return [torch.tensor(col) for col in zip(*rows)]


@pytest.fixture
def one_thread():
    """Small GEMMs gain little from a 2nd thread, and on a busy shared CPU every parallel op
    can wait milliseconds for a descheduled OpenMP thread (measured 4x slower here)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.slow
def test_tiny_model_overfits_fixed_batch(corpus_dir, one_thread):
    batch = _sst2_batch(corpus_dir)
    assert batch[0].shape == (64, 32) and int((batch[4] != -100).sum()) > 200
    assert int((batch[0] == SEP).sum()) == 2 * 64
    torch.manual_seed(0)
    cfg = preset("tiny").replace(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(cfg).train()
    opt = Lamb(lamb_param_groups(model), lr=3e-2)
    losses = []
    for _ in range(80):
        out = model(*batch)
        losses.append((out["mlm_loss_sum"] / out["mlm_count"]).item())
        if losses[-1] < 0.5:
            break
        _loss(out).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    assert losses[0] > 9.0  # ~ln(30522) at init
    assert losses[-1] < 0.5, losses[-5:]
