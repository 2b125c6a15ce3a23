"""ControlNet at MNIST scale: steer the text-to-image model with a sketch of the digit (notebook 09).

ControlNet (Zhang, Rao & Agrawala 2023, "Adding Conditional Control to Text-to-Image Diffusion Models",
https://arxiv.org/abs/2302.05543) leaves a trained text-to-image UNet frozen and trains a *copy of its
encoder* that reads an extra image, the control. The copy's features enter the frozen UNet as residuals,
added to its skip connections and to its middle block, each through a 1x1 convolution initialised to zero
("zero convolution", section 3.1):

    y_c = F(x; Theta) + Z(F(x + Z(c; Theta_z1); Theta_c); Theta_z2)

so at the start of training the ControlNet adds exactly nothing and the model is the text-to-image model
it was built from; gradients still reach the zero convolutions (d(Wx)/dW = x is not zero), so they grow.

The course's control is the digit's **skeleton**: its strokes thinned to one pixel (Guo & Hall 1989).
A skeleton keeps what a learner would draw, the path of the pen, and drops what the model should add, the
stroke's width; unlike an edge map (two outlines per stroke) it can be drawn by hand with a few lines.
"""
from __future__ import annotations

import numbers

import torch
from torch.nn import functional as F

from . import part_folders
from .runtime import random_integers, random_normal
from .validation import (check_generator, check_image_range, check_images, check_integer, check_number,
                         check_tensor)

# The 8 neighbours x1..x8 of a pixel in Guo & Hall's order: east, then counter-clockwise (row, column offsets):
# e, ne, n, nw, w, sw, s, se.
_NEIGHBOURS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))


def _check_batch(name: str, images) -> None:
    """A batch of one-channel images [N, 1, H, W] (digits, skeletons, controls)."""
    check_tensor(name, images)
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"{name} must be [N, 1, H, W], got shape {tuple(images.shape)}")


def _check_pair(generated, controls) -> None:
    """Generated digits and their control skeletons in {0, 1}, [N, 1, H, W] both."""
    _check_batch("generated", generated)
    _check_batch("controls", controls)
    if generated.shape != controls.shape:
        raise ValueError(f"generated {tuple(generated.shape)} and controls {tuple(controls.shape)} differ in shape")
    if ((controls != 0) & (controls != 1)).any():
        raise ValueError("controls must be skeletons in {0, 1} (control.skeletonize), got other values: digits in "
                         "[-1, 1] go in generated")


def _check_unet(unet) -> None:
    from diffusers import UNet2DConditionModel

    if not isinstance(unet, UNet2DConditionModel):
        raise TypeError(f"unet must be a diffusers UNet2DConditionModel (the text-to-image UNet of "
                        f"guidance.load_text2image), got {type(unet).__name__}")


def check_controlnet(name: str, controlnet) -> None:
    """``controlnet`` (the parameter called ``name``) is a ``diffusers.ControlNetModel``."""
    from diffusers import ControlNetModel

    if not isinstance(controlnet, ControlNetModel):
        raise TypeError(f"{name} must be a diffusers ControlNetModel (control.make_controlnet or "
                        f"control.load_controlnet), got {type(controlnet).__name__}")


def _check_step_inputs(controlnet, sample_name: str, sample, embeddings, control_name: str, control) -> None:
    """What the ControlNet reads at one step, by shape only (no values: this runs at every sampling step):
    ``sample`` [N, C, h, w] with the ControlNet's C, ``embeddings`` [N, L, E], and ``control`` [N or 1, c, H, W]
    with the ControlNet's c and H, W the latent grid h, w times the control encoder's downsampling."""
    check_controlnet("controlnet", controlnet)
    config = controlnet.config
    check_tensor(sample_name, sample, dims=4, floating=True, shape=(None, config.in_channels, None, None))
    check_tensor("embeddings", embeddings, dims=3, floating=True)
    if len(embeddings) != len(sample):
        raise ValueError(f"embeddings must hold one sequence per image of {sample_name} ({len(sample)}), got shape "
                         f"{tuple(embeddings.shape)}")
    check_tensor(control_name, control, dims=4)
    factor = 2 ** (len(config.conditioning_embedding_out_channels) - 1)
    expected = (config.conditioning_channels, sample.shape[2] * factor, sample.shape[3] * factor)
    if len(control) not in (1, len(sample)) or tuple(control.shape[1:]) != expected:
        raise ValueError(f"{control_name} must be [{len(sample)}, {', '.join(map(str, expected))}] ({factor} x the "
                         f"{sample_name} grid: pad 28 x 28 skeletons with control.pad_control), got shape "
                         f"{tuple(control.shape)}")


