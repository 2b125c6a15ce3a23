"""course_utils.viz: image grids and the HTML animation."""
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import viz  # noqa: E402


def test_image_grid_shape_and_range():
    images = torch.rand(10, 1, 28, 28) * 2 - 1
    grid = viz.image_grid(images, nrow=4)
    assert grid.shape == (3 * 29 + 1, 4 * 29 + 1)  # 3 rows of 4, 1-pixel padding
    assert grid.dtype == np.float32
    assert grid.min() >= 0.0 and grid.max() <= 1.0


def test_image_grid_maps_range_and_places_images():
    images = torch.full((6, 1, 2, 3), -1.0)
    images[4] = 1.0  # the fifth image: row 1, column 1 with nrow=3
    images[5] = 0.0
    grid = viz.image_grid(images, nrow=3, pad=1)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1)
    np.testing.assert_array_equal(grid[4:6, 5:8], np.ones((2, 3)))  # value 1 -> white
    np.testing.assert_array_equal(grid[1:3, 1:4], np.zeros((2, 3)))  # value -1 -> black
    np.testing.assert_allclose(grid[4:6, 9:12], np.full((2, 3), 0.5))  # value 0 -> mid grey
    assert grid[0].min() == 1.0  # padding is white


def test_image_grid_clamps_out_of_range():
    grid = viz.image_grid(torch.tensor([[[[-5.0, 5.0]]]]), nrow=1, pad=0)
    np.testing.assert_array_equal(grid, [[0.0, 1.0]])


def test_show_trajectory_one_column_per_frame_one_row_per_image():
    frames = [(t, torch.rand(4, 1, 8, 8) * 2 - 1) for t in (999, 500, 0)]
    fig = viz.show_trajectory(frames, num_images=3)
    (ax,) = fig.axes
    assert [label.get_text() for label in ax.get_xticklabels()] == ["t=999", "t=500", "t=0"]
    grid = ax.get_images()[0].get_array()
    assert grid.shape == (3 * 9 + 1, 3 * 9 + 1)  # 3 images (rows) x 3 frames (columns), 8 px + 1 px pad
    np.testing.assert_array_equal(grid[10:18, 19:27], viz.image_grid(frames[2][1][1:2], 1, pad=0))
    plt.close(fig)


def test_animate_trajectory_returns_html_and_closes_its_figure():
    before = plt.get_fignums()
    frames = [(t, torch.rand(4, 1, 8, 8) * 2 - 1) for t in (2, 1, 0)]
    html = viz.animate_trajectory(frames, nrow=2)
    assert isinstance(html, str)
    assert "<script" in html
    assert html.count("data:image/") >= 3  # one embedded frame (PNG or JPEG) per step
    assert plt.get_fignums() == before


def test_animation_shows_its_first_frame_without_script_and_loads_nothing():
    """The <img> carries the first frame itself (an untrusted notebook strips the script), and no
    attribute or script names a network address (the player is offline)."""
    frames = [(t, torch.rand(2, 1, 8, 8) * 2 - 1) for t in (2, 1, 0)]
    page = viz.animate_trajectory(frames, nrow=2, label="step")
    without_script = re.sub(r"<script>.*?</script>", "", page, flags=re.DOTALL)
    first = re.search(r'<img src="(data:image/png;base64,[^"]+)"', without_script)
    assert first, "the first frame must be in the <img> tag itself"
    assert first.group(1) == viz._png_data_uri(viz.image_grid(frames[0][1], 2))
    assert "step = 2" in without_script
    assert not re.search(r"(https?:)?//[\w.-]+\.[a-z]{2,}", page), "the animation refers to a network resource"


@pytest.mark.parametrize("nrow", [1, 3, 8])
def test_show_images_returns_axes(nrow):
    ax = viz.show_images(torch.zeros(5, 1, 4, 4), nrow=nrow, title="x")
    assert ax.get_title() == "x"
    plt.close(ax.figure)
