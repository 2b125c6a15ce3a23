"""Figures and animations shared by the notebooks."""
from __future__ import annotations

import base64
import html
import io
import json

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from PIL import Image

from .validation import check_image_range, check_images, check_integer, check_number


def _check_frames(frames) -> None:
    """``frames`` is a non-empty list of (t, x_t) pairs, each x_t a batch of images [N, C, H, W]."""
    if not isinstance(frames, (list, tuple)):
        raise TypeError(f"frames must be a non-empty list of (t, x_t) pairs, got {type(frames).__name__}")
    if not frames:
        raise ValueError("frames must be a non-empty list of (t, x_t) pairs, got an empty one")
    for index, frame in enumerate(frames):
        if not isinstance(frame, (list, tuple)) or len(frame) != 2:
            raise TypeError(f"frames must be a list of (t, x_t) pairs, got {type(frame).__name__} at frames[{index}]")
        check_images(f"frames[{index}][1]", frame[1])
        check_image_range(f"frames[{index}][1]", frame[1], any_noise=True)  # x_t holds noise


def image_grid(images: torch.Tensor, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """Tile images [N, 1, H, W] with values in [-1, 1] into one [rows*H, cols*W] array in [0, 1]."""
    check_images("images", images)
    check_image_range("images", images, any_noise=True)  # noisy x_t are shown too
    check_integer("nrow", nrow, 1, 10_000)
    check_integer("pad", pad, 0, 1000)
    images = images.detach().float().cpu().add(1).div(2).clamp(0, 1)[:, 0]
    count, height, width = images.shape
    rows = -(-count // nrow)
    grid = np.ones((rows * (height + pad) + pad, nrow * (width + pad) + pad), dtype=np.float32)
    for index, image in enumerate(images.numpy()):
        row, col = divmod(index, nrow)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        grid[top:top + height, left:left + width] = image
    return grid


def show_images(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None, scale: float = 0.5):
    """Show a batch of images in [-1, 1] as one grid; returns the matplotlib axes."""
    check_number("scale", scale, 0, 100, open_low=True)
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {ax!r:.80} ({type(ax).__name__})")
    grid = image_grid(images, nrow)
    if ax is None:
        _, ax = plt.subplots(figsize=(scale * grid.shape[1] / 14, scale * grid.shape[0] / 14))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")  # pixels as they are
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_trajectory(frames: list[tuple[int, torch.Tensor]], num_images: int = 8, label: str = "t",
                    cell_inches: float = 0.7):
    """One row per image, one column per (t, x_t) frame: a denoising trajectory as one image grid.

    The frames are tiled into a single picture (:func:`image_grid`) drawn pixel for pixel
    (``interpolation="nearest"``), so every digit keeps its square shape and the stored PNG stays small;
    each column is labelled with its ``label`` = t above it."""
    _check_frames(frames)
    check_integer("num_images", num_images, 1, 10_000)
    check_number("cell_inches", cell_inches, 0, 100, open_low=True)
    shown = min(num_images, min(len(x) for _, x in frames))
    by_row = torch.stack([x[:shown] for _, x in frames], dim=1)  # [image, frame, C, H, W]
    grid = image_grid(by_row.flatten(0, 1), nrow=len(frames))
    fig, ax = plt.subplots(figsize=(cell_inches * len(frames), cell_inches * shown))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    column_width = grid.shape[1] / len(frames)
    ax.set_xticks([column_width * (i + 0.5) for i in range(len(frames))])
    ax.set_xticklabels([f"{label}={t}" for t, _ in frames], fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig


def _png_data_uri(grid: np.ndarray) -> str:
    """A grey-scale image in [0, 1] as a ``data:image/png;base64,...`` URI (an 8-bit grey PNG: a quarter of
    the bytes of matplotlib's RGBA one)."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(grid * 255).astype(np.uint8)).save(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# The player's script finds its own elements through document.currentScript (no ids, so the same
# animation may be shown twice); JupyterLab runs it as soon as the output is shown.
_PLAYER_SCRIPT = """(function (root) {
  var frames = %(frames)s, labels = %(labels)s, index = 0, timer = null;
  var image = root.querySelector("img"), slider = root.querySelector("input");
  var label = root.querySelector("[data-label]"), play = root.querySelector("[data-play]");
  function show(next) {
    index = Math.max(0, Math.min(frames.length - 1, next));
    image.src = frames[index];
    image.alt = "frame " + (index + 1) + " of " + frames.length + ": " + labels[index];
    slider.value = index;
    label.textContent = labels[index];
  }
  function stop() { clearInterval(timer); timer = null; play.textContent = "\\u25b6 play"; }
  function tick() { if (index >= frames.length - 1) { stop(); } else { show(index + 1); } }
  play.onclick = function () {
    if (timer) { stop(); return; }
    if (index >= frames.length - 1) { show(0); }
    play.textContent = "\\u275a\\u275a pause";
    timer = setInterval(tick, %(interval)d);
  };
  root.querySelector("[data-previous]").onclick = function () { stop(); show(index - 1); };
  root.querySelector("[data-next]").onclick = function () { stop(); show(index + 1); };
  slider.oninput = function () { stop(); show(parseInt(slider.value, 10)); };
  slider.disabled = false;
})(document.currentScript.parentNode);"""


def animate_trajectory(frames: list[tuple[int, torch.Tensor]], nrow: int = 8, interval_ms: int = 150,
                       inches: float = 2.4, dpi: int = 80, label: str = "t") -> str:
    """An HTML animation of the (t, x_t) frames, for ``IPython.display.HTML``; returns the HTML string.

    The first frame is an ordinary ``<img>`` (a PNG data URI), so it shows wherever the HTML is shown,
    also where scripts do not run (an untrusted notebook in JupyterLab, GitHub's renderer, nbgrader's
    feedback); a small inline script adds previous / play / next buttons and a slider. Nothing is loaded
    from the network. The image is ``inches * dpi`` pixels wide; each frame is one image grid of
    :func:`image_grid` (PNG, a few hundred bytes for MNIST digits). The static figure of
    :func:`show_trajectory` stays the fallback where HTML is not shown (a PDF export).
    """
    _check_frames(frames)
    check_integer("nrow", nrow, 1, 10_000)
    check_integer("interval_ms", interval_ms, 1, 600_000)
    check_number("inches", inches, 0, 100, open_low=True)
    check_integer("dpi", dpi, 1, 1000)
    if not isinstance(label, str):
        raise TypeError(f"label must be a string such as 't' or 'step', got {type(label).__name__}")
    grids = [image_grid(x, nrow) for _, x in frames]
    uris = [_png_data_uri(grid) for grid in grids]
    labels = [f"{label} = {t}" for t, _ in frames]
    width = round(inches * dpi)
    height = round(width * grids[0].shape[0] / grids[0].shape[1])
    script = _PLAYER_SCRIPT % {"frames": json.dumps(uris), "labels": json.dumps(labels).replace("</", "<\\/"),
                               "interval": interval_ms}
    button = ('<button type="button" %s style="margin:0 2px;padding:1px 8px;font:inherit;cursor:pointer">'
              '%s</button>')
    controls = "".join([button % ("data-previous", "\u25c0 previous"), button % ("data-play", "\u25b6 play"),
                        button % ("data-next", "next \u25b6")])
    return (
        '<div class="course-animation" style="display:inline-block;text-align:center;font:13px sans-serif">'
        f'<img src="{uris[0]}" width="{width}" height="{height}" alt="frame 1 of {len(frames)}: '
        f'{html.escape(labels[0])}" style="image-rendering:pixelated;display:block;margin:0 auto 4px">'
        f'<div data-label style="margin-bottom:4px">{html.escape(labels[0])}</div>'
        f"<div>{controls}</div>"
        f'<input type="range" min="0" max="{len(frames) - 1}" value="0" step="1" disabled '
        f'aria-label="frame" style="width:{width}px">'
        f"<script>{script}</script></div>"
    )