def _check_timestep(timestep, batch: int) -> None:
    """A number, or a tensor of one timestep or one per image (by shape: no ``.item()`` at every step)."""
    if isinstance(timestep, numbers.Real) and not isinstance(timestep, bool):
        return
    if not torch.is_tensor(timestep):
        raise TypeError(f"timestep must be a number or a tensor of timesteps, got {timestep!r} "
                        f"({type(timestep).__name__})")
    if timestep.dim() > 1 or (timestep.dim() == 1 and len(timestep) not in (1, batch)):
        raise ValueError(f"timestep must be one timestep or one per image ({batch}), got shape {tuple(timestep.shape)}")


def _neighbours(mask: torch.Tensor) -> torch.Tensor:
    """Binary images [N, H, W] -> their neighbours x1..x8 [8, N, H, W] as booleans (outside the image: no ink)."""
    padded = F.pad(mask, (1, 1, 1, 1))
    height, width = mask.shape[-2:]
    return torch.stack([padded[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width] for dy, dx in _NEIGHBOURS]).bool()


def _thinning_pass(mask: torch.Tensor, first: bool) -> torch.Tensor:
    """One sub-iteration of Guo & Hall's algorithm A1 (1989). Each pixel's neighbours x1..x8, named here by compass
    direction (x1 = e, x2 = ne, x3 = n, x4 = nw, x5 = w, x6 = sw, x7 = s, x8 = se; x9 = x1). Delete, all at once,
    every pixel where

    - G1, exactly one 8-connected run of ink goes around it: sum_i [not x_{2i-1} and (x_{2i} or x_{2i+1})] = 1,
      the four terms (not e and (ne or n)), (not n and (nw or w)), (not w and (sw or s)), (not s and (se or e))
      (deleting it cannot split a stroke);
    - G2, it is not the end of a line nor inside a blob: 2 <= min(n1, n2) <= 3 with
      n1 = sum_k (x_{2k-1} or x_{2k}) = (e or ne) + (n or nw) + (w or sw) + (s or se) and
      n2 = sum_k (x_{2k} or x_{2k+1}) = (ne or n) + (nw or w) + (sw or s) + (se or e);
    - G3 in the first pass, not ((x2 or x3 or not x8) and x1) = not ((ne or n or not se) and e): no ink east of it,
      or a north-west corner point; G3' in the second, not ((x6 or x7 or not x4) and x5) = not ((sw or s or not nw)
      and w), the mirror image. Peeling opposite sides in turn keeps the line in the middle of the stroke.

    Notebook 09 writes the same computation by hand, with the same names."""
    e, ne, n, nw, w, sw, s, se = _neighbours(mask)  # x1..x8
    runs = ((~e & (ne | n)).int() + (~n & (nw | w)).int()  # background, then ink, going around
            + (~w & (sw | s)).int() + (~s & (se | e)).int())
    n1 = (e | ne).int() + (n | nw).int() + (w | sw).int() + (s | se).int()
    n2 = (ne | n).int() + (nw | w).int() + (sw | s).int() + (se | e).int()
    ends = torch.minimum(n1, n2)
    side = (~((ne | n | ~se) & e) if first  # first pass: no ink east, or a north-west corner
            else ~((sw | s | ~nw) & w))  # second pass: no ink west, or a south-east corner
    return mask * ~((runs == 1) & (ends >= 2) & (ends <= 3) & side)


