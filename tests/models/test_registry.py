"""Registry: every listed size builds, parameter counts match Table 2 within 1%, names parse."""

import pytest
import torch

from robustscale.errors import RobustscaleError
from robustscale.models import create_model, list_models, load_model, save_model
from robustscale.models.registry import PAPER_SIZES, parse_model_name

# Table 2 of the paper: N in millions, to the precision it prints
TABLE2 = {"wrn-28-4": 5.85, "wrn-40-4": 8.96, "wrn-82-4": 19.8, "wrn-28-12": 52.5, "wrn-58-12": 122.2,
          "wrn-82-12": 177.9, "wrn-70-16": 266.8, "wrn-82-16": 316.4}


@pytest.mark.parametrize("name", list_models())
def test_registered_sizes(name):
    with torch.device("meta"):  # no memory, even for WRN-94-16
        model = create_model(name, num_classes=10)
    assert model.config.name == name
    if name in TABLE2:
        assert model.get_num_params() / 1e6 == pytest.approx(TABLE2[name], rel=0.01)
    y = model(torch.empty(2, 3, 32, 32, device="meta"))
    assert y.shape == (2, 10)


def test_table2_is_registered():
    assert set(TABLE2) <= set(list_models())
    assert len(list_models()) == len(PAPER_SIZES)
    assert list_models("wrn-82-*") == ["wrn-82-4", "wrn-82-8", "wrn-82-12", "wrn-82-16"]


def test_any_depth_width_parses_and_bad_names_fail():
    assert parse_model_name("WRN-16-2") == (16, 2)
    for bad in ("resnet-50", "wrn-27-4", "wrn-4-1", "wrn-28-0"):
        with pytest.raises(RobustscaleError):
            parse_model_name(bad)


def test_fashion_mnist_model_takes_1x28x28_in_unit_range(tmp_path):
    model = create_model("wrn-10-1", dataset="fashion-mnist").eval()
    assert model.input_shape() == (1, 28, 28)
    x = torch.rand(3, 1, 28, 28)
    y = model(x)
    assert y.shape == (3, 10)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m.safetensors").eval()
    assert torch.equal(loaded(x), y)
    assert loaded.config == model.config
