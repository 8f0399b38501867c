"""Adversarial training (TRADES, §3.1 / App. B): `train(TrainConfig(...))` writes a run directory."""

from robustscale.train.config import TrainConfig, paper_batch_and_lr, parse_samples
from robustscale.train.trainer import Trainer, train, train_run

__all__ = ["TrainConfig", "Trainer", "train", "train_run", "paper_batch_and_lr", "parse_samples"]
