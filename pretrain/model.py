"""BERT for pretraining (MLM + NSP), with parameter names identical to transformers'.

``BertForPreTraining(cfg).state_dict()`` has exactly the keys of
``transformers.BertForPreTraining(BertConfig(...)).state_dict()``; the only difference in values
is the vocabulary padding (rows ``vocab_size:padded_vocab_size`` of the word embeddings, the tied
decoder and its bias), which :func:`strip_vocab_padding` drops and :func:`pad_vocab` adds back.

Why it is faster than the reference implementation: the MLM head (a ``[H, V]`` GEMM plus a
softmax over 30k columns) runs only on the ``P`` masked positions gathered first (about 15% of the
tokens) instead of on all ``T``, and so does the last encoder layer (except its K/V projections);
q, k, v come from one GEMM; attention goes through ``scaled_dot_product_attention``.

The padded vocabulary rows start at zero with a decoder bias of ``-1e4``: their softmax
probability is exactly 0 in fp32, so they get zero gradient, never change under LAMB, and the
padded model computes the same function as the unpadded one (export = drop the rows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain.config import BertConfig

IGNORE_INDEX = -100
# Additive attention bias for padded keys. Finite, so a fully padded sequence (all keys
# masked) gets uniform attention instead of NaN, and representable in fp16 and bf16.
_MASK_BIAS = -10000.0
# Decoder bias of the padded vocabulary columns (see module docstring).
_PAD_VOCAB_BIAS = -10000.0


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, LayerNorm, dropout."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.padded_vocab_size, cfg.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """[B, T] int ids, [B, T] segment ids -> [B, T, H]."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(positions)  # [T, H] broadcast over B
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head self-attention projections + SDPA (names: query/key/value)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        h = cfg.hidden_size
        self.num_heads = cfg.num_attention_heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def forward(
        self, x: torch.Tensor, mask_bias: torch.Tensor, x_query: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B, T, H] and additive mask [B, 1, 1, T] -> context [B, Tq, H].

        ``x_query`` [B, Tq, H]: compute outputs only for these query rows (keys and values
        still come from all of ``x``); by default every position is a query (Tq = T).
        """
        b, t, h = x.shape
        hd = h // self.num_heads
        if x_query is None:
            # One GEMM for q, k, v (a 3x wider N is faster than three GEMMs); the weights stay
            # three parameters so names and state_dict match transformers.
            w = torch.cat([self.query.weight, self.key.weight, self.value.weight])
            bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])
            qkv = F.linear(x, w, bias).view(b, t, 3, self.num_heads, hd)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, nh, T, hd]
        else:
            w = torch.cat([self.key.weight, self.value.weight])
            bias = torch.cat([self.key.bias, self.value.bias])
            kv = F.linear(x, w, bias).view(b, t, 2, self.num_heads, hd)
            k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, nh, T, hd]
            q = self.query(x_query).view(b, -1, self.num_heads, hd).transpose(1, 2)
        ctx = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask_bias.to(q.dtype),
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        return ctx.transpose(1, 2).reshape(b, q.shape[2], h)  # [B, Tq, H]


class BertSelfOutput(nn.Module):
    """Dense + dropout + residual + LayerNorm (used after attention and after the FFN)."""

    def __init__(self, cfg: BertConfig, in_features: int):
        super().__init__()
        self.dense = nn.Linear(in_features, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg, cfg.hidden_size)

    def forward(self, x, mask_bias, x_query=None):
        residual = x if x_query is None else x_query
        return self.output(self.self(x, mask_bias, x_query), residual)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # exact (erf) GELU, as BERT and transformers' "gelu"


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertSelfOutput(cfg, cfg.intermediate_size)

    def forward(self, x, mask_bias, x_query=None):
        """[B, T, H] -> [B, T, H], or [B, Tq, H] for the query rows ``x_query`` only."""
        x = self.attention(x, mask_bias, x_query)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x, mask_bias, query_index=None):
        """[B, T, H] -> [B, T, H]; with ``query_index`` [B, Q] -> [B, Q, H] at those positions.

        With ``query_index`` the last layer runs only on the gathered rows: the rest of its
        outputs would be discarded by the heads, and its cost (all but the K/V projections)
        shrinks by Q/T. Earlier layers need every position (they feed the last layer's keys).
        """
        last = len(self.layer) - 1
        for i, layer in enumerate(self.layer):
            if i == last and query_index is not None:
                return layer(x, mask_bias, _gather_rows(x, query_index))
            x = layer(x, mask_bias)
        return x


def _gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[B, T, H] gathered at [B, Q] positions -> [B, Q, H] (fixed shapes: compile-friendly)."""
    return torch.gather(x, 1, index.long().unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class BertPooler(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, H] -> tanh(dense(first token)) [B, H]."""
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    """Embeddings + encoder + pooler (the ``bert.`` prefix of the state_dict)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg)

    def forward(self, input_ids, token_type_ids, attention_mask, query_index=None):
        """Ids, segments, mask (1 = real token, 0 = padding), all [B, T] -> [B, T, H], [B, H].

        With ``query_index`` [B, Q] (first column 0, for the pooler) the sequence output is
        [B, Q, H] at those positions only (see :meth:`BertEncoder.forward`).
        """
        # [B, 1, 1, T] additive bias over keys; queries at padded positions still attend to the
        # real keys, so only an all-padding sequence has a fully masked row (kept finite).
        mask_bias = (1.0 - attention_mask[:, None, None, :].float()) * _MASK_BIAS
        x = self.encoder(self.embeddings(input_ids, token_type_ids), mask_bias, query_index)
        return x, self.pooler(x)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(F.gelu(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    """Transform + decoder tied to the word embeddings; ``bias`` is ``decoder.bias``."""

    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = BertPredictionHeadTransform(cfg)
        self.decoder = nn.Linear(cfg.hidden_size, cfg.padded_vocab_size)
        self.decoder.weight = word_embeddings.weight
        self.bias = self.decoder.bias  # one tensor under two names, as in transformers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., H] -> logits over the padded vocabulary [..., V_pad]."""
        return self.decoder(self.transform(x))


class BertPreTrainingHeads(nn.Module):
    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg, word_embeddings)
        self.seq_relationship = nn.Linear(cfg.hidden_size, 2)


class BertForPreTraining(nn.Module):
    """BERT encoder with the MLM head (on masked positions only) and the NSP head."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.config = cfg
        self.bert = BertModel(cfg)
        self.cls = BertPreTrainingHeads(cfg, self.bert.embeddings.word_embeddings)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """BERT init: N(0, 0.02) weights and embeddings, zero biases, LayerNorm (1, 0).

        Row 0 ([PAD]) and the padded vocabulary rows of the word embeddings are zero; the
        padded decoder bias entries are -1e4 (see the module docstring). A small std also
        avoids the denormal slow-down that PyTorch's default N(0, 1) embedding init causes.
        """
        std = self.config.initializer_range
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.normal_(0.0, std)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
        v = self.config.vocab_size
        self.bert.embeddings.word_embeddings.weight[0].zero_()
        self.bert.embeddings.word_embeddings.weight[v:].zero_()
        self.cls.predictions.bias[v:] = _PAD_VOCAB_BIAS

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        masked_lm_positions: torch.Tensor,
        masked_lm_labels: torch.Tensor | None = None,
        next_sentence_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run the model; with labels, also the summed losses and counts.

        Args:
            input_ids, token_type_ids, attention_mask: [B, T] integer tensors (mask 1 = real).
            masked_lm_positions: [B, P] token positions to predict; 0 marks padding ([CLS] at
                position 0 is never masked).
            masked_lm_labels: [B, P] target ids; -100 (or position 0) is ignored.
            next_sentence_labels: [B] 0 = B follows A, 1 = random B; -100 is ignored.

        Returns:
            ``mlm_logits`` [B, P, V_pad] and ``nsp_logits`` [B, 2]; with MLM labels also
            ``mlm_loss_sum`` (summed cross-entropy in nats), ``mlm_count`` and ``mlm_correct``
            (int); with NSP labels ``nsp_loss_sum``, ``nsp_count``, ``nsp_correct``. Sums, not
            means, so the trainer can divide by counts over the whole global batch.
        """
        # Only [CLS] (pooler) and the P masked positions are needed: gather them before the
        # last layer, so its FFN and the vocabulary GEMM + softmax run on P + 1 rows, not T.
        # Fixed shapes (no boolean indexing): compile-friendly.
        positions = masked_lm_positions.long()
        query_index = torch.cat([positions.new_zeros(positions.shape[0], 1), positions], 1)
        hidden, pooled = self.bert(input_ids, token_type_ids, attention_mask, query_index)
        mlm_logits = self.cls.predictions(hidden[:, 1:])  # [B, P, V_pad]
        nsp_logits = self.cls.seq_relationship(pooled)  # [B, 2]
        out = {"mlm_logits": mlm_logits, "nsp_logits": nsp_logits}
        if masked_lm_labels is not None:
            labels = masked_lm_labels.long().masked_fill(masked_lm_positions == 0, IGNORE_INDEX)
            out.update(_classification_sums("mlm", mlm_logits.flatten(0, 1), labels.flatten()))
        if next_sentence_labels is not None:
            out.update(_classification_sums("nsp", nsp_logits, next_sentence_labels.long()))
        return out


def _classification_sums(prefix: str, logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Summed fp32 cross-entropy, count and correct predictions over labels != -100."""
    valid = labels != IGNORE_INDEX
    loss = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="sum")
    correct = ((logits.argmax(-1) == labels) & valid).sum()
    return {
        f"{prefix}_loss_sum": loss,
        f"{prefix}_count": valid.sum(),
        f"{prefix}_correct": correct,
    }


_VOCAB_KEYS = ("bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight")
_VOCAB_BIAS_KEYS = ("cls.predictions.bias", "cls.predictions.decoder.bias")


def strip_vocab_padding(state_dict: dict, vocab_size: int) -> dict:
    """A copy of ``state_dict`` with the padded vocabulary rows dropped (transformers layout)."""
    out = dict(state_dict)
    for key in _VOCAB_KEYS + _VOCAB_BIAS_KEYS:
        if key in out:
            out[key] = out[key][:vocab_size]
    return out


def pad_vocab(state_dict: dict, cfg: BertConfig) -> dict:
    """A copy of an unpadded (e.g. transformers) ``state_dict`` padded to ``cfg.padded_vocab_size``.

    New embedding rows are zero and new bias entries -1e4, matching :meth:`reset_parameters`.
    """
    out = dict(state_dict)
    extra = cfg.padded_vocab_size - cfg.vocab_size
    for key in _VOCAB_KEYS + _VOCAB_BIAS_KEYS:
        if key in out and out[key].shape[0] == cfg.vocab_size:
            t = out[key]
            fill = 0.0 if key in _VOCAB_KEYS else _PAD_VOCAB_BIAS
            out[key] = torch.cat([t, t.new_full((extra, *t.shape[1:]), fill)])
    return out
