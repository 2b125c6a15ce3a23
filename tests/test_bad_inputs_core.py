"""Bad input to the core modules (validation, runtime, homework, schedules, samplers, ddpm) raises ValueError
or TypeError naming the parameter, never a raw error from torch or diffusers, never a silently wrong result.

One parametrized test per kind of mistake, each message checked to start with the parameter's name (or to
say what is allowed); every case here used to fail (a raw error, a message without the parameter's name, or
no error at all). ``scripts/probe_bad_inputs.py`` measures the same contract broadly.
"""
import math

import pytest
import torch

from course_utils import ddpm, homework, runtime, samplers, schedules, validation
from course_utils.unet import TinyUNet

ALPHA_BAR = schedules.alphas_cumprod(schedules.cosine_betas(1000)).float()
X = torch.zeros(2, 1, 28, 28)
MODEL = TinyUNet((8, 16)).eval()


def sample_ddpm(**changes):
    return ddpm.sample_ddpm(**{"model": MODEL, "num_images": 2, "alpha_bar": ALPHA_BAR, "num_inference_steps": 2,
                               "progress": False, **changes})


def sample_ddim(**changes):
    return samplers.sample_ddim(**{"model": MODEL, "num_images": 2, "alpha_bar": ALPHA_BAR, "num_inference_steps": 2,
                                   "progress": False, **changes})


def sample_with_scheduler(**changes):
    return samplers.sample_with_scheduler(**{"model": MODEL, "scheduler": samplers.make_scheduler("ddim"),
                                             "num_images": 2, "num_inference_steps": 2, "progress": False, **changes})


def ddim_step(**changes):
    return samplers.ddim_step(**{"model_output": X, "t": 500, "prev_t": 400, "x_t": X, "alpha_bar": ALPHA_BAR,
                                 **changes})


WRONG_TYPES = {  # a value of the wrong kind: TypeError (seed and review keep their ValueError)
    "seed_everything(True)": (lambda: runtime.seed_everything(True), ValueError, "seed"),
    "random_normal(generator=42)": (lambda: runtime.random_normal((2,), 42), TypeError, "generator"),
    "random_normal(shape=(2.5,))": (lambda: runtime.random_normal((2.5,)), TypeError, "shape"),
    "random_integers(high=2.5)": (lambda: runtime.random_integers(2.5, 2), TypeError, "high"),
    "random_uniform(generator=42)": (lambda: runtime.random_uniform((2,), 42), TypeError, "generator"),
    "check_close(name=None)": (lambda: homework.check_close(None, 1.0, 1.0), TypeError, "name"),
    "quiz(static='yes')": (lambda: homework.quiz("Q?", ["a", "b"], 0, static="yes"), TypeError, "static"),
    "review(3.0)": (lambda: homework.review(3.0, static=True), ValueError, "notebook"),
    "review(True)": (lambda: homework.review(True, static=True), ValueError, "notebook"),
    "linear_betas(beta_end='0.02')": (lambda: schedules.linear_betas(1000, 1e-4, "0.02"), TypeError, "beta_end"),
    "sigmoid_betas(beta_end=None)": (lambda: schedules.sigmoid_betas(1000, 1e-4, None), TypeError, "beta_end"),
    "alphas_cumprod(list)": (lambda: schedules.alphas_cumprod([0.1, 0.2]), TypeError, "betas"),
    "snr(list)": (lambda: schedules.snr([0.9, 0.5]), TypeError, "alpha_bar"),
    "check_timesteps(list)": (lambda: schedules.check_timesteps([5, 10], 1000), TypeError, "timesteps"),
    "q_sample(noise=None)": (lambda: schedules.q_sample(X, torch.tensor([5, 9]), None, ALPHA_BAR), TypeError, "noise"),
    "q_sample(alpha_bar=list)": (lambda: schedules.q_sample(X, torch.tensor([5, 9]), X, ALPHA_BAR.tolist()),
                                 TypeError, "alpha_bar"),
    "check_num_inference_steps(num_train_timesteps='1000')": (
        lambda: samplers.check_num_inference_steps(10, "1000"), TypeError, "num_train_timesteps"),
    "ddim_step(clip='no')": (lambda: ddim_step(clip="no"), TypeError, "clip"),
    "make_scheduler(clip='yes')": (lambda: samplers.make_scheduler("ddim", clip="yes"), TypeError, "clip"),
    "sample_with_scheduler(scheduler='ddim')": (lambda: sample_with_scheduler(scheduler="ddim"), TypeError, "scheduler"),
    "ddpm_step(alpha_bar=None)": (lambda: ddpm.ddpm_step(X, 500, 400, X, None, X), TypeError, "alpha_bar"),
    "sample_ddpm(alpha_bar=None)": (lambda: sample_ddpm(alpha_bar=None), TypeError, "alpha_bar"),
    "ddpm_loss(alpha_bar=None)": (lambda: ddpm.ddpm_loss(MODEL, X, None), TypeError, "alpha_bar"),
    "inference_timesteps(num_train_timesteps='1000')": (lambda: ddpm.inference_timesteps("1000", 10), TypeError,
                                                        "num_train_timesteps"),
}


