"""Bad input that learners really make (issue 32), by kind: images in the wrong value range, models and tensors of
the wrong kind, notebook parameters papermill cannot see or that are spelled in lower case, and files a killed save
left behind. Each case used to be accepted silently (a wrong number) or to crash inside torch; each now raises
ValueError or TypeError naming the parameter. Legitimate values just outside [-1, 1] (unclipped samples, noisy x_t,
scaled latents) stay accepted.
"""
import os
import time

import jupytext
import pytest
import torch
from papermill.translators import PythonTranslator

from course_utils import captions, checkpoints, control, data, ddpm, flow, latents, schedules, validation, viz
from course_utils.unet import TinyUNet, check_model
from course_utils.validation import check_image_range

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALPHA_BAR = schedules.alphas_cumprod(schedules.cosine_betas(1000)).float()
MODEL = TinyUNet((8, 16)).eval()


def digits():
    """Two MNIST-like digits in [-1, 1]: background -1, a stroke of ink at +1."""
    images = -torch.ones(2, 1, 28, 28)
    images[:, :, 6:22, 12:16] = 1.0
    return images


PIXELS_0_255 = (digits() + 1) * 127.5  # the usual mistake: floats in 0..255
PIXELS_0_1 = (digits() + 1) / 2        # images in [0, 1] where [-1, 1] is expected

# ----------------------------------------------------------------------------------------------------------------
# value ranges
# ----------------------------------------------------------------------------------------------------------------

WRONG_RANGE = {  # call -> the parameter named, the fix the message gives
    "ddpm_loss(x0 in 0..255)": (lambda: ddpm.ddpm_loss(MODEL, PIXELS_0_255, ALPHA_BAR), "x0", "divide by 127.5"),
    "flow_loss(x0 in 0..255)": (lambda: flow.flow_loss(MODEL, PIXELS_0_255), "x0", "divide by 127.5"),
    "q_sample(x0 in 0..255)": (lambda: schedules.q_sample(PIXELS_0_255, torch.tensor([5, 9]), digits(), ALPHA_BAR),
                               "x0", "divide by 127.5"),
    "ddpm_loss(x0 in [0, 1])": (lambda: ddpm.ddpm_loss(MODEL, PIXELS_0_1, ALPHA_BAR), "x0", "multiply by 2"),
    "flow_loss(x0 in [0, 1])": (lambda: flow.flow_loss(MODEL, PIXELS_0_1), "x0", "multiply by 2"),
    "q_sample(x0 in [0, 1])": (lambda: schedules.q_sample(PIXELS_0_1, torch.tensor([5, 9]), digits(), ALPHA_BAR),
                               "x0", "multiply by 2"),
    "measure_attributes(0..255)": (lambda: captions.measure_attributes(PIXELS_0_255), "images", "divide by 127.5"),
    "measure_attributes([0, 1])": (lambda: captions.measure_attributes(PIXELS_0_1), "images", "multiply by 2"),
    "digit_controls(0..255)": (lambda: control.digit_controls(PIXELS_0_255), "digits", "divide by 127.5"),
    "skeletonize([0, 1])": (lambda: control.skeletonize(PIXELS_0_1), "images", "multiply by 2"),
    "image_grid(0..255)": (lambda: viz.image_grid(PIXELS_0_255), "images", "divide by 127.5"),
    "to_pixel_range(0..255)": (lambda: data.to_pixel_range(PIXELS_0_255), "images", "divide by 127.5"),
    "pad_to_32(0..255)": (lambda: latents.pad_to_32(PIXELS_0_255), "images", "divide by 127.5"),
}


@pytest.mark.parametrize("label", WRONG_RANGE)
def test_images_in_the_wrong_range_are_refused_with_the_fix(label):
    call, name, fix = WRONG_RANGE[label]
    with pytest.raises(ValueError, match=rf"^{name} must have values in \[-1, 1\], got values in") as error:
        call()
    assert fix in str(error.value)


def test_the_range_rule_names_range_found_range_expected_and_fix():
    with pytest.raises(ValueError) as error:
        check_image_range("images", PIXELS_0_255)
    assert str(error.value) == ("images must have values in [-1, 1], got values in [0, 255]: for pixels "
                                "in 0..255, divide by 127.5 and subtract 1 (course_utils.data.to_model_range does it "
                                "for uint8 digits)")
    with pytest.raises(ValueError, match=r"add 1 and divide by 2"):
        check_image_range("images", digits(), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"divide by 255"):
        check_image_range("images", PIXELS_0_255, 0.0, 1.0)


