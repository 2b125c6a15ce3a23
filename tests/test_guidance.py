"""Classifier-free guidance by hand against the guidance the diffusers Stable Diffusion pipeline applies."""
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from course_utils import guidance, latents, text
from course_utils.samplers import make_scheduler

CORPUS = ["a thick seven", "the digit 7, thin", "a handwritten three", "the number one"]


def test_guidance_formula_endpoints():
    uncond, cond = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(guidance.classifier_free_guidance(uncond, cond, 0.0), uncond)
    torch.testing.assert_close(guidance.classifier_free_guidance(uncond, cond, 1.0), cond)
    torch.testing.assert_close(guidance.classifier_free_guidance(uncond, cond, 3.0), cond + 2 * (cond - uncond))


@pytest.mark.parametrize("bad, error", [(-1.0, ValueError), (51.0, ValueError), ("4", TypeError), (True, TypeError)])
def test_guidance_scale_is_checked(bad, error):
    with pytest.raises(error, match="^guidance_scale"):
        guidance.check_guidance_scale(bad)


def test_drop_prompts_rate():
    rng = np.random.default_rng(0)
    dropped = guidance.drop_prompts(["a seven"] * 10_000, 0.1, rng)
    assert 0.09 < dropped.count("") / 10_000 < 0.11
    assert guidance.drop_prompts(["a seven"] * 10, 0.0, rng) == ["a seven"] * 10
    with pytest.raises(ValueError, match="rate"):
        guidance.drop_prompts(["a"], 1.5, rng)


@pytest.fixture(scope="module")
def components():
    torch.manual_seed(0)
    tokenizer = text.make_tokenizer(CORPUS)
    text_encoder = text.make_text_encoder(tokenizer).eval()
    unet = guidance.make_conditional_unet().eval()
    vae = latents.make_vae(scaling_factor=0.5).eval()
    return tokenizer, text_encoder, unet, vae


@pytest.mark.parametrize("sampler, prediction_type", [("ddpm", "epsilon"), ("ddim", "epsilon"),
                                                     ("ddpm", "v_prediction")])
def test_hand_written_guidance_loop_equals_the_pipeline(components, sampler, prediction_type):
    tokenizer, text_encoder, unet, vae = components
    scheduler = guidance.latent_scheduler(sampler, prediction_type=prediction_type, timestep_spacing="trailing")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    prompts, negative = ["a thick seven", "the number one"], ["thin", ""]
    expected = pipe(prompts, negative_prompt=negative, guidance_scale=4.0, num_inference_steps=6,
                    generator=torch.Generator().manual_seed(1), output_type="latent").images
    ours = guidance.sample_with_guidance(
        unet, guidance.latent_scheduler(sampler, prediction_type=prediction_type, timestep_spacing="trailing"),
        guidance.embed_prompts(tokenizer, text_encoder, prompts),
        guidance.embed_prompts(tokenizer, text_encoder, negative), 4.0, 6, torch.Generator().manual_seed(1),
        progress=False)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_guidance_zero_is_the_unconditional_model(components):
    tokenizer, text_encoder, unet, _ = components
    empty = guidance.embed_prompts(tokenizer, text_encoder, ["", ""])
    prompt = guidance.embed_prompts(tokenizer, text_encoder, ["a thick seven", "the number one"])
    run = lambda embeds, w: guidance.sample_with_guidance(  # noqa: E731
        unet, make_scheduler("ddim", clip=False, steps_offset=1), embeds, empty, w, 4, torch.Generator().manual_seed(2), progress=False)
    torch.testing.assert_close(run(prompt, 0.0), run(empty, 1.0))
    assert not torch.allclose(run(prompt, 0.0), run(prompt, 1.0))


@pytest.mark.parametrize("phi", [0.0, 0.7, 1.0])
def test_guidance_rescale_by_hand_equals_diffusers(phi):
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

    guided, cond = 3 * torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    ours = guidance.rescale_guidance(guided, cond, phi)
    torch.testing.assert_close(ours, rescale_noise_cfg(guided, cond, guidance_rescale=phi))
    if phi == 1.0:  # fully rescaled: each sample has the conditional prediction's standard deviation
        torch.testing.assert_close(ours.flatten(1).std(1), cond.flatten(1).std(1))


