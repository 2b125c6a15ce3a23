"""Bad input to course_utils.latents, viz, unet and captions: a TypeError (wrong kind of value) or a ValueError
(right kind, wrong size, range or shape) whose message starts with the offending parameter's name, raised by the
course's own checks before torch, numpy or matplotlib see the value.

Each case is (call, expected exception, parameter name); the calls use tiny random inputs and an untrained VAE.
"""
import functools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import captions, latents, unet, viz  # noqa: E402

NAN = float("nan")


def digits(side: int = 28) -> torch.Tensor:  # [2, 1, side, side] in [-1, 1]
    return torch.rand(2, 1, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1


def digits_uint8() -> torch.Tensor:  # the same digits in 0..255, as load_mnist gives them
    return ((digits() + 1) * 127.5).to(torch.uint8)


def mean() -> torch.Tensor:  # a posterior mean [2, 4, 8, 8]
    return torch.zeros(2, 4, 8, 8)


def frames() -> list:  # a trajectory as sample_ddpm returns it
    return [(999, digits()), (0, digits())]


@functools.cache
def vae():
    return latents.make_vae().eval()


def attributes() -> dict:
    return captions.measure_attributes(digits())


def labels() -> torch.Tensor:
    return torch.tensor([7, 2])


def terciles() -> dict:
    return captions.class_terciles(attributes(), labels())


LEVELS = {"thickness": 1, "slant": 0, "size": -1}


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def check(call, error: type[Exception], name: str) -> None:
    try:
        with pytest.raises(error, match=rf"^{name}\b"):
            call()
    finally:
        plt.close("all")


WRONG_TYPES = {  # a string, None, a bool, a float for an int, a list for a tensor, a seed for a generator
    "pad_to_32 uint8 images": (lambda: latents.pad_to_32(digits_uint8()), "images"),
    "crop_to_28 images=None": (lambda: latents.crop_to_28(None), "images"),
    "make_vae scaling_factor='0.18'": (lambda: latents.make_vae("0.18"), "scaling_factor"),
    "reparameterise logvar=None": (lambda: latents.reparameterise(mean(), None), "logvar"),
    "reparameterise generator=0": (lambda: latents.reparameterise(mean(), mean(), 0), "generator"),
    "vae_loss kl_weight='0.1'": (lambda: latents.vae_loss(vae(), latents.pad_to_32(digits()), "0.1"), "kl_weight"),
    "vae_loss uint8 images": (lambda: latents.vae_loss(vae(), torch.zeros(2, 1, 32, 32, dtype=torch.uint8), 1e-3),
                              "images"),
    "psnr uint8 images": (lambda: latents.psnr(digits_uint8(), digits_uint8()), "reconstruction"),
    "latent_scaling_factor a list": (lambda: latents.latent_scaling_factor([0.1, 0.2]), "latents"),
    "encode batch_size=2.5": (lambda: latents.encode(vae(), digits(), 2.5), "batch_size"),
    "encode uint8 images": (lambda: latents.encode(vae(), digits_uint8()), "images28"),
    "latent_shape num_images=True": (lambda: latents.latent_shape(True), "num_images"),
    "latent_shape num_images=2.5": (lambda: latents.latent_shape(2.5), "num_images"),
    "channel_images z=None": (lambda: latents.channel_images(None), "z"),
    "image_grid uint8 images": (lambda: viz.image_grid(digits_uint8()), "images"),
    "show_images ax='left'": (lambda: viz.show_images(digits(), ax="left"), "ax"),
    "show_trajectory tensors, not (t, x) pairs": (lambda: viz.show_trajectory([digits(), digits()]), "frames"),
    "animate_trajectory dpi=80.5": (lambda: viz.animate_trajectory(frames(), dpi=80.5), "dpi"),
    "timestep_embedding timesteps=5": (lambda: unet.timestep_embedding(5, 8), "timesteps"),
    "load_tiny_unet name=None": (lambda: unet.load_tiny_unet(None), "name"),
    "count_parameters a state_dict": (lambda: unet.count_parameters(unet.TinyUNet((8, 16)).state_dict()), "model"),
    "ink_masks images=None": (lambda: captions.ink_masks(None), "images"),
    "slant uint8 images": (lambda: captions.slant(digits_uint8()), "images"),
    "class_terciles labels=None": (lambda: captions.class_terciles(attributes(), None), "labels"),
    "attribute_levels float labels": (lambda: captions.attribute_levels(attributes(), labels().float(), terciles()),
                                      "labels"),
    "caption label='7'": (lambda: captions.caption("7", LEVELS, rng()), "label"),
    "caption label=True": (lambda: captions.caption(True, LEVELS, rng()), "label"),
    "caption rng=0": (lambda: captions.caption(7, LEVELS, 0), "rng"),
    "caption_dataset labels as a list": (lambda: captions.caption_dataset(digits(), [7, 2]), "labels"),
}

OUT_OF_RANGE = {  # zero, negative, NaN, odd, above the top of the range
    "make_vae scaling_factor=0": (lambda: latents.make_vae(0), "scaling_factor"),
    "make_vae scaling_factor=NaN": (lambda: latents.make_vae(NAN), "scaling_factor"),
    "vae_loss kl_weight=-1": (lambda: latents.vae_loss(vae(), latents.pad_to_32(digits()), -1), "kl_weight"),
    "psnr data_range=0": (lambda: latents.psnr(digits(), digits(), 0), "data_range"),
    "psnr data_range=-2": (lambda: latents.psnr(digits(), digits(), -2), "data_range"),
    "encode batch_size=0": (lambda: latents.encode(vae(), digits(), 0), "batch_size"),
    "decode batch_size=0": (lambda: latents.decode(vae(), mean(), 0), "batch_size"),
    "latent_shape num_images=-1": (lambda: latents.latent_shape(-1), "num_images"),
    "image_grid nrow=0": (lambda: viz.image_grid(digits(), 0), "nrow"),
    "image_grid pad=-1": (lambda: viz.image_grid(digits(), pad=-1), "pad"),
    "show_images scale=0": (lambda: viz.show_images(digits(), scale=0), "scale"),
    "show_images nrow=0": (lambda: viz.show_images(digits(), nrow=0), "nrow"),
    "show_trajectory num_images=0": (lambda: viz.show_trajectory(frames(), num_images=0), "num_images"),
    "show_trajectory cell_inches=-1": (lambda: viz.show_trajectory(frames(), cell_inches=-1), "cell_inches"),
    "animate_trajectory interval_ms=-5": (lambda: viz.animate_trajectory(frames(), interval_ms=-5), "interval_ms"),
    "animate_trajectory dpi=0": (lambda: viz.animate_trajectory(frames(), dpi=0), "dpi"),
    "timestep_embedding dim=0": (lambda: unet.timestep_embedding(torch.tensor([500, 10]), 0), "dim"),
    "timestep_embedding dim=7 (odd)": (lambda: unet.timestep_embedding(torch.tensor([500, 10]), 7), "dim"),
    "timestep_embedding max_period=0": (lambda: unet.timestep_embedding(torch.tensor([500, 10]), 8, 0), "max_period"),
    "caption attribute_rate=1.5": (lambda: captions.caption(7, LEVELS, rng(), attribute_rate=1.5), "attribute_rate"),
    "caption levels of 2": (lambda: captions.caption(7, {"size": 2}, rng()), "levels"),
    "caption_dataset seed=-1": (lambda: captions.caption_dataset(digits(), labels(), seed=-1), "seed"),
}

WRONG_SHAPES = {  # 28x28 where 32x32 is due and back, a missing dimension, batches of different sizes
    "pad_to_32 images already 32x32": (lambda: latents.pad_to_32(digits(32)), "images"),
    "crop_to_28 images already 28x28": (lambda: latents.crop_to_28(digits()), "images"),
    "reparameterise logvar for 3, mean for 2": (lambda: latents.reparameterise(mean(), torch.zeros(3, 4, 8, 8)),
                                                "logvar"),
    "kl_to_standard_normal mean [N, D]": (lambda: latents.kl_to_standard_normal(torch.zeros(2, 8), torch.zeros(2, 8)),
                                          "mean"),
    "kl_to_standard_normal logvar for 3, mean for 2": (
        lambda: latents.kl_to_standard_normal(mean(), torch.zeros(3, 4, 8, 8)), "logvar"),
    "vae_loss images 28x28": (lambda: latents.vae_loss(vae(), digits(), 1e-3), "images"),
    "psnr target of another size": (lambda: latents.psnr(digits(), digits(32)), "target"),
    "encode images already 32x32": (lambda: latents.encode(vae(), digits(32)), "images28"),
    "channel_images 16x16 latents": (lambda: latents.channel_images(torch.zeros(2, 4, 16, 16)), "z"),
    "decode latents [4, 8, 8]": (lambda: latents.decode(vae(), mean()[0]), "latents"),
    "decode images for latents": (lambda: latents.decode(vae(), digits()), "latents"),
    "image_grid images [N, 28, 28]": (lambda: viz.image_grid(digits()[:, 0]), "images"),
    "show_trajectory frames=[]": (lambda: viz.show_trajectory([]), "frames"),
    "animate_trajectory frames=[]": (lambda: viz.animate_trajectory([]), "frames"),
    "timestep_embedding timesteps [N, 1]": (lambda: unet.timestep_embedding(torch.tensor([[500], [10]]), 8),
                                            "timesteps"),
    "load_tiny_unet the classifier": (lambda: unet.load_tiny_unet("mnist_classifier"), "name"),
    "ink_masks images [N, 28, 28]": (lambda: captions.ink_masks(digits()[:, 0]), "images"),
    "stroke_thickness images [N, 28, 28]": (lambda: captions.stroke_thickness(digits()[:, 0]), "images"),
    "class_terciles 3 labels for 2 images": (lambda: captions.class_terciles(attributes(), torch.tensor([7, 2, 1])),
                                             "labels"),
    "attribute_levels terciles without 'size'": (
        lambda: captions.attribute_levels(attributes(), labels(), {k: v for k, v in terciles().items() if k != "size"}),
        "terciles"),
    "caption_dataset 3 labels for 2 images": (lambda: captions.caption_dataset(digits(), torch.tensor([7, 2, 1])),
                                              "labels"),
}

BAD_VALUES = {  # checked on the data, in functions called once per dataset or figure, never per step
    "latent_scaling_factor constant latents": (lambda: latents.latent_scaling_factor(torch.zeros(2, 4, 8, 8)),
                                               "latents"),
    "latent_scaling_factor empty tensor": (lambda: latents.latent_scaling_factor(torch.empty(0)), "latents"),
    "stroke_thickness NaN images": (lambda: captions.stroke_thickness(torch.full((2, 1, 28, 28), NAN)), "images"),
    "class_terciles labels outside 0..9": (lambda: captions.class_terciles(attributes(), torch.tensor([12, 15])),
                                           "labels"),
    "attribute_levels labels outside 0..9": (
        lambda: captions.attribute_levels(attributes(), torch.tensor([12, 15]), terciles()), "labels"),
}


@pytest.mark.parametrize("call, name", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_wrong_types_raise_type_error_naming_the_parameter(call, name):
    check(call, TypeError, name)


@pytest.mark.parametrize("call, name", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_out_of_range_numbers_raise_value_error_naming_the_parameter(call, name):
    check(call, ValueError, name)


@pytest.mark.parametrize("call, name", WRONG_SHAPES.values(), ids=WRONG_SHAPES.keys())
def test_wrong_shapes_raise_value_error_naming_the_parameter(call, name):
    check(call, ValueError, name)


@pytest.mark.parametrize("call, name", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_values_raise_value_error_naming_the_parameter(call, name):
    check(call, ValueError, name)
