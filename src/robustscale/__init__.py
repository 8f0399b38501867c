"""robustscale: scaling laws, training, evaluation and human studies for adversarial robustness."""

__version__ = "0.1.0"