def test_hand_written_loop_with_guidance_rescale_equals_the_pipeline(components):
    tokenizer, text_encoder, unet, vae = components
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=make_scheduler("ddpm", clip=False, steps_offset=1), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    prompts = ["a thick seven", "the number one"]
    expected = pipe(prompts, guidance_scale=6.0, guidance_rescale=0.7, num_inference_steps=5,
                    generator=torch.Generator().manual_seed(3), output_type="latent").images
    ours = guidance.sample_with_guidance(
        unet, make_scheduler("ddpm", clip=False, steps_offset=1), guidance.embed_prompts(tokenizer, text_encoder, prompts),
        guidance.embed_prompts(tokenizer, text_encoder, ["", ""]), 6.0, 5, torch.Generator().manual_seed(3),
        progress=False, guidance_rescale=0.7)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_guidance_interval_guides_only_inside_it(components):
    tokenizer, text_encoder, unet, _ = components
    assert [guidance.guidance_scale_at(t, 4.0, (200, 600)) for t in (100, 200, 400, 600, 900)] == [1.0, 4, 4, 4, 1.0]
    assert guidance.guidance_scale_at(999, 4.0, None) == 4.0
    prompt = guidance.embed_prompts(tokenizer, text_encoder, ["a thick seven"])
    empty = guidance.embed_prompts(tokenizer, text_encoder, [""])
    run = lambda w, interval: guidance.sample_with_guidance(  # noqa: E731
        unet, make_scheduler("ddim", clip=False, steps_offset=1), prompt, empty, w, 4, torch.Generator().manual_seed(2),
        progress=False, guidance_interval=interval)
    torch.testing.assert_close(run(4.0, (0, 999)), run(4.0, None))  # the whole range: plain guidance
    torch.testing.assert_close(run(4.0, (0, 0)), run(1.0, None))  # no step inside: the conditional model
    inside = run(4.0, (400, 999))
    assert not torch.equal(inside, run(4.0, None)) and not torch.equal(inside, run(1.0, None))


@pytest.mark.parametrize("name, value, error", [
    ("guidance_rescale", 1.5, ValueError), ("guidance_rescale", True, TypeError),
    ("guidance_interval", (600, 200), ValueError), ("guidance_interval", (0.5, 900), TypeError),
    ("guidance_interval", (100,), ValueError)])
def test_bad_remedy_settings_are_refused(components, name, value, error):
    tokenizer, text_encoder, unet, _ = components
    empty = guidance.embed_prompts(tokenizer, text_encoder, [""])
    with pytest.raises(error, match=name):
        guidance.sample_with_guidance(unet, make_scheduler("ddim", clip=False), empty, empty, 2.0, 2, progress=False,
                                      **{name: value})


def test_within_class_spread_is_the_mean_per_class_total_variance():
    generator = torch.Generator().manual_seed(0)
    tight, wide = torch.randn(500, 3, generator=generator), 3 * torch.randn(500, 3, generator=generator)
    features, labels = torch.cat([tight, wide]), torch.tensor([0] * 500 + [1] * 500)
    expected = (tight.var(0).sum() + wide.var(0).sum()) / 2  # each class: the sum of its features' variances
    assert guidance.within_class_spread(features, labels) == pytest.approx(expected.item(), rel=1e-5)
    assert guidance.within_class_spread(features, labels) == pytest.approx((3 + 27) / 2, rel=0.1)
    # a class with a single image has no spread and is left out; moving a class's features changes nothing
    with_single = guidance.within_class_spread(torch.cat([features, torch.zeros(1, 3)]),
                                               torch.tensor([0] * 500 + [1] * 500 + [2]))
    assert with_single == pytest.approx(expected.item(), rel=1e-5)
    shifted = guidance.within_class_spread(features + 10 * labels[:, None], labels)
    assert shifted == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("features, labels, error, message", [
    (np.zeros((4, 3)), [0, 0, 1, 1], TypeError, "features"),
    (torch.zeros(4), [0, 0, 1, 1], ValueError, "features"),
    (torch.zeros(4, 3), [0, 0, 1], ValueError, "labels"),
    (torch.zeros(4, 3), [0.0, 0.0, 1.0, 1.0], ValueError, "labels"),
    (torch.zeros(3, 3), [0, 1, 2], ValueError, "labels"),
])
def test_within_class_spread_refuses_bad_inputs(features, labels, error, message):
    with pytest.raises(error, match=message):
        guidance.within_class_spread(features, labels)


def test_latent_scheduler_takes_the_shipped_models_target_unless_told():
    shipped = guidance.text2image_prediction_type()
    assert shipped in ("epsilon", "v_prediction")
    assert guidance.latent_scheduler().config.prediction_type == shipped
    other = "epsilon" if shipped == "v_prediction" else "v_prediction"
    assert guidance.latent_scheduler("ddim", prediction_type=other).config.prediction_type == other


def test_notebooks_sample_at_the_measured_default_guidance_scale():
    """06, 07 and 09 sample the shipped model at the scale evaluate_text2image.py chose and measured."""
    from pathlib import Path
    import re

    default = guidance.default_guidance_scale()
    sources = Path(__file__).resolve().parent.parent / "notebook_sources"
    for name in ("06_text_conditioning.md", "07_stable_diffusion.md", "09_controlnet.md"):
        found = re.search(r"^GUIDANCE_SCALE = ([\d.]+)", (sources / name).read_text(), re.MULTILINE)
        assert found, f"{name} has no GUIDANCE_SCALE parameter"
        assert float(found.group(1)) == default, f"{name}: GUIDANCE_SCALE {found.group(1)}, measured default {default}"


def test_default_guidance_scale_without_a_measurement_says_how_to_measure(tmp_path, monkeypatch):
    import json

    from course_utils import data

    (tmp_path / "text2image_mnist.json").write_text(json.dumps({"quality": "measure with: ..."}))
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    with pytest.raises(ValueError, match="evaluate_text2image.py --write-manifest"):
        guidance.default_guidance_scale()
