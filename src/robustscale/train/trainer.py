"""The training loop: TRADES adversarial training (§3.1, App. B), exactly resumable, DDP-ready.

One step: augment on the device, clean forward (kept, with its graph), TRADES' PGD-10 on the KL
in train mode with BatchNorm running statistics frozen (as the reference implementation does),
adversarial forward, TRADES loss on both, SGD step, EMA update. The clean forward serves both
the attack's target and the loss (the reference computes it twice, App. B.1).

Determinism: every random choice of step s (the batch, its crops and flips, the attack's start)
is a function of (seed, s, micro-batch), so a run resumed from a checkpoint repeats the
uninterrupted run bit for bit on CPU, and K processes draw what one process with K micro-batches
draws.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robustscale.attacks.evaluation import EVAL_SEED, robust_evaluation
from robustscale.attacks.trades import trades_loss
from robustscale.data.augment import random_crop_flip
from robustscale.data.datasets import dataset_info, eps_note, images_to_tensor, load_dataset
from robustscale.data.sampler import ArraySource, MixingSampler
from robustscale.errors import RobustscaleError
from robustscale.models.wideresnet import BN_MOMENTUM, set_bn_momentum
from robustscale.progress import progress_bar
from robustscale.rundir import RunDir
from robustscale.train import distributed
from robustscale.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from robustscale.train.config import LEGACY_DEFAULTS, TrainConfig
from robustscale.train.ema import EMA
from robustscale.train.loader import BatchLoader
from robustscale.train.schedule import learning_rate, sgd_momentum

HELDOUT_SEED = 20240101  # fixed, not the run's seed: every eval_split "heldout" run holds out the same images
CUDA_SYNC_EVERY = 100  # steps between non-finite-loss checks on CUDA (a check is a host sync)
# Fewer epochs than this and the per-epoch learning-rate schedule is too coarse to follow (warned).
MIN_SCHEDULED_EPOCHS = 10
_AUGMENT, _ATTACK = 1, 2  # purposes of the per-step generators
# metrics.jsonl keys also written as TensorBoard scalars (tag = key) with `tensorboard: true`
TENSORBOARD_SCALARS = ("loss", "accuracy", "clean_accuracy", "train_loss", "lr", "images_per_s")
# config fields that may change on resume: where the run lives and how fast it runs, not what it computes
RESUMABLE_CHANGES = ("out", "data_dir", "synthetic", "device", "compile", "checkpoint_every", "tensorboard")


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, fused: bool = False) -> torch.optim.SGD:
    """§3.1: SGD with Nesterov momentum and weight decay 5e-4; BatchNorm parameters undecayed (reference
    `group_weight`) unless weight_decay_bn. Learning rate and momentum are set per step
    (`set_step_schedule`)."""
    bn = {id(p) for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
          for p in m.parameters()}
    skip = set() if cfg.weight_decay_bn else bn
    groups = [{"params": [p for p in model.parameters() if id(p) not in skip]},
              {"params": [p for p in model.parameters() if id(p) in skip], "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                           weight_decay=cfg.weight_decay, **({"fused": True} if fused else {}))


def set_step_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, step: int, total_steps: int,
                      steps_per_epoch: int) -> float:
    """Set update `step`'s learning rate and momentum (functions of the step alone, so resume repeats them
    exactly); returns the learning rate."""
    lr = learning_rate(step, total_steps, steps_per_epoch, cfg.lr, cfg.warmup_fraction)
    momentum = (sgd_momentum(step, total_steps, steps_per_epoch, cfg.warmup_fraction)
                if cfg.momentum_schedule == "cycle" else cfg.momentum)
    for group in optimizer.param_groups:
        group["lr"], group["momentum"] = lr, momentum
    return lr


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train a model as `config` says; return the result.json content. resume=True continues the run
    in config.out from its checkpoint (or starts it, if it has none); see also `train_run`."""
    return Trainer(config, resume=resume, progress=progress).run()


