"""course_utils.schedules against diffusers.DDPMScheduler, the reference implementation."""
import inspect
import math

import pytest
import torch
from diffusers import DDPMScheduler

from course_utils import schedules

TIMESTEPS = (50, 1000)


def reference_scheduler(schedule: str, num_timesteps: int) -> DDPMScheduler:
    """The diffusers scheduler for ``schedule``, with the same beta_start/beta_end as course_utils.

    DDPMScheduler defaults to beta_start=1e-4, beta_end=0.02 for every schedule; course_utils'
    scaled_linear uses Stable Diffusion's 0.00085 and 0.012, as SD's scheduler config does.
    """
    parameters = inspect.signature(schedules.BETA_FUNCTIONS[schedule]).parameters
    betas_range = {key: parameters[key].default for key in ("beta_start", "beta_end") if key in parameters}
    return DDPMScheduler(
        num_train_timesteps=num_timesteps, beta_schedule=schedules.DIFFUSERS_NAMES[schedule], **betas_range
    )


@pytest.mark.parametrize("num_timesteps", TIMESTEPS)
@pytest.mark.parametrize("schedule", schedules.SCHEDULES)
def test_alphas_cumprod_matches_diffusers(schedule, num_timesteps):
    ours = schedules.alphas_cumprod(schedules.make_betas(schedule, num_timesteps))
    reference = reference_scheduler(schedule, num_timesteps).alphas_cumprod.double()
    assert ours.shape == (num_timesteps,)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("num_timesteps", TIMESTEPS)
@pytest.mark.parametrize("schedule", schedules.SCHEDULES)
def test_betas_match_diffusers(schedule, num_timesteps):
    ours = schedules.make_betas(schedule, num_timesteps)
    reference = reference_scheduler(schedule, num_timesteps).betas.double()
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_comparison_catches_wrong_formulas():
    """The 1e-6 tolerance is tight enough to catch plausible mistakes (so the tests above can fail)."""
    reference = reference_scheduler("linear", 1000).alphas_cumprod.double()
    betas = schedules.linear_betas(1000)
    off_by_one = torch.cumprod(1 - torch.cat([betas[:1], betas[:-1]]), dim=0)
    assert (off_by_one - reference).abs().max() > 1e-6
    without_cumprod = 1 - betas
    assert (without_cumprod - reference).abs().max() > 1e-6

    reference = reference_scheduler("cosine", 1000).alphas_cumprod.double()
    fractions = torch.arange(1, 1001, dtype=torch.float64) / 1000
    no_offset = torch.cos(fractions * math.pi / 2) ** 2  # s = 0 instead of 0.008
    assert (no_offset - reference).abs().max() > 1e-6


@pytest.mark.parametrize("num_timesteps", TIMESTEPS)
@pytest.mark.parametrize("schedule", schedules.SCHEDULES)
def test_q_sample_matches_add_noise(schedule, num_timesteps):
    """The formula: q_sample with the scheduler's own alpha_bar gives add_noise's result."""
    scheduler = reference_scheduler(schedule, num_timesteps)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(32, 1, 28, 28, generator=generator) * 2 - 1
    noise = torch.randn(x0.shape, generator=generator)
    timesteps = torch.linspace(0, num_timesteps - 1, 32).round().long()
    ours = schedules.q_sample(x0, timesteps, noise, scheduler.alphas_cumprod)
    torch.testing.assert_close(ours, scheduler.add_noise(x0, noise, timesteps), rtol=0, atol=1e-6)


@pytest.mark.parametrize("num_timesteps", TIMESTEPS)
@pytest.mark.parametrize("schedule", schedules.SCHEDULES)
def test_q_sample_with_course_schedule_matches_add_noise(schedule, num_timesteps):
    """End to end, with course_utils' own float64 alpha_bar.

    diffusers keeps alpha_bar in float32, so 1 - alpha_bar near t = 0 (about 1e-4) carries a relative
    rounding error of about 1e-3 and sqrt(1 - alpha_bar) one of about 5e-4: the results agree to a few
    1e-6, not 1e-6. The tolerance allows that and still catches any wrong formula (errors >= 1e-3).
    """
    scheduler = reference_scheduler(schedule, num_timesteps)
    generator = torch.Generator().manual_seed(1)
    x0 = (torch.rand(32, 1, 28, 28, generator=generator) * 2 - 1).double()
    noise = torch.randn(x0.shape, generator=generator).double()
    timesteps = torch.linspace(0, num_timesteps - 1, 32).round().long()
    alpha_bar = schedules.alphas_cumprod(schedules.make_betas(schedule, num_timesteps))
    ours = schedules.q_sample(x0, timesteps, noise, alpha_bar)
    torch.testing.assert_close(ours, scheduler.add_noise(x0, noise, timesteps), rtol=0, atol=2e-5)


