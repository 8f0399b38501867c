"""TrainConfig: every knob of a training run in one visible place, defaults from the paper.

Where the paper leaves a setting open the default is the paper's own training code
(bbartoldson/Adversarial-Robustness-Limits: `configs/defaults.json`, `gowal21uncovering/utils/
watrain.py` and `trades.py`), cited per field as "reference". One deliberate difference: the clean
forward that gives TRADES' attack its target is reused in the loss (26 forward-equivalents per
sample instead of the reference's 27; the same loss, see `attacks.trades.trades_loss`); FLOPs are
still counted as App. B's 27 so that budgets compare with the paper's.

`TrainConfig.from_dict(d)` validates (RobustscaleError naming the field); `resolved()` fills the
budget-dependent values (batch size, learning rate, eps, evaluation cadence) so that config.json
records exactly what ran; `TrainConfig.for_resume(out, **changes)` rebuilds a run's config to continue it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Any

from robustscale.data.datasets import DATASETS, NORMS
from robustscale.data.sampler import REAL_FRACTION
from robustscale.errors import RobustscaleError

MODES = ("trades", "standard")
ATTACK_STARTS = ("uniform", "normal")
MOMENTUM_SCHEDULES = ("cycle", "constant")
EVAL_SPLITS = ("test", "heldout")
# what runs written before a field existed did, so that resuming one keeps its settings
LEGACY_DEFAULTS = {"momentum_schedule": "constant", "eval_split": "heldout"}
DATASET_NAMES = tuple(DATASETS)
EVALUATIONS_PER_RUN = 10  # default cadence when eval_every is not given: 10 points per learning curve
_SAMPLES = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbg]?)\s*$", re.IGNORECASE)
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9}


def parse_samples(text: str | int | float, field: str = "samples") -> int:
    """'10M', '200k', '1e6', '5000' -> int. Rejects zero, negatives and fractions of a sample."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _SAMPLES.match(str(text))
        if not m:
            raise RobustscaleError(f"{field}: expected a sample count such as 10M, 200k, 1e6 or 5000, "
                                   f"got {text!r}")
        value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if value < 1 or value != math.floor(value):
        raise RobustscaleError(f"{field}: expected a positive whole number of samples, got {text!r}")
    return int(value)


def paper_batch_and_lr(samples: int) -> tuple[int, float]:
    """§3.1 / App. D: batch 1024 and lr 0.3 up to 10M samples, 2048 and 0.2 up to 200M, 2048 and 0.1
    beyond."""
    if samples <= 10_000_000:
        return 1024, 0.3
    if samples <= 200_000_000:
        return 2048, 0.2
    return 2048, 0.1


