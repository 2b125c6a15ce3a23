"""The hand-written DDPM pieces against diffusers, and the UNet's contract."""
import pytest
import torch
from diffusers import DDPMScheduler

from course_utils.ddpm import (EMA, ddpm_loss, ddpm_step, inference_timesteps, min_snr_weight, sample_ddpm,
                               training_timesteps)
from course_utils.schedules import DIFFUSERS_NAMES, alphas_cumprod, make_betas
from course_utils.unet import TinyUNet, count_parameters, predict_in_chunks, timestep_embedding


def scheduler_and_alpha_bar(schedule="cosine", num_timesteps=1000):
    scheduler = DDPMScheduler(num_train_timesteps=num_timesteps, beta_schedule=DIFFUSERS_NAMES[schedule],
                              clip_sample=True, variance_type="fixed_small", prediction_type="epsilon")
    return scheduler, alphas_cumprod(make_betas(schedule, num_timesteps)).float()


def test_float32_schedules_agree_to_rounding():
    # diffusers multiplies the alphas in float32, we in float64 and round once: they differ by rounding only.
    # Near t = 0, 1 - alpha_bar is ~1e-5, so that rounding moves a sampler step by up to ~5e-5;
    # the step tests below therefore pass the scheduler's own alphas_cumprod to test the formula exactly.
    scheduler, alpha_bar = scheduler_and_alpha_bar()
    torch.testing.assert_close(alpha_bar, scheduler.alphas_cumprod, atol=1e-6, rtol=0)


@pytest.mark.parametrize("num_inference_steps", [1000, 100, 7])
def test_inference_timesteps_match_diffusers(num_inference_steps):
    scheduler, _ = scheduler_and_alpha_bar()
    scheduler.set_timesteps(num_inference_steps)
    assert inference_timesteps(1000, num_inference_steps).tolist() == scheduler.timesteps.tolist()


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
@pytest.mark.parametrize("num_inference_steps", [1000, 50])
def test_ddpm_step_equals_diffusers_step(schedule, num_inference_steps):
    scheduler, _ = scheduler_and_alpha_bar(schedule)
    alpha_bar = scheduler.alphas_cumprod
    scheduler.set_timesteps(num_inference_steps)
    step_ratio = 1000 // num_inference_steps
    generator = torch.Generator().manual_seed(0)
    for t in [int(scheduler.timesteps[0]), int(scheduler.timesteps[len(scheduler.timesteps) // 2]), step_ratio, 0]:
        x_t = torch.randn(4, 1, 28, 28, generator=generator) * 1.5
        eps = torch.randn(4, 1, 28, 28, generator=generator)
        expected = scheduler.step(eps, t, x_t, generator=torch.Generator().manual_seed(t)).prev_sample
        noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(t)) if t > 0 else None
        ours = ddpm_step(eps, t, t - step_ratio, x_t, alpha_bar, noise)
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-6)


def test_ddpm_step_detects_a_wrong_posterior():
    scheduler, alpha_bar = scheduler_and_alpha_bar()
    x_t, eps = torch.randn(2, 1, 28, 28), torch.randn(2, 1, 28, 28)
    expected = scheduler.step(eps, 500, x_t, generator=torch.Generator().manual_seed(1)).prev_sample
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(1))
    wrong = ddpm_step(eps, 500, 498, x_t, alpha_bar, noise)  # posterior of the wrong earlier step
    assert not torch.allclose(wrong, expected, atol=1e-3)


def test_full_sampling_loop_equals_diffusers_loop():
    torch.manual_seed(0)
    model = TinyUNet((8, 16)).eval()
    scheduler, alpha_bar = scheduler_and_alpha_bar()
    scheduler.set_timesteps(10)
    ours = sample_ddpm(model, 2, alpha_bar, 10, generator=torch.Generator().manual_seed(3), progress=False)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, 28, 28, generator=generator)
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(model(x, t.repeat(2)), t, x, generator=generator).prev_sample
    torch.testing.assert_close(ours, x, atol=1e-5, rtol=1e-5)