def train_run(out: str | os.PathLike, *, resume: bool = False, progress: bool = True, **settings) -> dict:
    """Train into the run folder `out` from `settings` (TrainConfig fields; None values ignored).

    resume=True continues the run in `out`: its config.json supplies every setting not given (a run
    killed before writing one needs them all), its checkpoint the state; settings may change only
    where the run lives and how fast it runs (RESUMABLE_CHANGES). Returns the result.json content.
    """
    if resume:
        config = TrainConfig.for_resume(out, **settings)
    else:
        given = {k: v for k, v in settings.items() if v is not None}
        config = TrainConfig.from_dict({**given, "out": str(out)})
    return train(config, resume=resume, progress=progress)


class Trainer:
    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True):
        from rich.console import Console

        self.cfg = cfg = config.resolved()
        self.out = Path(cfg.out)
        self.run_dir = RunDir(cfg.out)
        self.resume = resume
        device_type = (cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")).split(":")[0]
        if device_type == "cuda" and not torch.cuda.is_available():
            raise RobustscaleError("device: cuda requested but torch sees no CUDA device")
        self.dist = distributed.init_distributed(device_type)
        self.device = torch.device(f"cuda:{self.dist.local_rank}"
                                   if device_type == "cuda" and self.dist.enabled
                                   else (cfg.device or device_type))
        self.is_cuda = self.device.type == "cuda"
        if self.is_cuda:  # fixed batch shapes: let cuDNN time its algorithms once and keep the fastest
            torch.backends.cudnn.benchmark = True
        self.console = Console(stderr=True, quiet=not (progress and self.dist.is_main))
        self.progress = progress and self.dist.is_main
        self.augment = dataset_info(cfg.dataset).augment
        # a default radius no anchor publishes (data.datasets.eps_note): said on stderr and in config.json
        self.eps_note = eps_note(cfg.dataset, cfg.norm) if config.eps is None else None
        if self.eps_note and self.dist.is_main:
            print(f"warning: {self.eps_note}", file=sys.stderr)
        per_micro = self.dist.world_size * cfg.accum_steps
        if cfg.batch_size % per_micro:
            raise RobustscaleError(f"batch_size: {cfg.batch_size} does not split into {self.dist.world_size} "
                                   f"processes x {cfg.accum_steps} micro-batches")
        if cfg.sync_bn and self.dist.enabled and not self.is_cuda:
            raise RobustscaleError("sync_bn: needs CUDA (torch's SyncBatchNorm refuses CPU tensors)")
        self._check_run_dir()
        if cfg.tensorboard:
            try:  # torch writes the event files through the tensorboard package (the `train` extra)
                from torch.utils.tensorboard import SummaryWriter  # noqa: F401
            except ImportError:
                raise RobustscaleError("tensorboard: needs the tensorboard package (pip install tensorboard)"
                                       ) from None
        self.bf16 = cfg.bf16 if cfg.bf16 is not None else self.is_cuda
        self.channels_last = cfg.channels_last if cfg.channels_last is not None else True
        self.autocast_dtype = torch.bfloat16 if self.bf16 else None
        self._build_data()
        # the FID and source name found, as config.json and the checkpoint record them
        self.cfg = cfg = dataclasses.replace(cfg, fid=self.fid, source=self.source)
        self.total_steps = math.ceil(cfg.samples / cfg.batch_size)
        self.steps_per_epoch = math.ceil(cfg.epoch_samples / cfg.batch_size)
        self._build_model()
        self.step, self.best_accuracy, self.best_step, self.time_s, self.lr = 0, -1.0, None, 0.0, cfg.lr
        self.last_eval = (0, 0.0)  # (step, time_s) of the last evaluation: images/s between two of them
        self.tensorboard = None
        self.loss_sum, self.loss_count = torch.zeros((), device=self.device), 0
        self.first_bad_step = torch.full((), -1, device=self.device, dtype=torch.long)
        self._generators: dict[tuple, torch.Generator] = {}

    # --- setup --------------------------------------------------------------------------------

    def _check_run_dir(self) -> None:
        self.finished = self.resume and self.run_dir.is_finished()
        if not self.run_dir.is_empty() and not self.resume:
            raise RobustscaleError(f"{self.out}: run directory exists and is not empty; resume the run "
                                   f"(resume=True) or choose another out")

    def _build_data(self) -> None:
        cfg = self.cfg
        images, labels = load_dataset(cfg.dataset, "train", cfg.data_dir)
        if cfg.eval_split == "test":  # the first images of the test split, as `evaluate --n` takes them
            test_images, test_labels = load_dataset(cfg.dataset, "test", cfg.data_dir)
            if cfg.eval_images > len(test_labels):
                raise RobustscaleError(f"eval_images: {cfg.dataset} has {len(test_labels)} test images, "
                                       f"asked for {cfg.eval_images}")
            self.heldout = (test_images[:cfg.eval_images], test_labels[:cfg.eval_images])
        else:
            if cfg.eval_images >= len(labels):
                raise RobustscaleError(f"eval_images: expected fewer than the {len(labels)} training images")
            order = np.random.default_rng(HELDOUT_SEED).permutation(len(labels))
            held, kept = order[:cfg.eval_images], np.sort(order[cfg.eval_images:])
            self.heldout = (images[held], labels[held])
            images, labels = images[kept], labels[kept]
        real = ArraySource(images, labels, name=cfg.dataset, fid=0.0)
        stores = []
        if cfg.synthetic:
            from robustscale.data.store import open_store, pool_fid

            classes = dataset_info(cfg.dataset).num_classes
            for path in cfg.synthetic:
                store = open_store(path)  # manifest, files, sizes; checksums were verified at convert
                if tuple(store.shape) != images.shape[1:] or store.num_classes != classes:
                    raise RobustscaleError(f"{path}: {tuple(store.shape)} images of {store.num_classes} "
                                           f"classes, {cfg.dataset} needs {images.shape[1:]} and {classes}")
                stores.append(store)
        self.sources = [{"name": cfg.dataset, "fid": 0.0, "path": cfg.data_dir, "real": True,
                         "images": len(real)}]
        self.sources += [{"name": s.name, "fid": s.fid, "path": p, "real": False, "images": len(s)}
                         for s, p in zip(stores, cfg.synthetic)]
        # never invented: the declared FID (checked against the manifests) or the manifests'; else an error
        self.fid = pool_fid(stores, cfg.fid) if stores else 0.0
        self.source = cfg.source or ("+".join(s.name for s in stores) if stores else "real")
        self.sampler = MixingSampler(real, stores, cfg.batch_size, cfg.real_fraction, cfg.seed,
                                     self.dist.rank, self.dist.world_size)

    def _build_model(self) -> None:
        from robustscale.flops import forward_flops, train_flops_per_sample
        from robustscale.models.registry import create_model

        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model, dataset=cfg.dataset)
        self.params = model.get_num_params()
        self.forward_flops = forward_flops(model)
        self.flops_per_sample = train_flops_per_sample(model, model.input_shape(), cfg.mode)
        self.bn_momentum = BN_MOMENTUM  # the model's, until the loop sets the step's
        if cfg.sync_bn and self.dist.enabled:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.ema = EMA(model, cfg.ema_decay, start_step=cfg.ema_start_fraction * self.total_steps)
        self.optimizer = make_optimizer(model, cfg, fused=self.is_cuda)
        self.train_net = model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.train_net = DistributedDataParallel(model,
                                                     device_ids=[self.device.index] if self.is_cuda else None)
        self.attack_net = model  # the attack needs input gradients only: no DDP gradient hooks
        if cfg.compile:
            self.train_net, self.attack_net = torch.compile(self.train_net), torch.compile(model)
        self.console.print(
            f"[train] {cfg.model} ({self.params / 1e6:.2f}M params) on {self.device}, {self.dist.world_size} "
            f"process(es); bf16 autocast {'on' if self.bf16 else 'off'}, channels_last "
            f"{'on' if self.channels_last else 'off'}, {'fused' if self.is_cuda else 'plain'} SGD, "
            f"foreach EMA, torch.compile {'on' if cfg.compile else 'off'}, "
            f"cudnn.benchmark {'on' if self.is_cuda else 'off'}, "
            f"batches read ahead on a thread{' into pinned memory' if self.is_cuda else ''}, host sync every "
            f"{CUDA_SYNC_EVERY if self.is_cuda else 1} step(s)")

    def _generator(self, step: int, micro: int, purpose: int, device: torch.device) -> torch.Generator:
        key = (device.type, device.index, purpose)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device)
        seed = np.random.SeedSequence([self.cfg.seed, step, micro, purpose]).generate_state(1, np.uint64)[0]
        return self._generators[key].manual_seed(int(seed) >> 1)

    # --- one step -----------------------------------------------------------------------------

    def loss(self, x: torch.Tensor, y: torch.Tensor, step: int, micro: int) -> torch.Tensor:
        cfg = self.cfg
        if cfg.mode == "standard":
            with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.bf16):
                clean = self.train_net(x)
            return F.cross_entropy(clean.float(), y, label_smoothing=cfg.label_smoothing)
        # the reference's TRADES step; the attack in train mode with frozen BatchNorm statistics and weights
        return trades_loss(self.train_net, x, y, eps=cfg.eps, step_size=cfg.step_size, steps=cfg.attack_steps,
                           beta=cfg.beta, label_smoothing=cfg.label_smoothing, start=cfg.attack_start,
                           norm=cfg.norm, generator=self._generator(step, micro, _ATTACK, self.device),
                           autocast_dtype=self.autocast_dtype, attack_model=self.attack_net)

    def _train_step(self, step: int, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One step on this process's batch (uint8 NHWC images and labels, already on the device)."""
        accum = self.cfg.accum_steps
        self.sampler.step = step + 1  # the loader reads ahead; the sampler's state is the step trained
        m = len(labels) // accum
        total = torch.zeros((), device=self.device)
        for k in range(accum):
            micro = self.dist.rank * accum + k  # global micro-batch number: K processes == K micro-batches
            x = images[k * m:(k + 1) * m].permute(0, 3, 1, 2).float().div_(255)
            y = labels[k * m:(k + 1) * m]
            if self.augment:
                x = random_crop_flip(x, generator=self._generator(step, micro, _AUGMENT, torch.device("cpu")))
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            no_sync = self.dist.enabled and k < accum - 1
            with self.train_net.no_sync() if no_sync else contextlib.nullcontext():
                loss = self.loss(x, y, step, micro)
                (loss / accum).backward()
            total += loss.detach()
        return total / accum

    def apply_update(self, step: int) -> None:
        """Optimiser step on the accumulated gradients, then the EMA (foreach, no host sync)."""
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.model, step)

    # --- evaluation -----------------------------------------------------------------------------

    def evaluate(self) -> dict:
        """EMA model on the held-out images: clean acc, PGD-40-CW acc and the paper's loss on those, measured
        by `attacks.evaluation.robust_evaluation` (the definition `robustscale evaluate` uses; fp32)."""
        self.ema.copy_bn_stats(self.model)
        x_all, y_all = self.heldout
        y = torch.from_numpy(y_all)
        r = robust_evaluation(self.ema.model, images_to_tensor(x_all), y, eps=self.cfg.eps,
                              steps=self.cfg.eval_steps, seed=EVAL_SEED, norm=self.cfg.norm)
        return {"clean_accuracy": (r["clean_pred"] == y).float().mean().item(),
                "accuracy": (r["adv_pred"] == y).float().mean().item(), "loss": r["loss"].mean().item()}

    # --- state ----------------------------------------------------------------------------------

    def _config_record(self) -> dict:
        return {**self.cfg.asdict(), "params": self.params, "forward_flops": self.forward_flops,
                "flops_per_sample": self.flops_per_sample, "sources": self.sources,
                "total_steps": self.total_steps, "world_size": self.dist.world_size,
                # intra-op threads per process (Slurm: the task's CPUs)
                "threads": torch.get_num_threads(), "eps_note": self.eps_note}

    def state_dict(self) -> dict:
        return {"step": self.step, "config": self.cfg.asdict(), "model": self.model.state_dict(),
                "ema": self.ema.state_dict(), "optimizer": self.optimizer.state_dict(),
                "sampler": self.sampler.state_dict(), "rng": rng_state(), "best_accuracy": self.best_accuracy,
                "best_step": self.best_step, "loss_sum": self.loss_sum.cpu(), "loss_count": self.loss_count,
                "time_s": self.time_s, "lr": self.lr, "last_eval": self.last_eval}

    def load_state_dict(self, state: dict) -> None:
        # a field newer than the checkpoint (absent from it): what its trainer did (LEGACY_DEFAULTS), else
        # the default's meaning
        old, new = {**LEGACY_DEFAULTS, **state["config"]}, self.cfg.asdict()
        for key in new:
            if key not in RESUMABLE_CHANGES and key in old and old[key] != new[key]:
                raise RobustscaleError(f"{self.run_dir.checkpoint_path}: {key} was {old.get(key)!r}, now "
                                       f"{new[key]!r}; resume with the run's settings")
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        self.step, self.best_step = state["step"], state["best_step"]
        self.best_accuracy = state.get("best_accuracy", state.get("best_pgd_acc"))  # older checkpoints' name
        self.loss_sum, self.loss_count = state["loss_sum"].to(self.device), state["loss_count"]
        self.time_s, self.lr = state["time_s"], state["lr"]
        self.last_eval = tuple(state.get("last_eval", (self.step, self.time_s)))

    def save(self, path: Path | None = None) -> None:
        if self.dist.is_main:
            save_checkpoint(path or self.run_dir.checkpoint_path, self.state_dict())
        distributed.barrier(self.dist)

    def _restore(self) -> None:
        """Fresh run: write config.json. Resume: load the checkpoint, drop metrics past it (the steps
        after the checkpoint are trained again and must not be recorded twice)."""
        run = self.run_dir
        if self.resume and run.has_checkpoint():
            self.load_state_dict(load_checkpoint(run.checkpoint_path))
            if self.dist.is_main:
                run.truncate_metrics(self.step)
            self.console.print(f"[train] resumed {self.out} at step {self.step}/{self.total_steps}")
        elif self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            run.clear_metrics()
            run.write_config(self._config_record())
        if self.cfg.tensorboard and self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: events a killed run logged after its checkpoint are dropped, as metrics.jsonl's are
            purge = self.step + 1 if self.step else None
            self.tensorboard = SummaryWriter(str(run.tensorboard_dir), purge_step=purge)
        distributed.barrier(self.dist)

    def _check_finite(self) -> None:
        bad = int(self.first_bad_step.item())
        if bad >= 0:
            self.save(self.run_dir.nonfinite_path)
            raise RobustscaleError(f"{self.out}: training loss became non-finite at step {bad} (sample "
                                   f"{bad * self.cfg.batch_size}); state saved to "
                                   f"{self.run_dir.nonfinite_path}, last good checkpoint "
                                   f"{self.run_dir.checkpoint_path}")

    # --- the loop -------------------------------------------------------------------------------

    def _is_eval_step(self, done: int) -> bool:
        every, b = self.cfg.eval_every, self.cfg.batch_size
        return done == self.total_steps or (done * b) // every > ((done - 1) * b) // every

    def _record_evaluation(self, done: int) -> dict:
        from robustscale.models.weights import save_model

        scores = self.evaluate()
        samples = done * self.cfg.batch_size
        since_step, since_time = self.last_eval
        seconds = self.time_s - since_time
        line = {"step": done, "samples": samples, "flops": samples * self.flops_per_sample, "lr": self.lr,
                "train_loss": self.loss_sum.item() / max(1, self.loss_count), **scores,
                "eval_split": self.cfg.eval_split, "time_s": round(self.time_s, 3),
                # training images per second since the last evaluation (training steps only, not evaluations)
                "images_per_s": round((done - since_step) * self.cfg.batch_size / seconds, 3) if seconds > 0
                else None}
        self.last_eval = (done, self.time_s)
        self.run_dir.append_metrics(line)
        if self.tensorboard is not None:
            for key in TENSORBOARD_SCALARS:
                if line[key] is not None:
                    self.tensorboard.add_scalar(key, line[key], done)
            self.tensorboard.flush()
        if scores["accuracy"] > self.best_accuracy:
            self.best_accuracy, self.best_step = scores["accuracy"], done
            save_model(self.ema.model, self.run_dir.best_stem, metadata=line)
        return line

    def run(self) -> dict:
        if self.finished:
            return self.run_dir.read_result()
        self._restore()
        cfg = self.cfg
        if (self.sampler.synthetic_size
                and self.total_steps * self.sampler.n_synthetic > self.sampler.synthetic_size):
            self.console.print(f"[train] the budget needs {self.total_steps * self.sampler.n_synthetic} "
                               f"synthetic images, the pool has {self.sampler.synthetic_size}: "
                               "later passes reuse images")
        epochs = self.total_steps / self.steps_per_epoch
        if epochs < MIN_SCHEDULED_EPOCHS:
            # The reference steps its one-cycle schedule once per epoch; a run of a few epochs then
            # sees a few learning rates only (one epoch: the final, near-zero one throughout).
            self.console.print(f"[train] warning: the run spans {epochs:.3g} epoch(s) of epoch_samples="
                               f"{cfg.epoch_samples}, and the learning rate changes once per epoch; set "
                               f"epoch_samples to the batch size to schedule it every step")
        self.model.train()
        last = None
        with progress_bar(self.total_steps, "train", enabled=self.progress and self.dist.is_main,
                          completed=self.step) as advance, \
                BatchLoader(self.sampler, self.device, self.step, self.total_steps) as batches:
            while self.step < self.total_steps:
                t0 = time.perf_counter()
                step, images, labels = batches.next()
                self.lr = set_step_schedule(self.optimizer, cfg, step, self.total_steps, self.steps_per_epoch)
                # reference `watrain.py`: BatchNorm momentum 1.0 for the first step only (running statistics
                # start as the first batch's, as Haiku's do), then the configured 0.01
                bn_momentum = 1.0 if step == 0 else cfg.bn_momentum
                if bn_momentum != self.bn_momentum:
                    set_bn_momentum(self.model, bn_momentum)
                    self.bn_momentum = bn_momentum
                loss = self._train_step(step, images, labels)
                bad = ~torch.isfinite(loss)
                self.first_bad_step = torch.where(bad & (self.first_bad_step < 0), step, self.first_bad_step)
                if not self.is_cuda or (step + 1) % CUDA_SYNC_EVERY == 0:
                    self._check_finite()  # on CPU before the bad step's update; on CUDA within 100 steps
                self.apply_update(step)
                self.loss_sum += loss
                self.loss_count += 1
                self.step = done = step + 1
                self.time_s += time.perf_counter() - t0
                evaluate = self._is_eval_step(done)
                if evaluate:
                    self._check_finite()
                    # each rank summed the loss of its own slice; the metric is the global batch's
                    self.loss_sum = distributed.mean_over_ranks(self.dist, self.loss_sum)
                    if self.dist.is_main:
                        last = self._record_evaluation(done)
                        advance(0, status=f"pgd {last['accuracy']:.3f} clean {last['clean_accuracy']:.3f} "
                                          f"loss {last['loss']:.3f}")
                    self.loss_sum, self.loss_count = torch.zeros_like(self.loss_sum), 0
                    self.model.train()
                if evaluate or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0):
                    self.save()
                advance()
        return self._finish(last)

    def _finish(self, last: dict | None) -> dict:
        from robustscale.models.weights import save_model

        result = None
        if self.dist.is_main:
            if last is None:  # resumed after the final evaluation was written
                last = self.run_dir.read_metrics()[-1]
            if self.tensorboard is not None:
                self.tensorboard.close()
            self.ema.copy_bn_stats(self.model)
            save_model(self.ema.model, self.run_dir.model_stem, metadata=last)
            samples = self.total_steps * self.cfg.batch_size
            result = {"out": str(self.out), "model": self.cfg.model, "dataset": self.cfg.dataset,
                      "mode": self.cfg.mode, "params": self.params, "samples": samples,
                      "steps": self.total_steps,
                      "flops": samples * self.flops_per_sample, "fid": self.fid,
                      "time_s": round(self.time_s, 3),
                      "synthetic_passes": self.sampler.synthetic_passes, "final": last,
                      "source": self.source, "best": {"step": self.best_step, "accuracy": self.best_accuracy},
                      "model_path": str(self.run_dir.model_stem.with_suffix(".safetensors")),
                      "best_path": str(self.run_dir.best_stem.with_suffix(".safetensors"))}
            self.run_dir.write_result(result)
        result = distributed.broadcast_object(self.dist, result)
        # the DDP wrapper goes before its process group: destroying a gloo group under a live DDP
        # module aborts some processes at exit ("terminate called without an active exception")
        self.train_net = self.attack_net = self.model
        gc.collect()
        distributed.shutdown(self.dist)
        return result