@dataclasses.dataclass
class TrainConfig:
    model: str  # registry name, e.g. wrn-28-4
    dataset: str  # a name of data.datasets.DATASETS: the real data, held-out set and attack radius
    samples: int  # training samples seen (D of the scaling laws)
    out: str  # run directory
    data_dir: str | None = None
    synthetic: list[str] = dataclasses.field(default_factory=list)  # shard stores (data/store.py)
    # share of real images per batch when synthetic data is given; 0 = synthetic only, as the paper's
    # scaling-law runs (App. E; reference `example_run_for_scaling_laws.json`: unsup_fraction 1). The
    # held-out evaluation always uses real images.
    real_fraction: float = REAL_FRACTION
    # FID of the synthetic pool, as declared (a sweep source's `fid`, `--fid`); None -> the stores' manifests.
    # A synthetic run whose FID is known nowhere is refused: the FID is an input of the law (§3.2.2).
    fid: float | None = None
    source: str | None = None  # the data source's name (a sweep source's); None: "real" or the stores' names
    mode: str = "trades"  # "standard" = plain cross-entropy training, everything else the same
    batch_size: int | None = None  # None -> paper_batch_and_lr(samples), App. D
    lr: float | None = None  # peak learning rate; None -> paper_batch_and_lr(samples), App. D
    norm: str = "linf"  # threat model of the attacks: "linf" (§3.1) or "l2" (the reference's l2-pgd)
    eps: float | None = None  # None -> the dataset's default for norm (8/255 L-inf for CIFAR-10, §3.1)
    # None -> L-inf: eps / 4 (2/255 at 8/255, §3.1); L2: 2 eps / attack_steps, the reference's TRADES
    # l2-pgd step (`gowal21uncovering/utils/trades.py`: SGD on the perturbation with lr epsilon / steps * 2)
    step_size: float | None = None
    attack_steps: int = 10  # §3.1: PGD-10 at training time
    # TRADES attack start: "uniform" in the eps ball, or "normal", 0.001 N(0, 1) (the original TRADES code);
    # None -> the reference's (`trades.py`): uniform for L-inf, normal for L2
    attack_start: str | None = None
    beta: float = 5.0  # §3.1: TRADES beta
    label_smoothing: float = 0.1  # §3.1: on the clean cross-entropy term
    ema_decay: float = 0.995  # §3.1: weight averaging tau
    # reference `ema_update`: the average equals the model for the first 2.5% of the steps, then decays at
    # min(tau, (1 + t) / (10 + t)), t counted from there
    ema_start_fraction: float = 0.025
    # SGD momentum: "cycle" as the reference, whose OneCycleLR keeps torch's default cycle_momentum=True
    # (`watrain.py` init_scheduler): 0.95, down to 0.85 at the end of warm-up, back to 0.95, stepped with the
    # learning rate (train.schedule.sgd_momentum); "constant" keeps `momentum` throughout
    momentum_schedule: str = "cycle"
    momentum: float = 0.9  # §3.1: SGD with Nesterov momentum 0.9 (the reference's SGD before its schedule)
    # BatchNorm running-statistics momentum: reference 0.01 (the model's), 1.0 on the first step
    # (`watrain.py`)
    bn_momentum: float = 0.01
    weight_decay: float = 5e-4  # §3.1
    weight_decay_bn: bool = False  # reference `group_weight`: BatchNorm weights and biases are not decayed
    # one-cycle cosine schedule (Smith & Topin; reference "cosinew" = torch OneCycleLR): share of the
    # schedule rising to the peak lr (reference defaults.json: pct_start 0.025)
    warmup_fraction: float = 0.025
    # the reference's epoch (App. E: 50,000 samples, CIFAR-10's training set): its learning rate steps once
    # per epoch of ceil(epoch_samples / batch_size) steps; set it to batch_size to step every update
    epoch_samples: int = 50_000
    eval_every: int | None = None  # samples between evaluations; None -> samples / 10
    # held-out scores (and the scaling law's loss) on: "test", the first eval_images images of the dataset's
    # test split, as the paper's `CW_test_loss` (reference `train_wa_distributed.py`, `update_result_row`:
    # PGD-40-CW on the test set); "heldout", eval_images real training images left out of training
    eval_split: str = "test"
    eval_images: int = 1024
    eval_steps: int = 40  # §3.1: PGD-40 on the CW loss for held-out accuracy and loss
    checkpoint_every: int | None = None  # steps between checkpoints; None -> at each evaluation
    accum_steps: int = 1  # micro-batches per step (gradient accumulation) on each process
    seed: int = 0
    device: str | None = None  # None -> cuda if available, else cpu
    bf16: bool | None = None  # bf16 autocast; None -> on for CUDA
    # None -> on: faster on CUDA and on the CPU too (measured on 2 CPU cores at batch 32-64: training
    # 1.13-1.52x, PGD-40 1.22-1.52x; bench/bench_train.py), and the same arithmetic up to kernel order
    channels_last: bool | None = None
    compile: bool = False  # torch.compile the model (CUDA)
    sync_bn: bool = False  # SyncBatchNorm across processes (CUDA only: torch refuses it on CPU)
    tensorboard: bool = False  # also write TensorBoard event files beside metrics.jsonl (rundir.RunDir)

    def __post_init__(self):
        self.synthetic = [str(s) for s in (self.synthetic or [])]
        self.out = str(self.out)
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
        self.samples = parse_samples(self.samples)
        self._validate()

    def _validate(self) -> None:
        def need(ok: bool, field: str, what: str) -> None:
            if not ok:
                raise RobustscaleError(f"{field}: expected {what}, got {getattr(self, field)!r}")

        from robustscale.models.registry import parse_model_name

        parse_model_name(self.model)
        need(self.dataset in DATASET_NAMES, "dataset", f"one of {', '.join(DATASET_NAMES)}")
        need(self.mode in MODES, "mode", f"one of {', '.join(MODES)}")
        need(0 <= self.real_fraction <= 1, "real_fraction", "a number in [0, 1]")
        need(self.real_fraction > 0 or bool(self.synthetic), "real_fraction",
             "a number > 0 without synthetic data (0 trains on synthetic data only)")
        fid_ok = (isinstance(self.fid, (int, float)) and not isinstance(self.fid, bool)
                  and math.isfinite(self.fid))
        need(self.fid is None or (fid_ok and self.fid >= 0), "fid", "a number >= 0 or null")
        need(self.fid is None or bool(self.synthetic) or self.fid == 0, "fid",
             "0 or null without synthetic data (real data's FID is 0)")
        need(self.attack_start is None or self.attack_start in ATTACK_STARTS, "attack_start",
             f"one of {', '.join(ATTACK_STARTS)} or null")
        need(self.momentum_schedule in MOMENTUM_SCHEDULES, "momentum_schedule",
             f"one of {', '.join(MOMENTUM_SCHEDULES)}")
        need(self.eval_split in EVAL_SPLITS, "eval_split", f"one of {', '.join(EVAL_SPLITS)}")
        need(self.norm in NORMS, "norm", f"one of {', '.join(NORMS)}")
        for f in ("batch_size", "eval_every", "checkpoint_every"):
            v = getattr(self, f)
            need(v is None or (isinstance(v, int) and v >= 1), f, "a positive integer or null")
        for f in ("lr", "eps", "step_size"):
            v = getattr(self, f)
            need(v is None or (isinstance(v, (int, float)) and v > 0), f, "a positive number or null")
        need(isinstance(self.attack_steps, int) and self.attack_steps >= 1, "attack_steps", "an integer >= 1")
        need(isinstance(self.eval_steps, int) and self.eval_steps >= 1, "eval_steps", "an integer >= 1")
        need(isinstance(self.eval_images, int) and self.eval_images >= 1, "eval_images", "an integer >= 1")
        need(isinstance(self.accum_steps, int) and self.accum_steps >= 1, "accum_steps", "an integer >= 1")
        need(isinstance(self.epoch_samples, int) and self.epoch_samples >= 1, "epoch_samples",
             "an integer >= 1")
        need(self.beta >= 0, "beta", "a number >= 0")
        need(0 <= self.label_smoothing < 1, "label_smoothing", "a number in [0, 1)")
        need(0 <= self.ema_decay < 1, "ema_decay", "a number in [0, 1)")
        need(0 <= self.momentum < 1, "momentum", "a number in [0, 1)")
        need(0 < self.bn_momentum <= 1, "bn_momentum", "a number in (0, 1]")
        need(self.weight_decay >= 0, "weight_decay", "a number >= 0")
        need(0 <= self.warmup_fraction < 1, "warmup_fraction", "a number in [0, 1)")
        need(0 <= self.ema_start_fraction < 1, "ema_start_fraction", "a number in [0, 1)")
        need(self.device is None or str(self.device).split(":")[0] in ("cpu", "cuda"), "device",
             "cpu, cuda or cuda:N")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Build from a dict (e.g. config.json), rejecting unknown fields by name."""
        if not isinstance(d, dict):
            raise RobustscaleError(f"config: expected a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise RobustscaleError(f"{unknown[0]}: unknown TrainConfig field "
                                   f"(known: {', '.join(sorted(names))})")
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   and f.name not in d]
        if missing:
            raise RobustscaleError(f"{missing[0]}: required TrainConfig field is missing")
        return cls(**d)

    @classmethod
    def for_resume(cls, out: str | os.PathLike, **changes: Any) -> "TrainConfig":
        """The config of the run in `out` (its config.json), with `changes` applied (None values ignored).

        Without a config.json (the run never started) `changes` must hold the whole config. The trainer
        refuses changes that alter what the run computes (see trainer.RESUMABLE_CHANGES).
        """
        from robustscale.rundir import RunDir

        run = RunDir(out)
        names = {f.name for f in dataclasses.fields(cls)}
        base: dict[str, Any] = {}
        if run.is_run():
            base = {**LEGACY_DEFAULTS, **{k: v for k, v in run.read_config().items() if k in names}}
        base.update({k: v for k, v in changes.items() if v is not None})
        base["out"] = str(out)
        return cls.from_dict(base)

    def asdict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved(self) -> "TrainConfig":
        """A copy with the budget- and dataset-dependent defaults filled in."""
        from robustscale.data.datasets import default_eps

        batch, lr = paper_batch_and_lr(self.samples)
        eps = self.eps if self.eps is not None else default_eps(self.dataset, self.norm)
        step_size = eps / 4 if self.norm == "linf" else 2 * eps / self.attack_steps  # 8/255 -> 2/255
        batch_size = self.batch_size or batch
        return dataclasses.replace(
            self, batch_size=batch_size, lr=self.lr if self.lr is not None else lr, eps=eps,
            step_size=self.step_size if self.step_size is not None else step_size,
            attack_start=self.attack_start or ("uniform" if self.norm == "linf" else "normal"),
            eval_every=self.eval_every or max(batch_size, self.samples // EVALUATIONS_PER_RUN))
