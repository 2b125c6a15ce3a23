"""The hand-written DDIM against diffusers, and the generic scheduler loop with every course sampler."""
import pytest
import torch
from diffusers import DDIMScheduler

from course_utils.ddpm import sample_ddpm
from course_utils.samplers import (SAMPLERS, ddim_step, make_scheduler, noise_levels, sample_ddim,
                                   sample_in_batches, sample_with_scheduler, sampling_timesteps)
from course_utils.schedules import alphas_cumprod, make_betas
from course_utils.unet import TinyUNet

torch.set_num_threads(1)


def ddim_scheduler(spacing="trailing", clip=True):
    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                         clip_sample=clip, set_alpha_to_one=True, timestep_spacing=spacing)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return TinyUNet((8, 16)).eval()


class CountingModel(torch.nn.Module):
    """Wraps a model and counts its forward calls, to check the NFE a sampler reports."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x, timesteps):
        self.calls += 1
        return self.model(x, timesteps)


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("num_inference_steps", [1000, 100, 10, 7, 3, 1])
def test_sampling_timesteps_match_diffusers(spacing, num_inference_steps):
    scheduler = ddim_scheduler(spacing)
    scheduler.set_timesteps(num_inference_steps)
    assert sampling_timesteps(1000, num_inference_steps, spacing).tolist() == scheduler.timesteps.tolist()


def test_trailing_spacing_starts_at_pure_noise_and_leading_does_not():
    assert sampling_timesteps(1000, 5, "trailing").tolist() == [999, 799, 599, 399, 199]
    assert sampling_timesteps(1000, 5, "leading").tolist() == [800, 600, 400, 200, 0]


def test_float32_alphas_cumprod_agree_with_ours_to_rounding():
    # diffusers multiplies the alphas in float32, course_utils in float64 and rounds once. They differ by
    # rounding only, but near t = 0 (1 - alpha_bar ~ 1e-5) that moves a step by up to ~5e-5, and at t = 999
    # (alpha_bar ~ 2e-9) x0_hat = (...) / sqrt(alpha_bar) magnifies it further. The step tests below therefore
    # give both implementations the scheduler's own float32 table, to test the formula itself at 1e-6.
    ours = alphas_cumprod(make_betas("cosine", 1000)).float()
    torch.testing.assert_close(ours, ddim_scheduler().alphas_cumprod, atol=1e-6, rtol=0)


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("num_inference_steps", [50, 10])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("clip", [True, False])
def test_ddim_step_equals_diffusers_step(spacing, num_inference_steps, eta, clip):
    scheduler = ddim_scheduler(spacing, clip)
    alpha_bar = scheduler.alphas_cumprod
    scheduler.set_timesteps(num_inference_steps)
    timesteps = scheduler.timesteps.tolist()
    stride = 1000 // num_inference_steps
    generator = torch.Generator().manual_seed(0)
    # the first step, one in the middle, the second-to-last and the last (to x_0, alpha_bar_prev = 1)
    for t in [timesteps[0], timesteps[len(timesteps) // 2], timesteps[-2], timesteps[-1]]:
        x_t = torch.randn(4, 1, 28, 28, generator=generator) * 1.5
        eps = torch.randn(4, 1, 28, 28, generator=generator)
        noise = torch.randn(4, 1, 28, 28, generator=generator)
        expected = scheduler.step(eps, t, x_t, eta=eta, variance_noise=noise if eta > 0 else None).prev_sample
        ours = ddim_step(eps, t, t - stride, x_t, alpha_bar, eta=eta, noise=noise, clip=clip)
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-6)


def test_the_step_comparison_catches_a_wrong_direction_term():
    # A classic slip: forgetting sigma^2 in sqrt(1 - abar_prev - sigma^2). It must not pass as "close".
    scheduler = ddim_scheduler()
    alpha_bar = scheduler.alphas_cumprod
    scheduler.set_timesteps(10)
    x_t, eps, noise = torch.randn(3, 2, 1, 28, 28).unbind(0)
    t, prev_t = 499, 399
    expected = scheduler.step(eps, t, x_t, eta=1.0, variance_noise=noise).prev_sample
    abar_t, abar_prev = alpha_bar[t], alpha_bar[prev_t]
    x0_hat = ((x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()).clamp(-1, 1)
    sigma = ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).sqrt()
    wrong = abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps + sigma * noise
    assert not torch.allclose(wrong, expected, atol=1e-3)
    ours = ddim_step(eps, t, prev_t, x_t, alpha_bar, eta=1.0, noise=noise)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-6)


def test_eta_one_has_the_ddpm_posterior_variance():
    # sigma_t(eta=1)^2 = (1 - abar_prev) / (1 - abar_t) * beta, the DDPM "fixed_small" variance (DDIM eq. 16).
    alpha_bar = alphas_cumprod(make_betas("cosine", 1000))
    x_t, eps, noise = torch.randn(3, 2, 1, 28, 28, dtype=torch.float64).unbind(0)
    t, prev_t = 600, 500
    with_noise = ddim_step(eps, t, prev_t, x_t, alpha_bar, eta=1.0, noise=noise)
    without = ddim_step(eps, t, prev_t, x_t, alpha_bar, eta=1.0, noise=torch.zeros_like(noise))
    beta = 1 - alpha_bar[t] / alpha_bar[prev_t]
    ddpm_std = ((1 - alpha_bar[prev_t]) / (1 - alpha_bar[t]) * beta).sqrt()
    torch.testing.assert_close(with_noise - without, ddpm_std * noise)


def test_deterministic_ddim_recovers_x0_from_the_true_noise():
    # With the exact noise as "prediction", one DDIM step from any t lands on x_0 (the x0_hat term is exact).
    alpha_bar = alphas_cumprod(make_betas("cosine", 1000))
    x0 = torch.rand(2, 1, 28, 28, dtype=torch.float64) * 2 - 1
    eps = torch.randn_like(x0)
    x_t = alpha_bar[700].sqrt() * x0 + (1 - alpha_bar[700]).sqrt() * eps
    torch.testing.assert_close(ddim_step(eps, 700, -1, x_t, alpha_bar), x0)
    x_300 = alpha_bar[300].sqrt() * x0 + (1 - alpha_bar[300]).sqrt() * eps
    torch.testing.assert_close(ddim_step(eps, 700, 300, x_t, alpha_bar), x_300)


def test_deterministic_step_up_is_undone_by_the_step_down():
    # DDIM inversion: with eta = 0 and no clipping the step t -> t' is invertible for a fixed eps.
    alpha_bar = ddim_scheduler().alphas_cumprod
    x_t, eps = torch.randn(2, 2, 1, 28, 28, generator=torch.Generator().manual_seed(0)).unbind(0)
    up = ddim_step(eps, 200, 600, x_t, alpha_bar, clip=False)
    assert torch.isfinite(up).all()
    torch.testing.assert_close(ddim_step(eps, 600, 200, up, alpha_bar, clip=False), x_t, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="prev_t < t"):
        ddim_step(eps, 200, 600, x_t, alpha_bar, eta=0.5, noise=eps)


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_full_ddim_loop_equals_diffusers_loop(spacing, eta):
    model = tiny_model()
    scheduler = ddim_scheduler(spacing)
    alpha_bar = scheduler.alphas_cumprod
    ours = sample_ddim(model, 2, alpha_bar, 10, generator=torch.Generator().manual_seed(3), eta=eta,
                       timestep_spacing=spacing, progress=False)
    scheduler.set_timesteps(10)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, 28, 28, generator=generator)
    with torch.no_grad():
        for i, t in enumerate(scheduler.timesteps):
            eps = model(x, t.repeat(2))
            last = i == len(scheduler.timesteps) - 1
            noise = torch.randn(x.shape, generator=generator) if eta > 0 and not last else None
            x = scheduler.step(eps, t, x, eta=eta, variance_noise=noise).prev_sample
    torch.testing.assert_close(ours, x, atol=1e-5, rtol=1e-5)


def test_generic_loop_with_the_ddim_scheduler_equals_sample_ddim():
    model = tiny_model(1)
    ours = sample_ddim(model, 3, ddim_scheduler().alphas_cumprod, 20, torch.Generator().manual_seed(5), progress=False)
    library, nfe = sample_with_scheduler(model, make_scheduler("ddim"), 3, 20, torch.Generator().manual_seed(5),
                                         progress=False)
    assert nfe == 20
    torch.testing.assert_close(ours.clamp(-1, 1), library, atol=1e-5, rtol=1e-5)


def test_generic_loop_with_the_ddpm_scheduler_equals_notebook_03_sampler():
    model = tiny_model(2)
    alpha_bar = make_scheduler("ddpm").alphas_cumprod
    ours = sample_ddpm(model, 2, alpha_bar, 10, generator=torch.Generator().manual_seed(7), progress=False)
    library, _ = sample_with_scheduler(model, make_scheduler("ddpm", timestep_spacing="leading"), 2, 10,
                                       torch.Generator().manual_seed(7), progress=False)
    torch.testing.assert_close(ours.clamp(-1, 1), library, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_inference_steps", [3, 10])
def test_unclipped_ddim_is_euler_on_the_same_timesteps(num_inference_steps):
    # Song et al. 2021 eq. 14 / Karras et al. 2022: with y = x / sqrt(abar) and sigma = sqrt((1 - abar) / abar),
    # a deterministic DDIM step is the Euler step y' = y + (sigma' - sigma) eps of dy/dsigma = eps.
    # They agree to float32 rounding, which the first step (sigma ~ 2e4 at t = 999) makes ~1e-3.
    model = tiny_model(3)
    euler = make_scheduler("euler_karras", use_karras_sigmas=False, timestep_spacing="trailing")
    ddim, _ = sample_with_scheduler(model, make_scheduler("ddim", clip=False), 2, num_inference_steps,
                                    torch.Generator().manual_seed(0), progress=False)
    by_euler, _ = sample_with_scheduler(model, euler, 2, num_inference_steps, torch.Generator().manual_seed(0),
                                        progress=False)
    torch.testing.assert_close(by_euler, ddim, atol=1e-2, rtol=0)
    clipped, _ = sample_with_scheduler(model, make_scheduler("ddim"), 2, num_inference_steps,
                                       torch.Generator().manual_seed(0), progress=False)
    assert (clipped - by_euler).abs().max() > 0.1  # clipping x0_hat changes the path: the check can fail


class OracleDenoiser(torch.nn.Module):
    """The exact noise predictor for a data set of one image x*: eps = (x_t - sqrt(abar_t) x*) / sqrt(1 - abar_t).

    It accepts fractional timesteps (Euler and Heun on Karras levels ask for them), interpolating log sigma
    linearly between integer timesteps as diffusers does.
    """

    def __init__(self, target, alphas_cumprod):
        super().__init__()
        self.target = target
        self.log_sigmas = (0.5 * torch.log((1 - alphas_cumprod) / alphas_cumprod)).double()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the samplers a device to read

    def forward(self, x, timesteps):
        t = torch.as_tensor(timesteps, dtype=torch.float64).reshape(-1)[:1].clamp(0, len(self.log_sigmas) - 1)
        low = t.floor().long().clamp(max=len(self.log_sigmas) - 2)
        log_sigma = torch.lerp(self.log_sigmas[low], self.log_sigmas[low + 1], t - low)
        abar = 1 / (1 + torch.exp(2 * log_sigma))
        return ((x.double() - abar.sqrt() * self.target) / (1 - abar).sqrt()).float()


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("num_inference_steps", [2, 10])
def test_every_sampler_returns_the_one_image_an_exact_denoiser_knows(name, num_inference_steps):
    # Wiring check of the generic loop (init_noise_sigma, scale_model_input, the timesteps handed to the model):
    # if the network predicted the noise exactly, every sampler must land on the data, whatever its step count.
    target = torch.linspace(-0.9, 0.9, 28 * 28, dtype=torch.float64).reshape(1, 1, 28, 28)
    scheduler = make_scheduler(name)
    oracle = OracleDenoiser(target, scheduler.alphas_cumprod)
    samples, _ = sample_with_scheduler(oracle, scheduler, 2, num_inference_steps, torch.Generator().manual_seed(0),
                                       progress=False)
    torch.testing.assert_close(samples, target.float().expand(2, -1, -1, -1), atol=2e-3, rtol=0)


EXPECTED_CLASSES = {
    "ddpm": "DDPMScheduler", "ddim": "DDIMScheduler", "dpm_solver++": "DPMSolverMultistepScheduler",
    "euler_karras": "EulerDiscreteScheduler", "heun_karras": "HeunDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_make_scheduler_builds_the_named_scheduler_for_our_model(name):
    scheduler = make_scheduler(name)
    assert type(scheduler).__name__ == EXPECTED_CLASSES[name]
    assert scheduler.config.beta_schedule == "squaredcos_cap_v2"
    assert scheduler.config.prediction_type == "epsilon"
    assert scheduler.config.num_train_timesteps == 1000
    torch.testing.assert_close(scheduler.alphas_cumprod, ddim_scheduler().alphas_cumprod)
    if name == "dpm_solver++":
        assert scheduler.config.algorithm_type == "dpmsolver++" and scheduler.config.solver_order == 2
    if name in ("euler_karras", "heun_karras"):
        assert scheduler.config.use_karras_sigmas


@pytest.mark.parametrize("name", SAMPLERS)
def test_clip_setting_keeps_x0_estimates_in_the_image_range(name):
    clipped, unclipped = make_scheduler(name).config, make_scheduler(name, clip=False).config
    if name in ("ddpm", "ddim", "heun_karras"):
        assert clipped.clip_sample and not unclipped.clip_sample
    elif name in ("dpm_solver++", "unipc"):
        assert clipped.thresholding and clipped.sample_max_value == 1.0 and not unclipped.thresholding
    else:  # Euler has no clipping option
        assert "clip_sample" not in clipped and "thresholding" not in clipped


EXPECTED_NFE = {name: (lambda n: n) for name in SAMPLERS} | {"heun_karras": lambda n: 2 * n - 1}


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("num_inference_steps", [2, 5])
def test_every_sampler_returns_finite_images_and_counts_its_model_calls(name, num_inference_steps):
    model = CountingModel(tiny_model())
    samples, nfe = sample_with_scheduler(model, make_scheduler(name), 3, num_inference_steps,
                                         torch.Generator().manual_seed(0), progress=False)
    assert samples.shape == (3, 1, 28, 28)
    assert torch.isfinite(samples).all()
    assert samples.min() >= -1 and samples.max() <= 1
    assert nfe == model.calls == EXPECTED_NFE[name](num_inference_steps)


@pytest.mark.parametrize("name", SAMPLERS)
def test_same_generator_gives_the_same_samples(name):
    model = tiny_model()
    first, _ = sample_with_scheduler(model, make_scheduler(name), 2, 3, torch.Generator().manual_seed(4), progress=False)
    again, _ = sample_with_scheduler(model, make_scheduler(name), 2, 3, torch.Generator().manual_seed(4), progress=False)
    other, _ = sample_with_scheduler(model, make_scheduler(name), 2, 3, torch.Generator().manual_seed(5), progress=False)
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    assert not torch.allclose(first, other)


@pytest.mark.parametrize("name", ["dpm_solver++", "euler_karras", "heun_karras", "unipc"])
def test_noise_levels_are_the_sigmas_the_scheduler_steps_through(name):
    # these schedulers keep their noise levels (plus a final 0); noise_levels recovers them from the timesteps,
    # fractional ones included (Karras levels), to float32 rounding of the timesteps
    scheduler = make_scheduler(name)
    scheduler.set_timesteps(10)
    levels = noise_levels(scheduler.timesteps, ddim_scheduler().alphas_cumprod)
    torch.testing.assert_close(levels, scheduler.sigmas[:len(levels)].double(), rtol=1e-3, atol=0)


def test_noise_levels_follow_the_formula_at_integer_timesteps():
    alpha_bar = alphas_cumprod(make_betas("cosine", 1000))
    steps = [999, 500, 0]
    expected = ((1 - alpha_bar[steps]) / alpha_bar[steps]).sqrt().double()
    torch.testing.assert_close(noise_levels(steps, alpha_bar), expected)
    between = noise_levels([499.5], alpha_bar)  # half way in log sigma
    assert torch.isclose(between, noise_levels([499], alpha_bar).sqrt() * noise_levels([500], alpha_bar).sqrt())
    with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 999\]"):
        noise_levels([1000], alpha_bar)
    with pytest.raises(TypeError, match="timesteps must be a tensor or a list"):
        noise_levels(5, alpha_bar)


def test_overrides_reach_the_scheduler():
    assert make_scheduler("euler_karras", sigma_max=80.0).config.sigma_max == 80.0
    assert make_scheduler("ddim", timestep_spacing="leading").config.timestep_spacing == "leading"


def test_bad_input_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match=r"name must be one of .*'ddim'"):
        make_scheduler("plms")
    with pytest.raises(ValueError, match="num_timesteps"):
        make_scheduler("ddim", num_train_timesteps=1)
    model, scheduler = tiny_model(), make_scheduler("ddim")
    for bad in (0, 1001, 2.5, "10", True):
        with pytest.raises((ValueError, TypeError), match=r"num_inference_steps must be an integer in \[1, 1000\]"):
            sample_with_scheduler(model, scheduler, 2, bad, progress=False)
    with pytest.raises(ValueError, match="num_images"):
        sample_with_scheduler(model, scheduler, 0, 5, progress=False)
    with pytest.raises(ValueError, match="at least 2"):
        sample_with_scheduler(model, make_scheduler("euler_karras"), 2, 1, progress=False)
    with pytest.raises(ValueError, match=r"num_inference_steps must be an integer in \[1, 1000\]"):
        sample_ddim(model, 2, ddim_scheduler().alphas_cumprod, 0, progress=False)
    with pytest.raises(ValueError, match="spacing must be one of"):
        sampling_timesteps(1000, 10, "linspace")
    alpha_bar = ddim_scheduler().alphas_cumprod
    x = torch.zeros(1, 1, 28, 28)
    with pytest.raises(ValueError, match=r"eta must be a number in \[0, 1\]"):
        ddim_step(x, 500, 400, x, alpha_bar, eta=1.5, noise=x)
    with pytest.raises(ValueError, match="noise is required"):
        ddim_step(x, 500, 400, x, alpha_bar, eta=0.5)
    ddim_step(x, 99, -1, x, alpha_bar, eta=0.5)  # the last step needs no noise: sigma = 0 there


def test_sample_in_batches_gives_the_samples_of_one_seeded_generator_bit_for_bit():
    """The measuring scripts' samples for a seed: the batches of the inline loop they replaced (a
    stochastic sampler, a smaller last batch), one after the other from one seeded generator."""
    model = tiny_model()

    def draw(count, generator):
        scheduler = make_scheduler("ddpm")
        return sample_with_scheduler(model, scheduler, count, 2, generator, progress=False)

    images, nfe = sample_in_batches(draw, 5, 2, seed=3)
    generator = torch.Generator().manual_seed(3)
    batches = []
    for start in range(0, 5, 2):
        batch, _ = draw(min(2, 5 - start), generator)
        batches.append(batch)
    assert nfe == 2 and images.shape == (5, 1, 28, 28) and torch.equal(images, torch.cat(batches))
    with pytest.raises(ValueError, match="batch_size"):
        sample_in_batches(draw, 5, 0, seed=3)