@pytest.mark.parametrize("call, error, name", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_a_value_of_the_wrong_kind_is_refused_naming_the_parameter(call, error, name):
    with pytest.raises(error, match=rf"^{name}\b"):
        call()


OUT_OF_RANGE = {  # the right kind of value, outside what the function can use: ValueError
    "random_integers(high=0)": (lambda: runtime.random_integers(0, 2), "high"),
    "random_integers(size=-1)": (lambda: runtime.random_integers(10, -1), "size"),
    "random_uniform(shape=(-1, 3))": (lambda: runtime.random_uniform((-1, 3)), "shape"),
    "random_normal(shape=(-1, 3))": (lambda: runtime.random_normal((-1, 3)), "shape"),
    "alphas_cumprod(betas > 1)": (lambda: schedules.alphas_cumprod(torch.tensor([0.5, 1.5])), "betas"),
    "alphas_cumprod(betas with NaN)": (lambda: schedules.alphas_cumprod(torch.tensor([0.1, math.nan])), "betas"),
    "snr(alpha_bar = 1)": (lambda: schedules.snr(torch.tensor([1.0, 0.5])), "alpha_bar"),
    "snr(alpha_bar > 1)": (lambda: schedules.snr(torch.tensor([1.5])), "alpha_bar"),
    "check_timesteps(num_timesteps=0)": (lambda: schedules.check_timesteps(torch.tensor([0]), 0), "num_timesteps"),
    "sampling_timesteps(num_train_timesteps=1)": (lambda: samplers.sampling_timesteps(1, 1), "num_train_timesteps"),
    "make_scheduler(num_train_timesteps=0)": (lambda: samplers.make_scheduler("ddim", 0), "num_train_timesteps"),
    "training_target(abar_t=1.5)": (lambda: ddpm.training_target(X, X, 1.5, "v_prediction"), "abar_t"),
    "predicted_x0_and_eps(abar_t=0)": (lambda: ddpm.predicted_x0_and_eps(X, X, 0.0), "abar_t"),
    "predicted_x0_and_eps(abar_t=1, sample)": (lambda: ddpm.predicted_x0_and_eps(X, X, 1.0, "sample"), "abar_t"),
    "inference_timesteps(num_train_timesteps=0)": (lambda: ddpm.inference_timesteps(0, 10), "num_train_timesteps"),
    "sample_ddpm(trajectory_every=-1)": (lambda: sample_ddpm(trajectory_every=-1), "trajectory_every"),
    "sample_ddim(trajectory_every=-1)": (lambda: sample_ddim(trajectory_every=-1), "trajectory_every"),
    "sample_ddpm(alpha_bar with NaN)": (lambda: sample_ddpm(alpha_bar=torch.full((1000,), math.nan)), "alpha_bar"),
}


@pytest.mark.parametrize("call, name", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_a_number_out_of_range_is_refused_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


WRONG_SHAPES_AND_DTYPES = {
    "random_normal(dtype=int64)": (lambda: runtime.random_normal((2,), dtype=torch.int64), TypeError, "dtype"),
    "check_timesteps(float timesteps)": (lambda: schedules.check_timesteps(torch.tensor([0.5]), 1000), TypeError,
                                         "timesteps"),
    "q_sample(3 timesteps for 2 images)": (lambda: schedules.q_sample(X, torch.tensor([5, 9, 7]), X, ALPHA_BAR),
                                           ValueError, "timesteps"),
    "training_target(integer abar_t)": (lambda: ddpm.training_target(X, X, torch.tensor([500, 10]), "v_prediction"),
                                        TypeError, "abar_t"),
    "training_target(noise of another shape)": (lambda: ddpm.training_target(X, torch.zeros(2, 1, 32, 32), 0.5),
                                                ValueError, "noise"),
    "predicted_x0_and_eps(integer abar_t)": (lambda: ddpm.predicted_x0_and_eps(X, X, torch.tensor([500, 10])),
                                             TypeError, "abar_t"),
    "predicted_x0_and_eps(3 abar_t for 2 images)": (lambda: ddpm.predicted_x0_and_eps(X, X, ALPHA_BAR[:3]),
                                                    ValueError, "abar_t"),
    "predicted_x0_and_eps(model_output for 1 image)": (lambda: ddpm.predicted_x0_and_eps(X[:1], X, 0.5),
                                                       ValueError, "model_output"),
    "ddpm_step(noise of another shape)": (lambda: ddpm.ddpm_step(X, 500, 400, X, ALPHA_BAR, X[:1]), ValueError,
                                          "noise"),
    "ddim_step(noise of another shape)": (lambda: ddim_step(eta=0.5, noise=X[:1]), ValueError, "noise"),
    "ddpm_loss(uint8 x0)": (lambda: ddpm.ddpm_loss(MODEL, X.to(torch.uint8), ALPHA_BAR), TypeError, "x0"),
    "ddpm_loss(x0 without channels)": (lambda: ddpm.ddpm_loss(MODEL, X[:, 0], ALPHA_BAR), ValueError, "x0"),
    "sample_ddpm(image_shape=(28, 28))": (lambda: sample_ddpm(image_shape=(28, 28)), ValueError, "image_shape"),
    "sample_ddim(image_shape=(28, 28))": (lambda: sample_ddim(image_shape=(28, 28)), ValueError, "image_shape"),
    "sample_with_scheduler(image_shape=(28, 28))": (lambda: sample_with_scheduler(image_shape=(28, 28)), ValueError,
                                                    "image_shape"),
}


@pytest.mark.parametrize("call, error, name", WRONG_SHAPES_AND_DTYPES.values(), ids=WRONG_SHAPES_AND_DTYPES.keys())
def test_a_tensor_of_the_wrong_shape_or_dtype_is_refused_naming_the_parameter(call, error, name):
    with pytest.raises(error, match=rf"^{name}\b"):
        call()


BAD_NAMES = {  # a misspelled choice, or a name the function cannot load
    "pick_device('gpu')": (lambda: runtime.pick_device("gpu"), r"preferred must be one of 'auto', 'cuda'"),
    "make_betas(['linear'])": (lambda: schedules.make_betas(["linear"]), r"schedule must be one of 'linear'"),
    "make_scheduler(beta_schedule='cosine')": (lambda: samplers.make_scheduler("ddim", beta_schedule="cosine"),
                                               r"beta_schedule='squaredcos_cap_v2'"),
    "make_scheduler(sigma_maxx=80)": (lambda: samplers.make_scheduler("euler_karras", sigma_maxx=80.0),
                                      r"sigma_maxx is not a setting of diffusers.EulerDiscreteScheduler"),
    "load_ddpm('flow_mnist')": (lambda: ddpm.load_ddpm("flow_mnist"), r"name must name a DDPM .* got 'flow_mnist'"),
    "load_ddpm('mnist_classifier')": (lambda: ddpm.load_ddpm("mnist_classifier"),
                                      r"name must name a DDPM .* got 'mnist_classifier'"),
}


@pytest.mark.parametrize("call, message", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_a_bad_name_is_refused_with_the_names_allowed(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_gpu_is_reported_against_the_parameter_preferred():
    with pytest.raises(ValueError, match="preferred device 'cuda' was asked for"):
        runtime.pick_device("cuda")


V = validation
MISUSE = {  # a developer's mistake in using the checks: a check that can never pass, or checks nothing
    "check_integer(low > high)": (lambda: V.check_integer("steps", 5, 10, 1), ValueError, r"low must be <= high"),
    "check_integer(low='0')": (lambda: V.check_integer("steps", 5, "0", 10), TypeError, r"\blow must be a number"),
    "check_integer(name=None)": (lambda: V.check_integer(None, 5, 0, 10), TypeError, r"\bname must be"),
    "check_number(low=NaN)": (lambda: V.check_number("scale", 0.5, math.nan, 1), ValueError, r"\blow must be a number"),
    "check_number(high='1')": (lambda: V.check_number("scale", 0.5, 0, "1"), TypeError, r"\bhigh must be a number"),
    "check_choice(choices='linear')": (lambda: V.check_choice("schedule", "l", "linear"), TypeError, r"\bchoices\b"),
    "check_choice(choices=None)": (lambda: V.check_choice("schedule", "linear", None), TypeError, r"\bchoices\b"),
    "check_choice(choices=[])": (lambda: V.check_choice("schedule", "linear", []), ValueError, r"\bchoices\b"),
    "integer(10, 1)": (lambda: V.integer(10, 1), ValueError, r"low must be <= high"),
    "integer('1', 10)": (lambda: V.integer("1", 10), TypeError, r"\blow must be a number"),
    "number(NaN, 1)": (lambda: V.number(math.nan, 1), ValueError, r"\blow must be a number"),
    "number(1, 0)": (lambda: V.number(1, 0), ValueError, r"low must be <= high"),
    "choice()": (lambda: V.choice(), ValueError, r"\bchoices must not be empty"),
    "choice(['ddpm', 'ddim'])": (lambda: V.choice(["ddpm", "ddim"]), TypeError, r"unpack it, choice\(\*values\)"),
    "integer_list(10, 1)": (lambda: V.integer_list(10, 1), ValueError, r"low must be <= high"),
    "number_list(NaN, 1)": (lambda: V.number_list(math.nan, 1), ValueError, r"\blow must be a number"),
    "choice_list(['ddpm', 'ddim'])": (lambda: V.choice_list(["ddpm", "ddim"]), TypeError, r"\bchoices\b"),
    "string(-1)": (lambda: V.string(-1), ValueError, r"\bmax_length\b"),
    "string('10')": (lambda: V.string("10"), TypeError, r"\bmax_length\b"),
    "check_parameters(None)": (lambda: V.check_parameters(None, STEPS=V.integer(1, 10)), TypeError, r"\bnamespace\b"),
    "check_parameters(STEPS=5)": (lambda: V.check_parameters({"STEPS": 5}, STEPS=5), TypeError, r"\bSTEPS\b"),
    "check_parameters(STEPS=integer)": (lambda: V.check_parameters({"STEPS": 5}, STEPS=V.integer), TypeError,
                                        r"STEPS=integer is the factory of a check, not a check"),
}


@pytest.mark.parametrize("call, error, message", MISUSE.values(), ids=MISUSE.keys())
def test_misusing_the_validation_module_is_a_clear_developer_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