def test_q_sample_closed_form_values():
    alpha_bar = torch.tensor([0.81, 0.36, 0.0], dtype=torch.float64)
    x0 = torch.ones(3, 1, 2, 2, dtype=torch.float64)
    noise = torch.full_like(x0, 2.0)
    x_t = schedules.q_sample(x0, torch.tensor([0, 1, 2]), noise, alpha_bar)
    expected = torch.tensor([0.9 + 2 * math.sqrt(0.19), 0.6 + 2 * 0.8, 2.0], dtype=torch.float64)
    torch.testing.assert_close(x_t[:, 0, 0, 0], expected, rtol=0, atol=1e-12)


def test_q_sample_matches_the_step_by_step_chain():
    """Running x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps t times gives mean sqrt(abar) x0, std sqrt(1 - abar)."""
    generator = torch.Generator().manual_seed(0)
    betas = schedules.make_betas("linear", 200)
    alpha_bar = schedules.alphas_cumprod(betas)
    x0 = torch.full((20_000,), 0.7, dtype=torch.float64)
    x = x0.clone()
    for beta in betas.tolist():
        x = math.sqrt(1 - beta) * x + math.sqrt(beta) * torch.randn(x.shape, generator=generator, dtype=torch.float64)
    assert abs(x.mean().item() - 0.7 * alpha_bar[-1].sqrt().item()) < 0.02
    assert abs(x.std().item() - (1 - alpha_bar[-1]).sqrt().item()) < 0.02


@pytest.mark.parametrize("num_timesteps", TIMESTEPS)
@pytest.mark.parametrize("schedule", schedules.SCHEDULES)
def test_snr_strictly_decreasing(schedule, num_timesteps):
    snr = schedules.snr(schedules.alphas_cumprod(schedules.make_betas(schedule, num_timesteps)))
    assert torch.isfinite(snr).all()
    assert (snr > 0).all()
    assert (snr.diff() < 0).all()


def test_snr_formula():
    torch.testing.assert_close(
        schedules.snr(torch.tensor([0.5, 0.8, 0.2], dtype=torch.float64)),
        torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64),
    )


@pytest.mark.parametrize("schedule", schedules.SCHEDULES)
def test_betas_in_unit_interval(schedule):
    betas = schedules.make_betas(schedule, 1000)
    assert ((betas > 0) & (betas < 1)).all()


@pytest.mark.parametrize("bad", [0, 1, -5, 2.5, "1000", 100_001, True])
def test_bad_num_timesteps_raises(bad):
    """Out of range: ValueError; not an integer (a bool is not one): TypeError. Both name the parameter."""
    with pytest.raises((ValueError, TypeError), match=r"num_timesteps must be an integer in \[2, 100000\]"):
        schedules.make_betas("linear", bad)
    with pytest.raises((ValueError, TypeError), match="num_timesteps"):
        schedules.cosine_betas(bad)


@pytest.mark.parametrize("offset", [-0.5, 0, 1.5, float("nan")])
def test_cosine_offset_out_of_range_is_refused(offset):
    with pytest.raises(ValueError, match=r"offset must be a number in \(0, 1\]"):
        schedules.cosine_betas(1000, offset=offset)


def test_q_sample_refuses_integer_images_and_fractional_timesteps():
    alpha_bar = schedules.alphas_cumprod(schedules.cosine_betas(1000)).float()
    noise = torch.randn(2, 1, 28, 28)
    with pytest.raises(TypeError, match="x0 must be a floating-point tensor"):
        schedules.q_sample(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), torch.tensor([1, 2]), noise, alpha_bar)
    with pytest.raises(TypeError, match="timesteps must be integers"):
        schedules.q_sample(torch.zeros(2, 1, 28, 28), torch.tensor([1.5, 2.0]), noise, alpha_bar)
    schedules.q_sample(torch.zeros(2, 1, 28, 28), [1, 2], noise, alpha_bar)  # a list of ints is fine


def test_bad_schedule_name_raises():
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedules.make_betas("squaredcos_cap_v2")  # the diffusers name is not a course name


@pytest.mark.parametrize("function", [schedules.linear_betas, schedules.scaled_linear_betas, schedules.sigmoid_betas])
@pytest.mark.parametrize("start, end", [(0.02, 0.01), (0.0, 0.01), (0.01, 1.0)])
def test_bad_beta_range_raises(function, start, end):
    with pytest.raises(ValueError, match="beta_start"):
        function(100, beta_start=start, beta_end=end)


def test_q_sample_bad_timesteps_raise():
    alpha_bar = schedules.alphas_cumprod(schedules.make_betas("linear", 10))
    x0 = torch.zeros(2, 1, 4, 4)
    for bad in ([0, 10], [-1, 3]):
        with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 9\]"):
            schedules.q_sample(x0, torch.tensor(bad), torch.zeros_like(x0), alpha_bar)


def test_q_sample_bad_noise_shape_raises():
    alpha_bar = schedules.alphas_cumprod(schedules.make_betas("linear", 10))
    x0 = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="noise must have the shape of x0"):
        schedules.q_sample(x0, torch.tensor([1, 2]), torch.zeros(2, 1, 4, 5), alpha_bar)
