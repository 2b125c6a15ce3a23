"""Caption attributes measured on drawn shapes with known answers, and the captions themselves."""
import numpy as np
import pytest
import torch

from course_utils import captions


def canvas():
    return -torch.ones(1, 1, 28, 28)


def bar(width: int, height: int = 16) -> torch.Tensor:
    image = canvas()
    image[0, 0, 6:6 + height, 12:12 + width] = 1.0
    return image


def test_thickness_of_bars_is_their_width():
    widths = captions.stroke_thickness(torch.cat([bar(2), bar(4), bar(6)]))
    assert widths[0] < widths[1] < widths[2]
    assert widths[2].item() == pytest.approx(6 * 16 * 2 / (2 * 16 + 2 * 6 - 4), rel=1e-5)


def test_slant_sign_follows_the_lean():
    right, left = canvas(), canvas()
    for row in range(20):  # top of the stroke to the right: leans right
        right[0, 0, 4 + row, 18 - row // 2: 20 - row // 2] = 1.0
        left[0, 0, 4 + row, 8 + row // 2: 10 + row // 2] = 1.0
    slants = captions.slant(torch.cat([right, left, bar(3)]))
    assert slants[0] > 0.3 and slants[1] < -0.3 and abs(slants[2]) < 1e-6


def test_size_is_the_bounding_box_area():
    assert captions.ink_size(torch.cat([bar(3, 10), bar(5, 16), canvas()])).tolist() == [30.0, 80.0, 0.0]


def test_levels_split_each_class_into_thirds():
    values = torch.arange(30, dtype=torch.float32)
    labels = torch.zeros(30, dtype=torch.long)
    attributes = {"thickness": values}
    levels = captions.attribute_levels(attributes, labels, captions.class_terciles(attributes, labels))["thickness"]
    assert levels.tolist().count(-1) == 10 and levels.tolist().count(1) == 10


def test_caption_names_the_digit_and_only_true_attributes():
    rng = np.random.default_rng(0)
    for _ in range(200):
        text = captions.caption(7, {"thickness": 1, "slant": 0, "size": -1}, rng)
        assert "seven" in text or "7" in text
        assert not any(word in text for word in ("thin", "light", "slanted", "leaning", "large", "big"))
    with pytest.raises(ValueError, match="label"):
        captions.caption(10, {}, rng)


def test_caption_dataset_is_seeded():
    images = torch.cat([bar(2), bar(6), bar(4)] * 4)
    labels = torch.tensor([1, 1, 1] * 4)
    assert captions.caption_dataset(images, labels, seed=1) == captions.caption_dataset(images, labels, seed=1)
