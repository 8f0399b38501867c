"""The WideResNet family of the paper, its registry and weight files."""

from robustscale.models.registry import create_model, list_models, model_config
from robustscale.models.weights import load_model, save_model
from robustscale.models.wideresnet import WideResNet, WRNConfig

__all__ = ["WideResNet", "WRNConfig", "create_model", "list_models", "model_config", "load_model",
           "save_model"]
