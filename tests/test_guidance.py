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


@pytest.mark.parametrize("bad", [-1.0, 51.0, "4"])
def test_guidance_scale_is_checked(bad):
    with pytest.raises(ValueError, match="guidance_scale"):
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


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_hand_written_guidance_loop_equals_the_pipeline(components, sampler):
    tokenizer, text_encoder, unet, vae = components
    scheduler = make_scheduler(sampler, clip=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    prompts, negative = ["a thick seven", "the number one"], ["thin", ""]
    expected = pipe(prompts, negative_prompt=negative, guidance_scale=4.0, num_inference_steps=6,
                    generator=torch.Generator().manual_seed(1), output_type="latent").images
    ours = guidance.sample_with_guidance(
        unet, make_scheduler(sampler, clip=False, steps_offset=1), guidance.embed_prompts(tokenizer, text_encoder, prompts),
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
