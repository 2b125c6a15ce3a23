"""Captions for MNIST digits from the label and measured attributes of the image (notebook 06).

MNIST has labels, not captions. To train text-to-image at toy scale the course writes captions the way
web-scale datasets were filtered for image-text pairs: a description that is true of the image. Each
digit gets its label in words and, when the digit is unusual for its class, words for three measured
attributes:

- **thickness**: mean stroke width in pixels, 2 * ink area / boundary length (a stroke of width w and
  length L has area w L and a boundary of about 2 L);
- **slant**: the horizontal shear of the ink, -cov(x, y) / var(y) over the ink pixels (the moment
  used to deskew MNIST, LeCun et al. 1998); positive leans right;
- **size**: the area of the ink's bounding box in pixels.

"Unusual" is judged within the class (a thick 1 is thinner than a thin 8): an attribute is named when
it falls in the top or bottom third of its class.
"""
from __future__ import annotations

import numpy as np
import torch

from .validation import check_image_range, check_images, check_integer, check_number, check_tensor

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ATTRIBUTES = ("thickness", "slant", "size")
# words for the bottom and the top third of each attribute
ATTRIBUTE_WORDS = {"thickness": (("thin", "light"), ("thick", "bold")),
                   "slant": (("slanted left", "leaning left"), ("slanted right", "leaning right")),
                   "size": (("small", "tiny"), ("large", "big"))}
TEMPLATES = ("a handwritten {word}", "the digit {digit}", "the number {word}", "a {word}",
             "a photo of a handwritten {digit}", "{digit}")
ATTRIBUTE_TEMPLATES = ("a {adjectives} {word}", "the digit {digit}, {adjectives}", "a {adjectives} handwritten {word}",
                       "the number {word}, {adjectives}")
INK_THRESHOLD = 0.5  # on [0, 1] intensities
LABEL_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64)  # uint8 would index as a mask


def _check_attributes(attributes) -> int:
    """``attributes`` is a non-empty dict of 1-D tensors of one length, as :func:`measure_attributes` returns; -> N."""
    if not isinstance(attributes, dict) or not attributes:
        raise TypeError(f"attributes must be a non-empty dict of [N] tensors (from measure_attributes), "
                        f"got {type(attributes).__name__}")
    for name, values in attributes.items():
        check_tensor(f"attributes[{name!r}]", values, dims=1)
    lengths = {len(values) for values in attributes.values()}
    if len(lengths) > 1:
        raise ValueError(f"attributes must all have one length, got lengths {sorted(lengths)}")
    return lengths.pop()


def _check_labels(labels, count: int) -> None:
    """``labels`` is a 1-D integer tensor of ``count`` digit classes 0..9 (a data-dependent check: once per dataset)."""
    check_tensor("labels", labels, dims=1)
    if labels.dtype not in LABEL_DTYPES:
        raise TypeError(f"labels must be an integer tensor ({', '.join(map(str, LABEL_DTYPES))}), "
                        f"got dtype {labels.dtype}")
    if len(labels) != count:
        raise ValueError(f"labels must have one label per image ({count}), got {len(labels)}")
    if len(labels) and not 0 <= labels.min() <= labels.max() <= 9:
        raise ValueError(f"labels must be digit classes in [0, 9], got values in "
                         f"[{labels.min().item()}, {labels.max().item()}]")


