"""ControlNet (notebook 09): the control signal, the zero convolutions, the hand-written loop against
``StableDiffusionControlNetPipeline``, the shipped weights and their training script."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.morphology import thin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import train_controlnet  # noqa: E402

from course_utils import control, part_folders, pipeline  # noqa: E402
from course_utils.data import mnist_tensors  # noqa: E402
from course_utils.guidance import embed_prompts, load_text2image, sample_with_guidance  # noqa: E402


@pytest.fixture(scope="module")
def test_digits():
    images, labels = mnist_tensors("test")
    return images[:300], labels[:300]


@pytest.fixture(scope="module")
def course_parts():
    return load_text2image()


def test_skeletons_equal_scikit_image_thin(test_digits):
    """The hand-written Guo & Hall thinning gives scikit-image's ``thin``, pixel for pixel."""
    images, _ = test_digits
    ours = control.skeletonize(images)[:, 0].numpy().astype(bool)
    reference = np.stack([thin(image[0].numpy() > 0) for image in images])
    assert np.array_equal(ours, reference)


def test_skeletons_are_thin_inside_the_ink_and_keep_strokes_connected(test_digits):
    images, _ = test_digits
    ink = images[:, 0] > 0
    skeletons = control.skeletonize(images)[:, 0].bool()
    assert not (skeletons & ~ink).any()  # only ink pixels
    assert skeletons.sum() < 0.5 * ink.sum()  # thinned
    full_blocks = skeletons[:, :-1, :-1] & skeletons[:, 1:, :-1] & skeletons[:, :-1, 1:] & skeletons[:, 1:, 1:]
    # lines one pixel wide: Guo & Hall keep a 2 x 2 square where thinning it would delete a stroke, rarely
    assert full_blocks.flatten(1).any(1).sum() <= 0.01 * len(images)
    eight = np.ones((3, 3))
    for original, skeleton in zip(ink.numpy(), skeletons.numpy()):
        assert ndimage.label(original, eight)[1] == ndimage.label(skeleton, eight)[1]


def test_skeletonize_refuses_other_shapes():
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        control.skeletonize(torch.zeros(28, 28))


def test_drawn_strokes_are_one_pixel_lines_in_place():
    drawing = control.draw_strokes([[(3, 10), (20, 10)]])[0, 0]
    assert drawing.shape == (28, 28)
    assert torch.equal(torch.nonzero(drawing), torch.tensor([[10, x] for x in range(3, 21)]))
    for strokes in control.SKETCHES.values():
        sketch = control.draw_strokes(strokes)
        assert sketch.sum() >= 15 and torch.equal(control.skeletonize(sketch * 2 - 1), sketch)


@pytest.mark.parametrize("strokes, message", [([], "non-empty"), ([[(3, 3)]], "at least 2"),
                                              ([[(3, 3), (30, 3)]], "0 <= x, y <= 27")])
def test_bad_strokes_are_refused(strokes, message):
    with pytest.raises(ValueError, match=message):
        control.draw_strokes(strokes)


def test_controls_sit_over_their_digits(test_digits):
    images, _ = test_digits
    controls = control.digit_controls(images[:8])
    assert controls.shape == (8, 1, 32, 32) and set(controls.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(controls[:, :, 2:30, 2:30], control.skeletonize(images[:8]))


def test_adherence_measures_by_hand():
    line = control.draw_strokes([[(14, 4), (14, 23)]])
    moved = control.draw_strokes([[(16, 4), (16, 23)]])
    as_digit = line * 2 - 1  # a generated "digit" whose skeleton is the line itself
    assert control.chamfer_distance(as_digit, line).item() == 0.0
    assert control.chamfer_distance(as_digit, moved).item() == pytest.approx(2.0)
    assert control.chamfer_distance(-torch.ones_like(line), line).item() == 28.0  # no ink at all
    assert control.skeleton_iou(as_digit, line).item() == 1.0
    assert control.skeleton_iou(as_digit, moved, tolerance=0).item() == 0.0
    # thickened by 1 px: columns 13-15 against 15-17 share one of five
    assert control.skeleton_iou(as_digit, moved, tolerance=1).item() == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="tolerance"):
        control.skeleton_iou(as_digit, line, tolerance=-1)
    with pytest.raises(ValueError, match="differ in shape"):
        control.chamfer_distance(as_digit, line[..., :27])


