"""Figures and animations shared by the notebooks."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation
from matplotlib.axes import Axes

from .validation import DIFFUSION_SLACK, check_image_range, check_images, check_integer, check_number


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
        check_image_range(f"frames[{index}][1]", frame[1], slack=DIFFUSION_SLACK)  # x_t holds noise


def image_grid(images: torch.Tensor, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """Tile images [N, 1, H, W] with values in [-1, 1] into one [rows*H, cols*W] array in [0, 1]."""
    check_images("images", images)
    check_image_range("images", images, slack=DIFFUSION_SLACK)  # noisy x_t are shown too
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
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_trajectory(frames: list[tuple[int, torch.Tensor]], num_images: int = 8, label: str = "t",
                    cell_inches: float = 0.8):
    """One row per image, one column per (t, x_t) frame: a denoising trajectory as a static figure."""
    _check_frames(frames)
    check_integer("num_images", num_images, 1, 10_000)
    check_number("cell_inches", cell_inches, 0, 100, open_low=True)
    fig, axes = plt.subplots(1, len(frames), figsize=(cell_inches * len(frames), cell_inches * num_images))
    for ax, (t, x) in zip(np.atleast_1d(axes), frames):
        ax.imshow(image_grid(x[:num_images], nrow=1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{label}={t}", fontsize=8)
        ax.set_axis_off()
    return fig


def animate_trajectory(frames: list[tuple[int, torch.Tensor]], nrow: int = 8, interval_ms: int = 150,
                       inches: float = 2.4, dpi: int = 80):
    """An HTML (jshtml) animation of the frames; returns the HTML string.

    Notebooks show it with ``IPython.display.HTML``; the static figure of :func:`show_trajectory` is
    the fallback where JavaScript does not run (a PDF export, GitHub's renderer). Every frame is embedded
    as a PNG, so ``inches`` and ``dpi`` set the size of the notebook file.
    """
    _check_frames(frames)
    check_integer("nrow", nrow, 1, 10_000)
    check_integer("interval_ms", interval_ms, 1, 600_000)
    check_number("inches", inches, 0, 100, open_low=True)
    check_integer("dpi", dpi, 1, 1000)
    fig, ax = plt.subplots(figsize=(inches, inches), dpi=dpi)
    image = ax.imshow(image_grid(frames[0][1], nrow), cmap="gray", vmin=0, vmax=1)
    title = ax.set_title("")
    ax.set_axis_off()

    def draw(index):
        t, x = frames[index]
        image.set_data(image_grid(x, nrow))
        title.set_text(f"t = {t}")
        return image, title

    movie = animation.FuncAnimation(fig, draw, frames=len(frames), interval=interval_ms, blit=False)
    with plt.rc_context({"animation.frame_format": "jpeg"}):  # a third the size of PNG frames
        html = movie.to_jshtml(default_mode="once")
    plt.close(fig)
    return html