def ink_masks(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1], [N, 1, H, W] -> boolean ink masks [N, H, W]."""
    check_images("images", images, channels=1)
    if not torch.isfinite(images).all():  # NaN is never ink: a NaN image would pass for a blank one
        raise ValueError("images must hold numbers in [-1, 1], got NaN or infinity")
    check_image_range("images", images, digits=True)  # ink is thresholded on [-1, 1]: 0..255 would be all ink
    return (images[:, 0] + 1) / 2 > INK_THRESHOLD


def stroke_thickness(images: torch.Tensor) -> torch.Tensor:
    """Mean stroke width in pixels, 2 * area / boundary, per image -> [N].

    The boundary counts ink pixels with at least one of their four neighbours outside the ink."""
    ink = ink_masks(images)
    padded = torch.nn.functional.pad(ink, (1, 1, 1, 1), value=False)
    interior = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    boundary = (ink & ~interior).flatten(1).sum(1).clamp_min(1)
    return 2.0 * ink.flatten(1).sum(1) / boundary


def _ink_coordinates(images: torch.Tensor):
    ink = ink_masks(images).float()
    height, width = ink.shape[1:]
    ys = torch.arange(height, dtype=torch.float32, device=ink.device)[None, :, None].expand_as(ink)
    xs = torch.arange(width, dtype=torch.float32, device=ink.device)[None, None, :].expand_as(ink)
    return ink, xs, ys


def slant(images: torch.Tensor) -> torch.Tensor:
    """Shear of the ink, -cov(x, y) / var(y) -> [N]; positive when the top leans right (y points down)."""
    ink, xs, ys = _ink_coordinates(images)
    mass = ink.sum((1, 2)).clamp_min(1)
    mean_x = (ink * xs).sum((1, 2)) / mass
    mean_y = (ink * ys).sum((1, 2)) / mass
    cov_xy = (ink * (xs - mean_x[:, None, None]) * (ys - mean_y[:, None, None])).sum((1, 2)) / mass
    var_y = (ink * (ys - mean_y[:, None, None]) ** 2).sum((1, 2)) / mass
    return -cov_xy / var_y.clamp_min(1e-6)


def ink_size(images: torch.Tensor) -> torch.Tensor:
    """Area in pixels of the bounding box of the ink -> [N] (0 for a blank image)."""
    ink = ink_masks(images)
    rows, cols = ink.any(2), ink.any(1)

    def extent(lines: torch.Tensor) -> torch.Tensor:
        index = torch.arange(lines.shape[1], device=lines.device)
        first = torch.where(lines, index, lines.shape[1]).min(1).values
        last = torch.where(lines, index, -1).max(1).values
        return (last - first + 1).clamp_min(0)

    return (extent(rows) * extent(cols)).float()


def measure_attributes(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """All three attributes of a batch of images in [-1, 1]: ``{"thickness", "slant", "size"}`` -> [N] each."""
    return {"thickness": stroke_thickness(images), "slant": slant(images), "size": ink_size(images)}


def class_terciles(attributes: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The 1/3 and 2/3 quantiles of each attribute within each digit class -> ``{name: [10, 2]}``
    (a class with no images gets the quantiles of all of them)."""
    _check_labels(labels, _check_attributes(attributes))

    def terciles(values: torch.Tensor, digit: int) -> torch.Tensor:
        in_class = values[labels.to(values.device) == digit]
        return torch.quantile(in_class if len(in_class) else values, torch.tensor([1 / 3, 2 / 3], device=values.device))

    return {name: torch.stack([terciles(values, digit) for digit in range(10)]) for name, values in attributes.items()}


def attribute_levels(attributes: dict[str, torch.Tensor], labels: torch.Tensor,
                     terciles: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """-1 (bottom third of its class), 0 (middle) or +1 (top third), per attribute and image."""
    _check_labels(labels, _check_attributes(attributes))
    if not isinstance(terciles, dict):
        raise TypeError(f"terciles must be a dict of [10, 2] tensors (from class_terciles), "
                        f"got {type(terciles).__name__}")
    missing = [name for name in attributes if name not in terciles]
    if missing:
        raise ValueError(f"terciles must have an entry for each attribute ({', '.join(attributes)}), "
                         f"missing {', '.join(map(repr, missing))}")
    for name in attributes:
        check_tensor(f"terciles[{name!r}]", terciles[name], shape=(10, 2))
    levels = {}
    for name, values in attributes.items():
        low, high = terciles[name][labels, 0], terciles[name][labels, 1]
        levels[name] = (values > high).long() - (values < low).long()
    return levels


def caption(label: int, levels: dict[str, int], rng: np.random.Generator, attribute_rate: float = 0.7) -> str:
    """One caption for a digit: its label in words or numerals, and with probability ``attribute_rate``
    words for those of its attributes that are not middling (``levels[name]`` is -1, 0 or +1)."""
    check_integer("label", label, 0, 9)
    if not isinstance(levels, dict):
        raise TypeError(f"levels must be a dict {{attribute name: -1, 0 or 1}}, got {type(levels).__name__}")
    unknown = [name for name in levels if name not in ATTRIBUTE_WORDS]
    if unknown or any(level not in (-1, 0, 1) for level in levels.values()):
        raise ValueError(f"levels must map names among {', '.join(ATTRIBUTES)} to -1, 0 or 1, got {levels!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), "
                        f"got {rng!r} ({type(rng).__name__})")
    check_number("attribute_rate", attribute_rate, 0, 1)
    fields = {"word": NUMBER_WORDS[label], "digit": str(label)}
    adjectives = [ATTRIBUTE_WORDS[name][int(level > 0)][rng.integers(2)]
                  for name, level in levels.items() if level != 0]
    if adjectives and rng.random() < attribute_rate:
        rng.shuffle(adjectives)
        joined = adjectives[0] if len(adjectives) == 1 else ", ".join(adjectives[:-1]) + " and " + adjectives[-1]
        template = ATTRIBUTE_TEMPLATES[rng.integers(len(ATTRIBUTE_TEMPLATES))]
        return template.format(adjectives=joined, **fields)
    return TEMPLATES[rng.integers(len(TEMPLATES))].format(**fields)


def caption_dataset(images: torch.Tensor, labels: torch.Tensor, seed: int = 0,
                    terciles: dict[str, torch.Tensor] | None = None) -> list[str]:
    """A caption for every image (terciles measured on ``images`` unless given)."""
    check_integer("seed", seed, 0, 2**32 - 1)
    attributes = measure_attributes(images)
    terciles = terciles if terciles is not None else class_terciles(attributes, labels)
    levels = attribute_levels(attributes, labels, terciles)
    rng = np.random.default_rng(seed)
    return [caption(int(label), {name: int(levels[name][i]) for name in ATTRIBUTES}, rng)
            for i, label in enumerate(labels)]
