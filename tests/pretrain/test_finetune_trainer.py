"""Hand-off to the ecosystem: transformers' own ``Trainer`` fine-tunes
``BertForSequenceClassification.from_pretrained(<our export>)`` on real SST-2 rows and its loss
falls, and ``AutoTokenizer.from_pretrained(<our export>)`` tokenizes as we do. So scripts built on
them (run_glue.py and the like) take our export as ``--model_name_or_path`` unchanged.

Needs ``accelerate`` (transformers' Trainer requires it; in the ``dev`` extra).
"""

from __future__ import annotations

import torch

from pretrain import finetune as ft
from pretrain import finetune_data as fd
from pretrain import glue
from tests.pretrain.tiny_bert import export_tiny


def _cpu_args(out, batch: int, steps: int, lr: float):
    """TrainingArguments for a short CPU run: no saving, no reporting, a loss every 5 steps."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out),
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=32,
        max_steps=steps,
        learning_rate=lr,
        logging_steps=5,
        seed=0,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def test_transformers_trainer_fine_tunes_our_export(tmp_path, corpus_dir):
    from transformers import (
        AutoTokenizer,
        BertForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
    )

    export = export_tiny(tmp_path / "model", corpus_dir)
    rows = glue.read_sst2(corpus_dir / "testdata" / "glue" / "SST-2" / "train-first-240.tsv")
    rows = rows.examples[:48]
    tok = AutoTokenizer.from_pretrained(export)
    enc = tok([e.text_a for e in rows], truncation=True, max_length=64)
    # The same ids as our own encoding of these rows ([CLS] ... [SEP], lower-cased WordPiece).
    ours = fd.encode_examples(fd.load_tokenizer(None, ft.load_pretrained(export))[0], rows,
                              {"0": 0, "1": 1}, 64)  # fmt: skip
    for i, ids in enumerate(enc["input_ids"]):
        n = len(ids)
        assert ours.input_ids[i, :n].tolist() == ids and not ours.input_ids[i, n:].any()
    data = [
        {"input_ids": ids, "token_type_ids": tt, "attention_mask": m, "labels": int(e.label)}
        for ids, tt, m, e in zip(
            enc["input_ids"], enc["token_type_ids"], enc["attention_mask"], rows
        )
    ]

    model, info = BertForSequenceClassification.from_pretrained(
        export, num_labels=2, output_loading_info=True
    )
    # Only the new head is missing; what is left over is the pretraining heads (cls.*).
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"], info
    assert all(k.startswith("cls.") for k in info["unexpected_keys"]), info
    args = _cpu_args(tmp_path / "hf", batch=16, steps=45, lr=1e-3)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=data,
        data_collator=DataCollatorWithPadding(tok),
        processing_class=tok,
    )
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 9 and logged[-1] < logged[0], logged
    assert after < 0.25 * before, (before, after)
    assert next(model.parameters()).device == torch.device("cpu")


def test_transformers_trainer_fine_tunes_our_export_for_question_answering(tmp_path, corpus_dir):
    """``BertForQuestionAnswering.from_pretrained(<our export>)`` under ``Trainer``, on windows of
    real SQuAD questions made by our featurizer (start/end positions as run_qa.py makes them):
    only ``qa_outputs`` is new, and the span loss falls."""
    from transformers import BertForQuestionAnswering, Trainer

    from pretrain import squad_data

    export = export_tiny(tmp_path / "model", corpus_dir)
    tok, _ = fd.load_tokenizer(None, ft.load_pretrained(export))
    squad = squad_data.read_squad(corpus_dir / "testdata" / "squad" / "dev-v1.1-slice.json")
    feats = squad_data.featurize(tok, squad.questions[:16], max_seq_length=192, doc_stride=64)
    data = [
        {
            "input_ids": feats.input_ids[i].tolist(),
            "token_type_ids": feats.token_type_ids[i].tolist(),
            "attention_mask": feats.attention_mask[i].tolist(),
            "start_positions": int(feats.labels[i, 0]),
            "end_positions": int(feats.labels[i, 1]),
        }
        for i in range(len(feats))
    ]
    assert any(d["start_positions"] > 0 for d in data)  # answers inside windows, not only CLS
    model, info = BertForQuestionAnswering.from_pretrained(export, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["qa_outputs.bias", "qa_outputs.weight"], info
    args = _cpu_args(tmp_path / "hf", batch=8, steps=40, lr=2e-3)
    trainer = Trainer(model=model, args=args, train_dataset=data, eval_dataset=data)
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < 0.5 * before, (before, after)