def skeletonize(images: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Images [N, 1, H, W] in [-1, 1] -> their skeletons [N, 1, H, W] in {0, 1}: the pixels above
    ``threshold`` (ink), thinned to one-pixel-wide, 8-connected lines by Guo & Hall's two alternating
    sub-iterations until neither deletes a pixel ("Parallel thinning with two-subiteration algorithms",
    CACM 1989, algorithm A1). Equals ``skimage.morphology.thin`` (``tests/test_control.py``)."""
    _check_batch("images", images)
    check_number("threshold", threshold, -1.0, 1.0)
    check_image_range("images", images, digits=True)  # ink is what lies above threshold on [-1, 1]
    mask = (images[:, 0] > threshold).to(torch.uint8)
    while True:
        thinned = _thinning_pass(_thinning_pass(mask, first=True), first=False)
        if torch.equal(thinned, mask):
            return mask.unsqueeze(1).float()
        mask = thinned


def pad_control(skeletons: torch.Tensor) -> torch.Tensor:
    """Skeletons [N, 1, 28, 28] in {0, 1} -> the pipeline's control image [N, 1, 32, 32] in {0, 1}: padded with
    background like the digits the VAE reads (``latents.pad_to_32``), so a control pixel sits over its digit pixel."""
    from .latents import PADDING

    check_tensor("skeletons", skeletons, shape=(None, 1, 28, 28))
    return F.pad(skeletons, (PADDING,) * 4, value=0.0)


def digit_controls(digits: torch.Tensor) -> torch.Tensor:
    """MNIST digits [N, 1, 28, 28] in [-1, 1] -> their skeletons as control images [N, 1, 32, 32] in {0, 1}."""
    check_images("digits", digits, size=28, channels=1)
    check_image_range("digits", digits, digits=True)
    return pad_control(skeletonize(digits))


def draw_strokes(strokes: list[list[tuple[float, float]]], size: int = 28) -> torch.Tensor:
    """A hand-drawn sketch: polylines of (x, y) points (x to the right, y down, in pixels of a ``size`` x ``size``
    image) -> a one-pixel-wide drawing [1, 1, size, size] in {0, 1}. Each segment is sampled every quarter
    pixel and rounded to the pixel grid, then thinned like a digit's skeleton, so sketches and skeletons
    are drawn with the same pen."""
    if not isinstance(strokes, (list, tuple)):
        raise TypeError(f"strokes must be a list of polylines, got {type(strokes).__name__}")
    if not strokes or not all(hasattr(stroke, "__len__") and len(stroke) >= 2 for stroke in strokes):
        raise ValueError("strokes must be a non-empty list of polylines, each of at least 2 (x, y) points")
    check_integer("size", size, 2, 1024)
    canvas = torch.zeros(size, size)
    for stroke in strokes:
        try:
            points = torch.tensor(stroke, dtype=torch.float32)
        except (TypeError, ValueError):  # not numbers, or points of different lengths
            raise TypeError(f"strokes must be polylines of (x, y) points, got {stroke!r}") from None
        if points.dim() != 2 or points.shape[1] != 2 or not ((points >= 0) & (points <= size - 1)).all():
            raise ValueError(f"strokes must be polylines of (x, y) points with 0 <= x, y <= {size - 1}, got {stroke!r}")
        for start, end in zip(points[:-1], points[1:]):
            steps = int(torch.linalg.vector_norm(end - start) * 4) + 1
            line = start + torch.linspace(0, 1, steps + 1)[:, None] * (end - start)
            canvas[line[:, 1].round().long(), line[:, 0].round().long()] = 1.0
    return skeletonize(canvas[None, None] * 2 - 1)


def _ellipse(cx: float, cy: float, rx: float, ry: float, points: int = 24) -> list[tuple[float, float]]:
    angles = torch.linspace(0, 2 * torch.pi, points + 1)
    return [(cx + rx * float(torch.cos(a)), cy + ry * float(torch.sin(a))) for a in angles]


# Shipped sketches, drawn as a learner would with a mouse: (x, y) polylines on the 28 x 28 canvas.
SKETCHES = {
    "zero": [_ellipse(14, 14, 6, 9)],
    "one": [[(15, 4), (12, 23)]],
    "four": [[(17, 23), (17, 4), (7, 17), (21, 17)]],
    "seven": [[(7, 6), (20, 6), (12, 23)]],
    "eight": [_ellipse(14, 9, 5, 4.5), _ellipse(14, 18.5, 5.5, 5)],
}


def skeleton_iou(generated: torch.Tensor, controls: torch.Tensor, tolerance: int = 1) -> torch.Tensor:
    """How closely generated digits follow their controls: the skeleton of each generated digit [N, 1, 28, 28]
    (in [-1, 1]) and its control skeleton [N, 1, 28, 28] (in {0, 1}) are each thickened by ``tolerance`` pixels
    (a (2 t + 1)-square max filter), and the score is their intersection over union, per image [N]:
    1 = the same strokes within the tolerance, 0 = no stroke in common."""
    check_integer("tolerance", tolerance, 0, 5)
    _check_pair(generated, controls)
    size = 2 * tolerance + 1
    thick_generated = F.max_pool2d(skeletonize(generated), size, stride=1, padding=tolerance) > 0
    thick_control = F.max_pool2d(controls.float(), size, stride=1, padding=tolerance) > 0
    union = (thick_generated | thick_control).flatten(1).sum(1)
    return (thick_generated & thick_control).flatten(1).sum(1) / union.clamp_min(1)


def chamfer_distance(generated: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
    """How far, in pixels, the strokes of generated digits [N, 1, H, W] (in [-1, 1]) lie from their control
    skeletons [N, 1, H, W] (in {0, 1}), per image [N]: the symmetric Chamfer distance

        d(A, B) = 1/2 (mean_{a in A} min_{b in B} |a - b| + mean_{b in B} min_{a in A} |a - b|)

    between the generated digit's skeleton A and the control B (Barrow et al. 1977). 0 = the same strokes;
    a stroke one pixel to the side adds 1. A digit with no ink at all scores the image side, H."""
    _check_pair(generated, controls)
    distances = []
    for drawn, control in zip(skeletonize(generated)[:, 0], controls[:, 0]):
        a, b = torch.nonzero(drawn).float(), torch.nonzero(control).float()
        if len(a) == 0 or len(b) == 0:
            distances.append(float(generated.shape[-2]))
            continue
        pairwise = torch.cdist(a, b)
        distances.append(0.5 * (pairwise.min(1).values.mean() + pairwise.min(0).values.mean()).item())
    return torch.tensor(distances)


# Widths of the control encoder: two stride-2 convolutions take the 32 x 32 control to the 8 x 8 latent grid,
# the course VAE's 4x downsampling (Stable Diffusion's (16, 32, 96, 256) has three, for its 8x).
CONDITIONING_EMBEDDING_CHANNELS = (16, 32, 64)


def make_controlnet(unet):
    """A ``diffusers.ControlNetModel`` made from a text-to-image UNet: a copy of its time embedding, input
    convolution, down blocks and middle block, with their trained weights (``from_unet``), plus a small
    encoder for a one-channel control and the zero convolutions (:func:`zero_convolutions`)."""
    from diffusers import ControlNetModel

    _check_unet(unet)
    return ControlNetModel.from_unet(unet, conditioning_channels=1,
                                     conditioning_embedding_out_channels=CONDITIONING_EMBEDDING_CHANNELS)


def zero_convolutions(controlnet) -> list[torch.nn.Conv2d]:
    """The convolutions that start at zero: the last layer of the control encoder (whose output is added to the
    copy's input features) and the 1x1 convolution after each down-block output and after the middle block
    (whose outputs are the residuals the frozen UNet adds)."""
    check_controlnet("controlnet", controlnet)
    return [controlnet.controlnet_cond_embedding.conv_out, *controlnet.controlnet_down_blocks,
            controlnet.controlnet_mid_block]


def controlnet_residuals(controlnet, model_input: torch.Tensor, timestep, embeddings: torch.Tensor,
                         control: torch.Tensor, conditioning_scale: float = 1.0) -> dict:
    """The ControlNet's contribution at one denoising step, as keyword arguments of the UNet's forward:
    one residual per skip connection (``down_block_additional_residuals``) and one for the middle block,
    each already multiplied by ``conditioning_scale`` (0 = no control; the pipeline's
    ``controlnet_conditioning_scale``)."""
    _check_step_inputs(controlnet, "model_input", model_input, embeddings, "control", control)
    _check_timestep(timestep, len(model_input))
    check_number("conditioning_scale", conditioning_scale, 0.0, 5.0)
    down, middle = controlnet(model_input, timestep, encoder_hidden_states=embeddings, controlnet_cond=control,
                              conditioning_scale=conditioning_scale, return_dict=False)
    return {"down_block_additional_residuals": down, "mid_block_additional_residual": middle}


def controlnet_loss(unet, controlnet, latents: torch.Tensor, controls: torch.Tensor, embeddings: torch.Tensor,
                    alpha_bar: torch.Tensor, generator: torch.Generator | None = None,
                    prediction_type: str = "epsilon") -> torch.Tensor:
    """ControlNet's training objective (Zhang et al. 2023, section 3.3): the text-to-image model's own loss,

        L = E_{z_0, t, c_text, c_control, eps} || target - f_theta(z_t, t, c_text, c_control) ||^2,

    where f_theta is the frozen UNet with the ControlNet's residuals added and the target is what that UNet
    was trained to output (``prediction_type``: eps, or v, ``ddpm.training_target``). Gradients reach only the
    ControlNet when the UNet's parameters are frozen (``requires_grad_(False)``); they still flow *through* the
    UNet. Timesteps and noise are drawn on ``generator``'s device and moved to the latents'
    (``runtime.random_normal``)."""
    from .ddpm import training_target
    from .schedules import q_sample

    _check_unet(unet)
    _check_step_inputs(controlnet, "latents", latents, embeddings, "controls", controls)
    check_image_range("controls", controls, 0.0, 1.0)  # skeletons in {0, 1}
    check_tensor("alpha_bar", alpha_bar, dims=1, floating=True)
    check_generator("generator", generator)
    timesteps = random_integers(len(alpha_bar), len(latents), generator, latents.device)
    noise = random_normal(latents.shape, generator, latents.device)
    alpha_bar = alpha_bar.to(latents.device)
    target = training_target(latents, noise, alpha_bar[timesteps], prediction_type)  # checks prediction_type
    noisy = q_sample(latents, timesteps, noise, alpha_bar)
    residuals = controlnet_residuals(controlnet, noisy, timesteps, embeddings, controls)
    return torch.mean((unet(noisy, timesteps, encoder_hidden_states=embeddings, **residuals).sample - target) ** 2)


def load_controlnet():
    """The shipped ControlNet, in eval mode: ``data/course_controlnet/controlnet/`` (checked against that folder's
    ``checksums.json``), written by ``scripts/train_controlnet.py``, whose command and measured quality are
    in ``data/controlnet_mnist.json``. Stored in float16 (half the tree), computed in float32."""
    from diffusers import ControlNetModel

    folder = part_folders.COURSE_CONTROLNET_DIR
    part_folders.verify_pipeline_folder(folder, parts=("controlnet",))
    with part_folders.quiet_loading():
        controlnet = ControlNetModel.from_pretrained(folder / "controlnet", local_files_only=True, use_safetensors=True,
                                                     low_cpu_mem_usage=False)
    return controlnet.float().eval()