def test_legitimate_values_just_outside_the_range_are_accepted():
    check_image_range("images", digits() * 1.4)  # an unclipped flow sample overshoots a little
    check_image_range("images", PIXELS_0_1)  # without digits=True: any batch in [0, 1] is in [-1, 1]
    check_image_range("images", torch.empty(0, 1, 28, 28))
    noisy = schedules.q_sample(digits(), torch.tensor([999, 999]), 3 * torch.randn(2, 1, 28, 28), ALPHA_BAR)
    viz.image_grid(noisy)  # x_t at t = T is noise: figures show it
    viz.image_grid(digits() + 10 * torch.randn(2, 1, 28, 28))  # notebook 01 allows NOISE_STD up to 10
    ddpm.ddpm_loss(TinyUNet((8, 16), image_channels=4), 5.5 * torch.ones(2, 4, 8, 8), ALPHA_BAR)  # scaled latents
    schedules.q_sample(torch.zeros(2, 1, 28, 28), torch.tensor([5, 9]), digits(), ALPHA_BAR)  # constant: not [0, 1]
    flow.flow_loss(MODEL, 0.5 * torch.randn(2, 1, 28, 28))  # centred values inside [-1, 1]


# ----------------------------------------------------------------------------------------------------------------
# models and tensors of the wrong kind
# ----------------------------------------------------------------------------------------------------------------

X = torch.zeros(2, 1, 28, 28)
WRONG_MODEL_INPUT = {  # call -> error type, parameter named
    "TinyUNet(channels=(8, 12))": (lambda: TinyUNet((8, 12)), ValueError, "channels"),
    "TinyUNet(channels=None)": (lambda: TinyUNet(None), TypeError, "channels"),
    "TinyUNet(channels=(8.0, 16.0))": (lambda: TinyUNet((8.0, 16.0)), TypeError, "channels"),
    "TinyUNet(image_channels=0)": (lambda: TinyUNet((8, 16), 0), ValueError, "image_channels"),
    "TinyUNet(image_channels=True)": (lambda: TinyUNet((8, 16), True), TypeError, "image_channels"),
    "forward(x unbatched)": (lambda: MODEL(X[0], 5), ValueError, "x"),
    "forward(x uint8)": (lambda: MODEL(X.to(torch.uint8), 5), TypeError, "x"),
    "forward(x float64)": (lambda: MODEL(X.double(), 5), TypeError, "x"),
    "forward(x 27 x 27)": (lambda: MODEL(torch.zeros(2, 1, 27, 27), 5), ValueError, "x"),
    "forward(x with 3 channels)": (lambda: MODEL(torch.zeros(2, 3, 28, 28), 5), ValueError, "x"),
    "forward(timesteps=None)": (lambda: MODEL(X, None), TypeError, "timesteps"),
    "forward(timesteps=-1)": (lambda: MODEL(X, -1), ValueError, "timesteps"),
    "forward(3 timesteps for 2 images)": (lambda: MODEL(X, torch.tensor([1, 2, 3])), ValueError, "timesteps"),
    "sample_ddpm(model=None)": (lambda: ddpm.sample_ddpm(None, 2, ALPHA_BAR, 2, progress=False), TypeError, "model"),
    "sample_ddpm(model=a state dict)": (lambda: ddpm.sample_ddpm(MODEL.state_dict(), 2, ALPHA_BAR, 2, progress=False),
                                        TypeError, "model"),
    "sample_ddpm(float64 model)": (lambda: ddpm.sample_ddpm(TinyUNet((8, 16)).double(), 2, ALPHA_BAR, 2,
                                                            progress=False), TypeError, "model"),
    "sample_ddpm(float16 model)": (lambda: ddpm.sample_ddpm(TinyUNet((8, 16)).half(), 2, ALPHA_BAR, 2,
                                                            progress=False), TypeError, "model"),
    "sample_ddpm(meta model)": (lambda: ddpm.sample_ddpm(TinyUNet((8, 16)).to("meta"), 2, ALPHA_BAR, 2,
                                                         progress=False), ValueError, "model"),
    "sample_ddpm(image_shape of 3 channels)": (lambda: ddpm.sample_ddpm(MODEL, 2, ALPHA_BAR, 2, image_shape=(3, 28, 28),
                                                                        progress=False), ValueError, "image_shape"),
    "sample_flow(image_shape 27 x 27)": (lambda: flow.sample_flow(MODEL, 2, 2, image_shape=(1, 27, 27), progress=False),
                                         ValueError, "image_shape"),
    "ddpm_loss(numpy x0)": (lambda: ddpm.ddpm_loss(MODEL, X.numpy(), ALPHA_BAR), TypeError, "x0"),
    "ddpm_loss(float64 x0)": (lambda: ddpm.ddpm_loss(MODEL, X.double(), ALPHA_BAR), TypeError, "model"),
    "flow_loss(model=None)": (lambda: flow.flow_loss(None, X), TypeError, "model"),
    "check_model(a module without parameters)": (lambda: check_model(torch.nn.Identity()), ValueError, "model"),
}