def test_bad_step_count_is_rejected_with_its_range():
    with pytest.raises(ValueError, match=r"num_inference_steps must be an integer in \[1, 1000\]"):
        inference_timesteps(1000, 0)


def test_unet_maps_images_to_same_shape_and_uses_the_timestep():
    torch.manual_seed(0)
    model = TinyUNet((8, 16, 32))
    x = torch.randn(3, 1, 28, 28)
    out_early, out_late = model(x, torch.tensor([1, 1, 1])), model(x, torch.tensor([900, 900, 900]))
    assert out_early.shape == x.shape
    assert not torch.allclose(out_early, out_late)
    assert count_parameters(model) > 0
    with pytest.raises(ValueError, match="channels"):
        TinyUNet((12, 16))


def test_predicting_in_chunks_gives_the_whole_batch_result():
    torch.manual_seed(0)
    model = TinyUNet((8, 16, 32)).eval()
    x, t = torch.randn(7, 1, 28, 28), torch.randint(0, 1000, (7,))
    with torch.no_grad():
        whole = model(x, t)
        chunked = predict_in_chunks(model, x, t, max_batch=3)  # chunks of 3, 3 and 1
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-5)  # a batch of 1 may round differently
    calls = []
    model.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    with torch.no_grad():
        predict_in_chunks(model, x, t, max_batch=3)
    assert calls == [3, 3, 1]
    with pytest.raises(ValueError, match=r"^timesteps must hold one timestep per image of x \(7\), got 6"):
        predict_in_chunks(model, x, t[:6])
    with pytest.raises(ValueError, match=r"^max_batch must be an integer"):
        predict_in_chunks(model, x, t, max_batch=0)


def test_timestep_embedding_matches_diffusers():
    from diffusers.models.embeddings import get_timestep_embedding

    timesteps = torch.tensor([0, 10, 999])
    expected = get_timestep_embedding(timesteps, 32, flip_sin_to_cos=True, downscale_freq_shift=0)
    torch.testing.assert_close(timestep_embedding(timesteps, 32), expected)


def test_loss_decreases_when_training_a_tiny_model():
    torch.manual_seed(0)
    model = TinyUNet((8, 16))
    _, alpha_bar = scheduler_and_alpha_bar()
    x0 = torch.zeros(16, 1, 28, 28) - 1  # a blank image: easy to learn
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for step in range(30):
        loss = ddpm_loss(model, x0, alpha_bar, torch.Generator().manual_seed(step % 3))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) < 0.5 * sum(losses[:3])


def test_ema_moves_towards_the_model():
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.add_(1.0)
    before = ema.model.weight.clone()
    ema.update(model)
    assert torch.all(ema.model.weight > before) and torch.all(ema.model.weight < model.weight)
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)


def test_ddpm_step_clip_range_equals_diffusers_clip_sample_range():
    """Latent sampling clips x0_hat to [-6, 6], as DDPMScheduler does with clip_sample_range=6."""
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True,
                              clip_sample_range=6.0, variance_type="fixed_small", prediction_type="epsilon")
    scheduler.set_timesteps(50)
    generator = torch.Generator().manual_seed(0)
    x_t, eps, noise = (torch.randn(2, 4, 8, 8, generator=generator) * 3 for _ in range(3))
    expected = scheduler.step(eps, 999 - 19, x_t, generator=torch.Generator().manual_seed(5)).prev_sample
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(5))
    ours = ddpm_step(eps, 999 - 19, 999 - 19 - 20, x_t, scheduler.alphas_cumprod, noise, clip_range=6.0)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    unclipped = ddpm_step(eps, 999 - 19, 999 - 39, x_t, scheduler.alphas_cumprod, noise, clip_range=None)
    assert not torch.allclose(ours, unclipped)


