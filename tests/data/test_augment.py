"""random_crop_flip: shifts within the pad, flips, reproducible from the generator."""

import torch

from robustscale.data.augment import random_crop_flip


def test_crop_is_a_shift_with_zero_fill_and_flip_mirrors():
    x = torch.rand(64, 1, 28, 28) + 1  # strictly positive, so zero fill is visible
    g = torch.Generator().manual_seed(0)
    out = random_crop_flip(x, pad=4, generator=g)
    assert out.shape == x.shape
    found_flip = found_shift = False
    for i in range(64):
        matched = False
        for img, flipped in ((x[i], False), (x[i].flip(-1), True)):
            for dy in range(-4, 5):
                for dx in range(-4, 5):
                    shifted = torch.zeros_like(img)
                    src = img[:, max(0, dy):28 + min(0, dy), max(0, dx):28 + min(0, dx)]
                    shifted[:, max(0, -dy):28 - max(0, dy), max(0, -dx):28 - max(0, dx)] = src
                    if torch.equal(shifted, out[i]):
                        matched = True
                        found_flip |= flipped and (dx, dy) != (0, 0)
                        found_shift |= (dx, dy) != (0, 0)
        assert matched, i
    assert found_flip and found_shift
    again = random_crop_flip(x, pad=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, out)