def test_new_controlnet_copies_the_encoder_and_starts_at_zero(course_parts):
    _, _, unet, _ = course_parts
    controlnet = control.make_controlnet(unet)
    for name, tensor in controlnet.down_blocks.state_dict().items():
        assert torch.equal(tensor, unet.down_blocks.state_dict()[name])
    assert all(float(conv.weight.abs().max()) == 0 and float(conv.bias.abs().max()) == 0
               for conv in control.zero_convolutions(controlnet))
    features = controlnet.controlnet_cond_embedding(torch.rand(2, 1, 32, 32))
    assert features.shape == (2, unet.config.block_out_channels[0], 8, 8)  # the VAE's 4x, onto the latent grid
    residuals = control.controlnet_residuals(controlnet, torch.randn(2, 4, 8, 8), 500, torch.randn(2, 16, 64),
                                             torch.rand(2, 1, 32, 32))
    assert all(float(r.abs().max()) == 0 for r in [*residuals["down_block_additional_residuals"],
                                                   residuals["mid_block_additional_residual"]])


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_controlnet_loss_by_hand_for_each_target(course_parts, prediction_type):
    """The loss is the frozen UNet's own: eps, or v = sqrt(abar) eps - sqrt(1 - abar) z_0, as it was trained."""
    from course_utils.schedules import alphas_cumprod, make_betas

    _, _, unet, _ = course_parts
    controlnet = control.make_controlnet(unet)
    latents, embeddings = torch.randn(3, 4, 8, 8), torch.randn(3, 16, 64)
    controls = (torch.rand(3, 1, 32, 32) > 0.8).float()
    alpha_bar = alphas_cumprod(make_betas("cosine", 1000)).float()
    with torch.no_grad():
        loss = control.controlnet_loss(unet, controlnet, latents, controls, embeddings, alpha_bar,
                                       torch.Generator().manual_seed(4), prediction_type)
        generator = torch.Generator().manual_seed(4)  # the same draws, in the same order
        t = torch.randint(0, 1000, (3,), generator=generator)
        noise = torch.randn(latents.shape, generator=generator)
        a, s = alpha_bar[t].sqrt().view(-1, 1, 1, 1), (1 - alpha_bar[t]).sqrt().view(-1, 1, 1, 1)
        target = noise if prediction_type == "epsilon" else a * noise - s * latents
        output = unet(a * latents + s * noise, t, encoder_hidden_states=embeddings).sample  # zero residuals
    torch.testing.assert_close(loss, ((output - target) ** 2).mean(), atol=1e-5, rtol=1e-5)


def test_untrained_controlnet_changes_nothing(course_parts, test_digits):
    """At initialisation the ControlNet pipeline draws exactly what the text-to-image pipeline draws."""
    _, _, unet, _ = course_parts
    controls = control.digit_controls(test_digits[0][:4])
    settings = dict(num_inference_steps=5, guidance_scale=4.0, output_type="pt")
    with_control = pipeline.build_controlnet_pipeline(control.make_controlnet(unet))(
        ["a three"] * 4, image=controls, generator=torch.Generator().manual_seed(1), **settings).images
    plain = pipeline.build_course_pipeline()
    plain.set_progress_bar_config(disable=True)
    without = plain(["a three"] * 4, generator=torch.Generator().manual_seed(1), **settings).images
    assert torch.equal(with_control, without)


@pytest.fixture(scope="module")
def controlnet_pipe():
    return pipeline.build_controlnet_pipeline()