def test_ddpm_step_refuses_impossible_steps_and_clipping():
    _, alpha_bar = scheduler_and_alpha_bar()
    x = torch.zeros(1, 1, 28, 28)
    with pytest.raises(ValueError, match=r"t must be an integer in \[0, 999\], got -5"):
        ddpm_step(x, -5, -10, x, alpha_bar, x)
    with pytest.raises(ValueError, match=r"prev_t must be an integer in \[-1000, 499\], got 600"):
        ddpm_step(x, 500, 600, x, alpha_bar, x)  # out of order: a step must go to an earlier time
    with pytest.raises(TypeError, match="t must be an integer"):
        ddpm_step(x, 500.5, 400, x, alpha_bar, x)
    with pytest.raises(ValueError, match=r"clip_range must be a number in \(0, 1000000.0\], got -1"):
        ddpm_step(x, 500, 400, x, alpha_bar, x, clip_range=-1)  # used to give all-black images
    with pytest.raises(ValueError, match="noise is required"):
        ddpm_step(x, 500, 400, x, alpha_bar, None)


def test_a_boolean_is_not_a_step_count():
    with pytest.raises(TypeError, match="num_inference_steps must be an integer"):
        sample_ddpm(TinyUNet((8, 16)), 1, scheduler_and_alpha_bar()[1], True, progress=False)


def test_lognormal_timesteps_follow_edm_noise_levels():
    """ln sigma_t of the drawn timesteps is N(-1.2, 1.2^2) up to rounding to the discrete levels."""
    alpha_bar = alphas_cumprod(make_betas("cosine", 1000)).float()
    timesteps = training_timesteps(alpha_bar, 20000, torch.Generator().manual_seed(0), time_sampling="lognormal")
    assert timesteps.dtype == torch.int64 and 0 <= timesteps.min() and timesteps.max() <= 999
    log_sigma = 0.5 * torch.log((1 - alpha_bar[timesteps]) / alpha_bar[timesteps])
    assert abs(log_sigma.mean().item() + 1.2) < 0.05 and abs(log_sigma.std().item() - 1.2) < 0.05
    uniform = training_timesteps(alpha_bar, 20000, torch.Generator().manual_seed(0))
    assert abs(uniform.float().mean().item() - 499.5) < 10


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_min_snr_weight_matches_the_diffusers_training_scripts(prediction_type):
    """The weights of diffusers' train_text_to_image.py (--snr_gamma), from diffusers.training_utils.compute_snr."""
    from diffusers.training_utils import compute_snr

    scheduler, alpha_bar = scheduler_and_alpha_bar()
    timesteps = torch.tensor([0, 10, 200, 500, 900, 999])
    snr = compute_snr(scheduler, timesteps)
    clipped = torch.stack([snr, 5.0 * torch.ones_like(snr)], dim=1).min(dim=1)[0]
    expected = {"epsilon": clipped / snr, "v_prediction": clipped / (snr + 1), "sample": clipped}[prediction_type]
    weight = min_snr_weight(scheduler.alphas_cumprod[timesteps], prediction_type, 5.0)
    torch.testing.assert_close(weight, expected, rtol=1e-4, atol=1e-7)


def test_min_snr_loss_weights_each_image_by_its_timestep():
    """The weighted loss is the per-image mean squared error times min_snr_weight, averaged."""
    torch.manual_seed(0)
    model = TinyUNet((8, 16, 32))
    x0 = torch.rand(6, 1, 28, 28) * 2 - 1
    alpha_bar = alphas_cumprod(make_betas("cosine", 1000)).float()
    loss = ddpm_loss(model, x0, alpha_bar, torch.Generator().manual_seed(4), "v_prediction", snr_gamma=5.0)
    generator = torch.Generator().manual_seed(4)
    timesteps = training_timesteps(alpha_bar, 6, generator)
    noise = torch.randn(x0.shape, generator=generator)
    x_t = alpha_bar[timesteps].sqrt()[:, None, None, None] * x0 + (1 - alpha_bar[timesteps]).sqrt()[:, None, None, None] * noise
    target = alpha_bar[timesteps].sqrt()[:, None, None, None] * noise - (1 - alpha_bar[timesteps]).sqrt()[:, None, None, None] * x0
    per_image = ((model(x_t, timesteps) - target) ** 2).mean(dim=(1, 2, 3))
    expected = (min_snr_weight(alpha_bar[timesteps], "v_prediction", 5.0) * per_image).mean()
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="time_sampling"):
        ddpm_loss(model, x0, alpha_bar, time_sampling="log-normal")
