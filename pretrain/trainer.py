"""The training run: build everything, restore state, loop over steps, checkpoint, evaluate.

Reads top to bottom: :meth:`Run.__init__` builds model, optimizer, schedule, scaler and data;
:meth:`Run.restore` applies ``--resume`` or ``--init-from``; :meth:`Run.train` loops.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import torch

from ground.errors import UserError
from pretrain import checkpoint as ckpt
from pretrain import dist
from pretrain.adamw import AdamW, reset_adamw_steps
from pretrain.config import BertConfig, preset
from pretrain.data import PretrainLoader, ValidationLoader, check_compatible
from pretrain.lamb import lamb_param_groups, make_lamb, reset_step_count
from pretrain.metrics import MetricsLog
from pretrain.model import BertForPreTraining
from pretrain.schedule import poly_warmup_scheduler
from pretrain.step import evaluate, make_scaler, train_step
from pretrain.train_config import TrainConfig
from sharding.reader import ShardSet


class Run:
    """One phase of pretraining in one output directory."""

    def __init__(self, config: TrainConfig, info: dist.DistInfo):
        self.c, self.info = config, info
        self.output = Path(config.output)
        self.precision = config.precision or ("bf16" if info.device.type == "cuda" else "fp32")
        self.shards = ShardSet.open(config.data)
        self.cfg = self._model_config()
        check_compatible(self.shards, self.cfg.vocab_size, self.cfg.max_position_embeddings)
        torch.manual_seed(config.seed)
        d = config.dropout  # pretraining's own dropout; self.cfg (saved) keeps its own
        built = self.cfg if d is None else self.cfg.replace(
            hidden_dropout_prob=d, attention_probs_dropout_prob=d
        )  # fmt: skip
        self.model = BertForPreTraining(built).to(info.device)
        kind = config.optimizer
        if kind == "adamw":
            self.optimizer = AdamW(lamb_param_groups(self.model), lr=config.lr)
        else:
            self.optimizer = make_lamb(
                lamb_param_groups(self.model),
                lr=config.lr,
                use_apex=kind == "apex",
                compiled=kind == "lamb-compiled",
            )
        # Shards built with --no-nsp (manifest "nsp": false): MLM only. None (a directory
        # without a manifest whose shards do not say) keeps NSP, as the labels are there.
        self.nsp = self.shards.nsp is not False
        if not self.nsp:
            self._freeze_nsp_head()
        self.scaler = make_scaler(info.device, self.precision)
        self.step = 0
        self.restore()
        self.scheduler = poly_warmup_scheduler(self.optimizer, config.total_steps, config.warmup)
        if self._saved is not None and self._saved.get("scheduler") is not None:
            self.scheduler.load_state_dict(self._saved["scheduler"])
            # A new LambdaLR sets every group's lr to step 1's value; put back the saved one.
            for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
                group["lr"] = lr
        self.loader = self._loader()
        if self._saved is not None and self._saved.get("sampler") is not None:
            self.loader.load_state_dict(self._saved["sampler"])
        if self._saved is not None and self._saved.get("rng") is not None:
            ckpt.set_rng_state(self._saved["rng"])
        self._saved = self._loaded = None
        self.net = self._wrap(self.model)

    # ---- construction -------------------------------------------------------------------
    def _model_config(self) -> BertConfig:
        """--config, else --model, else the checkpoint being continued, else base."""
        a = self.c
        if a.config:
            cfg = BertConfig.from_json(a.config)
        elif a.model is None and self._continued() is not None:
            cfg = BertConfig.from_dict(self._load(self._continued())["config"]["model"])
        else:
            cfg = preset(a.model or "base", vocab_size=self.shards.vocab_size or 30522)
        return cfg

    def _freeze_nsp_head(self) -> None:
        """Without NSP the NSP head and the pooler (which feeds only it) get no gradient: the
        loss has no NSP term. ``requires_grad=False`` too, so DDP does not wait for their
        gradients. Done after the optimizer took them, so its state has the same layout with and
        without NSP (a phase 1 with NSP can seed a phase 2 without); they keep ``grad=None``,
        which LAMB skips (no moments, no weight decay)."""
        for module in (self.model.bert.pooler, self.model.cls.seq_relationship):
            module.requires_grad_(False)

    def _load(self, path):
        """A checkpoint, read (and its checksum verified) once even when both the model config
        and the restore need it; the cache is dropped at the end of ``__init__``."""
        cached = getattr(self, "_loaded", None)
        if cached is None or cached[0] != Path(path):
            self._loaded = (Path(path), ckpt.load_checkpoint(path))
        return self._loaded[1]

    def _continued(self):
        """The checkpoint this run continues (--resume's latest, else --init-from), or None."""
        if self.c.resume:
            latest = self._resume_path()
            if latest is not None:
                return latest
        return self.c.init_from

    def _resume_path(self):
        """``--resume CKPT``'s file, else the latest checkpoint in --output (or None)."""
        if isinstance(self.c.resume, str):
            return Path(self.c.resume)
        return ckpt.latest_checkpoint(self.output / "checkpoints")

    def _loader(self) -> PretrainLoader:
        c, info = self.c, self.info
        fits = all(len(r) >= c.global_batch for r in self.shards.training)
        return PretrainLoader(
            self.shards,
            c.micro_batch,
            seed=c.seed,
            world_size=info.world_size,
            rank=info.rank,
            global_batch=c.global_batch if fits else None,
            bin_size=c.bin_size or None,
            pad_to_longest=c.phase == 2,
            vocab_size=self.cfg.vocab_size,  # every shard's ids checked as it is loaded
            mask_prob=c.mask_prob,
        )

    def _wrap(self, model):
        net = model
        if self.c.compile:
            net = torch.compile(net)
        if self.info.world_size > 1:
            ids = [self.info.device.index] if self.info.device.type == "cuda" else None
            net = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)
        return net

    # ---- state --------------------------------------------------------------------------
    def restore(self) -> None:
        """``--resume``: everything from the latest checkpoint; ``--init-from``: weights and
        LAMB moments only (step, bias correction, schedule and data order restart)."""
        a, self._saved = self.c, None
        if a.resume:
            path = self._resume_path()
            if path is None:
                if a.init_from is None:
                    raise UserError(f"--resume: no checkpoint in {self.output / 'checkpoints'}")
            else:
                state = self._load(path)
                if _family(state) != _family(self.c.schedule()):
                    raise UserError(
                        f"{path} was trained with {_family(state)}; resume it with "
                        f"--optimizer {_family(state)}"
                    )
                if state["phase"] != self.c.phase:
                    raise UserError(
                        f"{path} is a phase {state['phase']} checkpoint; pass "
                        f"--phase {state['phase']} to resume it"
                    )
                self._load_weights(state, path)
                self.optimizer.load_state_dict(state["optimizer"])
                if self.scaler is not None and state.get("scaler"):
                    self.scaler.load_state_dict(state["scaler"])
                self.step, self._saved = state["step"], state
                return
        if a.init_from:
            state = self._load(a.init_from)
            self._load_weights(state, a.init_from)
            if state.get("optimizer") and _family(state) != _family(self.c.schedule()):
                print(
                    f"train: {a.init_from} was trained with {_family(state)}; the "
                    f"{_family(self.c.schedule())} moments start from zero"
                )
            elif state.get("optimizer"):
                self.optimizer.load_state_dict(state["optimizer"])
                reset_step_count(self.optimizer)
                reset_adamw_steps(self.optimizer)
                for group in self.optimizer.param_groups:
                    group["lr"] = self.c.lr
                    group.pop("initial_lr", None)

    def _load_weights(self, state: dict, path) -> None:
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise UserError(f"{path} does not fit this model ({first})") from None

    def save(self) -> Path | None:
        """Checkpoint on rank 0 (all ranks hold the same weights after each step)."""
        path = None
        if self.info.is_main:
            state = ckpt.make_state(
                step=self.step,
                phase=self.c.phase,
                config={
                    "model": self.cfg.to_dict(),
                    "train": self.c.schedule(),
                    "precision": self.precision,
                },
                model=self.model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                scaler=self.scaler,
                sampler=self.loader,
            )
            path = ckpt.save_and_rotate(self.output / "checkpoints", state, self.c.keep_last)
        dist.barrier()
        return path

    # ---- loop ---------------------------------------------------------------------------
    def train(self, stop: dict, t_start: float) -> int:
        c = self.c
        log = MetricsLog(self.output, self.info.is_main, c.max_steps, self.step)
        if self.info.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            self.cfg.to_json(self.output / "model_config.json")
        batches = iter(self.loader)
        reason = "done"
        try:
            while self.step < c.max_steps:
                micro = list(itertools.islice(batches, c.accumulation))
                if c.log_samples:
                    self._log_samples(micro)
                r = train_step(
                    self.net,
                    self.optimizer,
                    self.scheduler,
                    self.scaler,
                    micro,
                    self.info,
                    self.precision,
                    nsp=self.nsp,
                )
                self.step += 1
                log.log(self._row(r))
                if c.eval_every and self.step % c.eval_every == 0:
                    self._evaluate(log)
                if self.step % c.checkpoint_every == 0:
                    self.save()
                over = bool(c.time_budget) and time.monotonic() - t_start > c.time_budget
                signalled, over = dist.any_rank(
                    (stop["signal"] is not None, over), self.info.device
                )
                if signalled or over:
                    reason = "SIGTERM" if signalled else "time budget"
                    break
            self.save()
            # A time budget is a planned end: evaluate as at the last step (once: not again
            # when --eval-every just did at this step).
            if reason != "SIGTERM" and self._evaluated_at != self.step:
                self._evaluate(log)
        finally:
            log.close()
            self.loader.close()
        if self.info.is_main:
            print(
                f"train: phase {c.phase} stopped at step {self.step} ({reason}); "
                f"checkpoint in {self.output / 'checkpoints'}"
            )
        return 0

    def _log_samples(self, micro: list[dict]) -> None:
        ids = [int(i) for b in micro for i in b["sample_ids"]]
        path = self.output / f"samples-rank{self.info.rank}.jsonl"
        self.output.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(json.dumps({"step": self.step + 1, "ids": ids}) + "\n")

    def _row(self, r) -> dict:
        row = {
            "step": self.step,
            "phase": self.c.phase,
            "loss": r.loss,
            "mlm_loss": r.mlm_loss,
            "mlm_acc": r.mlm_acc,
            "lr": r.lr,
            "grad_norm": r.grad_norm,
            "loss_scale": self.scaler.get_scale() if self.scaler else 1.0,
            "sequences_per_s": r.sequences / r.seconds,
            "tokens_per_s": r.tokens / r.seconds,
            "epoch": self.loader.epoch,
            "skipped": r.skipped,
        }
        if r.nsp_loss is not None:  # absent, not 0, when trained without NSP
            row["nsp_loss"], row["nsp_acc"] = r.nsp_loss, r.nsp_acc
        return row

    _evaluated_at: int | None = None

    def _evaluate(self, log: MetricsLog) -> None:
        self._evaluated_at = self.step
        if not self.shards.validation:
            return
        loader = ValidationLoader(
            self.shards,
            self.c.micro_batch,
            world_size=self.info.world_size,
            rank=self.info.rank,
            seed=self.c.seed,
            pad_to_longest=self.c.phase == 2,
            vocab_size=self.cfg.vocab_size,
        )
        metrics = evaluate(self.model, loader, self.info, self.precision, nsp=self.nsp)
        if metrics:
            log.log({"step": self.step, "phase": self.c.phase, **metrics})


def _family(obj: dict) -> str:
    """``adamw`` or ``lamb`` (every LAMB implementation shares state names) of a checkpoint's
    state or of the run's settings; checkpoints older than ``--optimizer adamw`` are LAMB."""
    train = obj.get("config", {}).get("train", {}) if "config" in obj else obj
    return "adamw" if train.get("optimizer") == "adamw" else "lamb"