def test_hand_written_loop_equals_the_controlnet_pipeline(controlnet_pipe, test_digits):
    pipe = controlnet_pipe
    controls, prompts = control.digit_controls(test_digits[0][:3]), ["a handwritten seven", "a one", "the digit 2"]
    expected = pipe(prompts, image=controls, num_inference_steps=8, guidance_scale=3.0, controlnet_conditioning_scale=0.7,
                    generator=torch.Generator().manual_seed(4), output_type="pt").images
    latents = sample_with_guidance(
        pipe.unet, pipe.scheduler, embed_prompts(pipe.tokenizer, pipe.text_encoder, prompts),
        embed_prompts(pipe.tokenizer, pipe.text_encoder, [""] * 3), 3.0, 8, torch.Generator().manual_seed(4),
        progress=False, controlnet=pipe.controlnet, control=controls, conditioning_scale=0.7)
    with torch.no_grad():
        by_hand = (pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
    assert torch.allclose(by_hand, expected, atol=1e-5)
    by_hand_with_pipe = pipeline.generate_by_hand(pipe, prompts, guidance_scale=3.0, num_inference_steps=8,
                                                  generator=torch.Generator().manual_seed(4), control=controls,
                                                  conditioning_scale=0.7)
    assert torch.allclose((by_hand_with_pipe + 1) / 2, expected, atol=1e-5)


def test_trained_controlnet_at_scale_zero_is_the_text_to_image_model(controlnet_pipe, test_digits):
    pipe = controlnet_pipe
    controls = control.digit_controls(test_digits[0][:2])
    assert any(float(conv.weight.abs().max()) > 0 for conv in control.zero_convolutions(pipe.controlnet))
    settings = dict(num_inference_steps=4, guidance_scale=4.0, output_type="pt")
    off = pipe(["a four"] * 2, image=controls, controlnet_conditioning_scale=0.0,
               generator=torch.Generator().manual_seed(2), **settings).images
    on = pipe(["a four"] * 2, image=controls, generator=torch.Generator().manual_seed(2), **settings).images
    plain = pipeline.build_course_pipeline()
    plain.set_progress_bar_config(disable=True)
    assert torch.equal(off, plain(["a four"] * 2, generator=torch.Generator().manual_seed(2), **settings).images)
    assert not torch.allclose(off, on, atol=1e-3)


def test_pipeline_saves_and_loads_offline(controlnet_pipe, tmp_path, test_digits):
    from diffusers import StableDiffusionControlNetPipeline

    controlnet_pipe.save_pretrained(tmp_path)
    loaded = StableDiffusionControlNetPipeline.from_pretrained(tmp_path, local_files_only=True, use_safetensors=True)
    loaded.set_progress_bar_config(disable=True)
    controls = control.digit_controls(test_digits[0][:2])
    settings = dict(image=controls, num_inference_steps=3, output_type="pt")
    expected = controlnet_pipe(["a nine"] * 2, generator=torch.Generator().manual_seed(0), **settings).images
    assert torch.allclose(loaded(["a nine"] * 2, generator=torch.Generator().manual_seed(0), **settings).images,
                          expected, atol=1e-6)


def test_damaged_controlnet_names_its_rebuild_command(tmp_path, monkeypatch):
    copy = tmp_path / "course_controlnet"
    shutil.copytree(part_folders.COURSE_CONTROLNET_DIR, copy)
    monkeypatch.setattr(part_folders, "COURSE_CONTROLNET_DIR", copy)
    weights = copy / "controlnet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(part_folders.PipelineFilesError, match="train_controlnet.py"):
        control.load_controlnet()
    (copy / part_folders.CHECKSUMS_FILE).unlink()
    with pytest.raises(part_folders.PipelineFilesError, match="train_controlnet.py"):
        control.load_controlnet()


def test_bad_control_arguments_are_refused(course_parts):
    _, _, unet, _ = course_parts
    controlnet = control.make_controlnet(unet)
    with pytest.raises(ValueError, match="conditioning_scale"):
        control.controlnet_residuals(controlnet, torch.randn(1, 4, 8, 8), 5, torch.randn(1, 16, 64),
                                     torch.rand(1, 1, 32, 32), conditioning_scale=-1)
    with pytest.raises(ValueError, match="together"):
        sample_with_guidance(unet, pipeline.build_course_pipeline().scheduler, torch.randn(1, 16, 64),
                             torch.randn(1, 16, 64), 2.0, 2, controlnet=controlnet)


def test_train_controlnet_resumes_to_identical_weights(tmp_path, monkeypatch):
    """The real script on 64 digits: 4 steps at once and 2 + 2 steps resumed write the same ControlNet."""
    images, labels = mnist_tensors("train")
    monkeypatch.setattr(train_controlnet, "mnist_tensors", lambda split: (images[:64], labels[:64]))
    threads = torch.get_num_threads()

    def run(name: str, steps: int) -> Path:
        train_controlnet.main(["--steps", str(steps), "--batch-size", "4", "--warmup", "2", "--save-every", "2",
                               "--threads", "1", "--run-dir", str(tmp_path / name / "run"),
                               "--folder", str(tmp_path / name / "out"), "--manifest", str(tmp_path / name / "m.json")])
        return tmp_path / name / "out"

    try:
        straight = run("straight", 4)
        run("resumed", 2)
        resumed = run("resumed", 4)
    finally:
        torch.set_num_threads(threads)
    weights = "controlnet/diffusion_pytorch_model.safetensors"
    assert (straight / weights).read_bytes() == (resumed / weights).read_bytes()
    manifest = json.loads((resumed.parent / "m.json").read_text())
    assert manifest["steps"] == 4 and manifest["command"].startswith("python scripts/train_controlnet.py --steps 4")
    assert json.loads((resumed / part_folders.CHECKSUMS_FILE).read_text()) == part_folders.folder_checksums(resumed)