@pytest.mark.parametrize("label", WRONG_MODEL_INPUT)
def test_models_and_tensors_of_the_wrong_kind_are_refused_by_name(label):
    call, error, name = WRONG_MODEL_INPUT[label]
    with pytest.raises(error, match=rf"^{name}\b"):
        call()


def test_valid_model_calls_are_unchanged():
    torch.manual_seed(0)
    model = TinyUNet((8, 16)).eval()
    with torch.no_grad():
        as_int, as_tensor = model(X, 5), model(X, torch.tensor([5, 5]))
        as_float = model(X, torch.tensor([5.0, 5.0]))  # flow matching feeds 1000 sigma
    torch.testing.assert_close(as_int, as_tensor)
    torch.testing.assert_close(as_int, as_float)
    assert ddpm.sample_ddpm(model, 2, ALPHA_BAR, 2, progress=False).shape == (2, 1, 28, 28)


# ----------------------------------------------------------------------------------------------------------------
# notebook parameters
# ----------------------------------------------------------------------------------------------------------------

SOURCES = sorted(name for name in os.listdir(os.path.join(ROOT, "notebook_sources")) if name.endswith(".md"))


@pytest.mark.parametrize("source", SOURCES)
def test_papermill_sees_every_parameter(source):
    """papermill skips a parameter line with a second '=' (a comment such as '0 < X <= 1'): --help-notebook
    omits it and '-p X value' is then an unknown parameter."""
    notebook = jupytext.read(os.path.join(ROOT, "notebook_sources", source))
    cell = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    assigned = [line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line]
    assert [parameter.name for parameter in PythonTranslator.inspect(cell)] == assigned


def test_a_lower_case_papermill_parameter_is_refused():
    injected = PythonTranslator.codify({"num_steps": 20})  # what papermill -p num_steps 20 runs
    namespace = {"In": ["", "NUM_STEPS = 10\n", injected], "NUM_STEPS": 10, "num_steps": 20}
    with pytest.raises(ValueError, match=r"^unknown parameter\(s\) num_steps \(did you mean NUM_STEPS\?\)"):
        validation.check_parameters(namespace, NUM_STEPS=validation.integer(1, 100))
    validation.check_parameters({"In": ["", PythonTranslator.codify({"NUM_STEPS": 20})], "NUM_STEPS": 20},
                                NUM_STEPS=validation.integer(1, 100))


# ----------------------------------------------------------------------------------------------------------------
# leftovers
# ----------------------------------------------------------------------------------------------------------------

def test_a_save_removes_the_temporary_file_a_killed_save_left(tmp_path):
    target = tmp_path / "model.json"
    stale, fresh = tmp_path / ".model.json.abc123.tmp", tmp_path / ".model.json.def456.tmp"
    stale.write_text("half a file")
    fresh.write_text("a save still running")
    hours_ago = time.time() - 2 * checkpoints.STALE_TEMPORARY_S
    os.utime(stale, (hours_ago, hours_ago))
    checkpoints.write_json(target, {"a": 1})
    assert not stale.exists() and fresh.exists() and target.exists()


def test_git_ignores_temporary_files():
    with open(os.path.join(ROOT, ".gitignore")) as handle:
        assert "*.tmp" in handle.read().split()
