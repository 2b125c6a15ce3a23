"""Flow matching written by hand (course_utils.flow), against diffusers' FlowMatchEulerDiscreteScheduler."""
import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler

from course_utils.ddpm import ddpm_step
from course_utils.flow import (TIME_SCALE, training_sigmas, ancestral_step, ddpm_velocity, euler_step, flow_coordinates, flow_loss, flow_path,
                               flow_sigmas, flow_velocity_target, ideal_velocity, integrate, number_of_evaluations,
                               sample_flow, shift_sigmas, steps_for_evaluations, straightness)
from course_utils.samplers import ddim_step
from course_utils.unet import TinyUNet


def batch(seed=0, shape=(4, 1, 28, 28)):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator) * 2 - 1, torch.randn(shape, generator=generator)


class LinearField(torch.nn.Module):
    """u(x, t) = c(t) x + d(t): a stand-in network whose output depends on both inputs."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x, timesteps):
        return self.weight * (1 + timesteps[:, None, None, None] / TIME_SCALE) * x - 0.1


def test_path_runs_from_image_to_noise_with_constant_velocity():
    x0, noise = batch()
    torch.testing.assert_close(flow_path(x0, noise, 0.0), x0)
    torch.testing.assert_close(flow_path(x0, noise, 1.0), noise)
    step = 1e-3
    finite_difference = (flow_path(x0, noise, 0.3 + step) - flow_path(x0, noise, 0.3)) / step
    torch.testing.assert_close(finite_difference, flow_velocity_target(x0, noise), atol=2e-3, rtol=0)


def test_path_takes_one_sigma_per_image():
    x0, noise = batch()
    sigma = torch.tensor([0.0, 0.25, 0.5, 1.0])
    x = flow_path(x0, noise, sigma)
    for i in range(4):
        torch.testing.assert_close(x[i], (1 - sigma[i]) * x0[i] + sigma[i] * noise[i])


@pytest.mark.parametrize("shift", [1.0, 3.0])
@pytest.mark.parametrize("num_steps", [1, 5, 20])
def test_sigmas_equal_diffusers_given_the_same_grid(num_steps, shift):
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(sigmas=torch.linspace(1, 0, num_steps + 1)[:-1].tolist())
    torch.testing.assert_close(flow_sigmas(num_steps, shift), scheduler.sigmas, atol=1e-6, rtol=0)
    torch.testing.assert_close(scheduler.timesteps, TIME_SCALE * flow_sigmas(num_steps, shift)[:-1], atol=1e-3, rtol=0)


def test_shift_moves_the_grid_towards_noise_and_keeps_the_ends():
    sigmas = torch.linspace(0, 1, 11)
    shifted = shift_sigmas(sigmas, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1
    assert torch.all(shifted[1:-1] > sigmas[1:-1])
    torch.testing.assert_close(shift_sigmas(sigmas, 1.0), sigmas)
    with pytest.raises(ValueError, match="shift"):
        shift_sigmas(sigmas, 0.0)


def test_euler_step_equals_diffusers_step():
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(sigmas=[1.0, 0.6, 0.2])
    x, velocity = batch(1)
    for i, timestep in enumerate(scheduler.timesteps):
        expected = scheduler.step(velocity, timestep, x).prev_sample
        ours = euler_step(velocity, scheduler.sigmas[i].item(), scheduler.sigmas[i + 1].item(), x)
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-6)
        x = expected


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_sampling_loop_equals_a_loop_over_the_diffusers_scheduler(shift):
    model, num_steps = LinearField(), 7
    ours = sample_flow(model, 3, num_steps, torch.Generator().manual_seed(5), shift=shift, progress=False)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(sigmas=torch.linspace(1, 0, num_steps + 1)[:-1].tolist())
    x = torch.randn((3, 1, 28, 28), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        for timestep in scheduler.timesteps:
            x = scheduler.step(model(x, timestep.expand(3)), timestep, x).prev_sample
    torch.testing.assert_close(ours, x, atol=1e-5, rtol=1e-5)


def test_heun_is_exact_where_the_velocity_is_linear_in_sigma_but_on_its_last_euler_step():
    """dx/dsigma = sigma has the solution x(0) = x(1) - 1/2. Each Euler step of size h = 1/4 overshoots by
    h^2 / 2; Heun's trapezoid is exact, except on its last step, an Euler step (no evaluation at sigma = 0)."""

    class RampField(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x, timesteps):
            return torch.zeros_like(x) + timesteps[:, None, None, None] / TIME_SCALE

    generator = torch.Generator().manual_seed(0)
    start = torch.randn((2, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    heun = sample_flow(RampField(), 2, 4, generator, sampler="heun", progress=False)
    euler = sample_flow(RampField(), 2, 4, torch.Generator().manual_seed(0), progress=False)
    step_error = 0.25 ** 2 / 2
    torch.testing.assert_close(heun - (start - 0.5), torch.full_like(start, -step_error), atol=1e-6, rtol=0)
    torch.testing.assert_close(euler - (start - 0.5), torch.full_like(start, -4 * step_error), atol=1e-6, rtol=0)


def test_number_of_evaluations_counts_the_calls():
    calls = []

    class Counting(LinearField):
        def forward(self, x, timesteps):
            calls.append(1)
            return super().forward(x, timesteps)

    for sampler, steps in [("euler", 6), ("heun", 6), ("heun", 1), ("ancestral", 6)]:
        calls.clear()
        sample_flow(Counting(), 1, steps, torch.Generator().manual_seed(0), sampler=sampler, progress=False)
        assert len(calls) == number_of_evaluations(steps, sampler)


def test_steps_for_evaluations_inverts_number_of_evaluations():
    for sampler in ("euler", "heun", "ancestral"):
        for steps in range(1, 30):
            assert steps_for_evaluations(number_of_evaluations(steps, sampler), sampler) == steps
    assert steps_for_evaluations(20, "heun") == 10 and number_of_evaluations(10, "heun") == 19  # an even budget
    with pytest.raises(ValueError, match="nfe"):
        steps_for_evaluations(0, "euler")


def test_integrate_carries_a_given_batch_from_any_level_down_the_grid():
    """From x at sigma = 0.5, two Euler steps of u = -0.1 (a constant velocity) move x by 0.05; the trajectory holds
    the input and each step's x."""
    class Constant(torch.nn.Module):
        def forward(self, x, timesteps):
            return torch.full_like(x, -0.1)

    x = torch.zeros(3, 2)
    end, path = integrate(Constant(), x, [0.5, 0.25, 0.0], return_trajectory=True)
    torch.testing.assert_close(end, torch.full((3, 2), 0.05))
    assert len(path) == 3 and torch.equal(path[0], x)
    for bad in ([0.5], [0.0, 0.5], [1.5, 0.0], None, "1, 0"):
        with pytest.raises((TypeError, ValueError), match="sigmas"):
            integrate(Constant(), x, bad)


def test_flow_loss_is_zero_for_the_true_velocity_and_matches_by_hand():
    x0, _ = batch(2)
    generator = torch.Generator().manual_seed(3)
    sigma = torch.rand((4,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    model = LinearField()
    expected = torch.mean((model(flow_path(x0, noise, sigma), TIME_SCALE * sigma) - (noise - x0)) ** 2)
    torch.testing.assert_close(flow_loss(model, x0, torch.Generator().manual_seed(3)), expected)


def test_logit_normal_sigmas_are_a_sigmoid_of_a_standard_normal_draw():
    """SD3's logit-normal sampling: logit(sigma) ~ N(0, 1), drawn from the loss's generator."""
    sigma = training_sigmas(20000, torch.Generator().manual_seed(0), time_sampling="logit-normal")
    logit = torch.log(sigma / (1 - sigma))
    assert abs(logit.mean().item()) < 0.03 and abs(logit.std().item() - 1) < 0.03
    x0, _ = batch(2)
    generator = torch.Generator().manual_seed(3)
    sigma = torch.sigmoid(torch.randn((4,), generator=generator))
    noise = torch.randn(x0.shape, generator=generator)
    model = LinearField()
    expected = torch.mean((model(flow_path(x0, noise, sigma), TIME_SCALE * sigma) - (noise - x0)) ** 2)
    loss = flow_loss(model, x0, torch.Generator().manual_seed(3), time_sampling="logit-normal")
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="time_sampling"):
        flow_loss(model, x0, time_sampling="lognormal")


def test_straightness_is_one_for_a_line_and_more_for_a_bend():
    start, end = torch.zeros(1, 4), torch.ones(1, 4)
    line = [start + k / 4 * (end - start) for k in range(5)]
    assert straightness(line).item() == pytest.approx(1.0)
    bend = [start, torch.tensor([[1.0, 1.0, 0.0, 0.0]]), end]
    assert straightness(bend).item() == pytest.approx(2 * 2 ** 0.5 / 2)
    with pytest.raises(ValueError, match="trajectory"):
        straightness([start])


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ddim_is_the_euler_method_on_the_straight_path(prediction_type):
    """A DDIM step (eta = 0, no clipping) is exactly an Euler step of u = eps_hat - x0_hat in flow coordinates."""
    alpha_bar = DDIMScheduler(beta_schedule="squaredcos_cap_v2").alphas_cumprod.double()
    x_t, output = (tensor.double() for tensor in batch(4))
    for t, prev_t in [(999, 800), (600, 300), (100, 20)]:
        ddim = ddim_step(output, t, prev_t, x_t, alpha_bar, clip=False, prediction_type=prediction_type)
        y, sigma = flow_coordinates(x_t, alpha_bar[t])
        y_prev, sigma_prev = flow_coordinates(ddim, alpha_bar[prev_t])
        velocity = ddpm_velocity(output, x_t, alpha_bar[t], prediction_type)
        torch.testing.assert_close(euler_step(velocity, sigma, sigma_prev, y), y_prev, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("clip_range", [None, 1.0])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ancestral_step_is_ddpms_step_in_flow_coordinates(prediction_type, clip_range):
    """The flow sampler's stochastic step, written for the straight path, is DDPM's ancestral step (the
    posterior mean and variance of Ho et al. eqs. 6-7) moved into flow coordinates, noise draw for noise draw."""
    alpha_bar = DDIMScheduler(beta_schedule="squaredcos_cap_v2").alphas_cumprod.double()
    x_t, output = (tensor.double() for tensor in batch(5))
    noise = batch(6)[1].double()
    for t, prev_t in [(990, 800), (600, 300), (100, 20)]:
        ddpm = ddpm_step(output, t, prev_t, x_t, alpha_bar, noise, clip_range, prediction_type)
        y, sigma = flow_coordinates(x_t, alpha_bar[t])
        y_prev, sigma_prev = flow_coordinates(ddpm, alpha_bar[prev_t])
        velocity = ddpm_velocity(output, x_t, alpha_bar[t], prediction_type)
        stepped = ancestral_step(velocity, sigma.item(), sigma_prev.item(), y, noise, clip_range)
        torch.testing.assert_close(stepped, y_prev, atol=1e-9, rtol=1e-9)


def test_ancestral_step_refuses_a_level_per_image():
    x = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="sigma must hold one value"):
        ancestral_step(x, torch.tensor([0.5, 0.6]), 0.2, x, x)
    with pytest.raises(ValueError, match="sigma_next must hold one value"):
        ancestral_step(x, 0.5, torch.tensor([0.2, 0.1]), x, x)


def test_ancestral_sampling_ends_on_its_clipped_guess_and_draws_fresh_noise():
    model = LinearField()
    first = sample_flow(model, 3, 5, torch.Generator().manual_seed(0), sampler="ancestral", progress=False)
    again = sample_flow(model, 3, 5, torch.Generator().manual_seed(0), sampler="ancestral", progress=False)
    other = sample_flow(model, 3, 5, torch.Generator().manual_seed(1), sampler="ancestral", progress=False)
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    assert first.abs().max() <= 1 and not torch.equal(first, other)
    x = torch.full((1, 1, 2, 2), 0.5)
    assert torch.equal(ancestral_step(torch.full_like(x, -10.0), 0.2, 0.0, x, None), torch.ones_like(x))
    with pytest.raises(ValueError, match="noise is required"):
        ancestral_step(torch.zeros_like(x), 0.5, 0.2, x, None)
    with pytest.raises(ValueError, match="sigma_next must be below sigma"):
        ancestral_step(torch.zeros_like(x), 0.5, 0.5, x, torch.zeros_like(x))


def test_ddpm_sigma_is_the_straight_paths_level_of_a_ddpm_level():
    from course_utils.flow import ddpm_sigma

    alpha_bar = DDIMScheduler(beta_schedule="squaredcos_cap_v2").alphas_cumprod.double()
    for t in (0, 300, 999):
        torch.testing.assert_close(ddpm_sigma(alpha_bar[t]), flow_coordinates(batch(1)[0].double(), alpha_bar[t])[1])
        a, s = alpha_bar[t].sqrt(), (1 - alpha_bar[t]).sqrt()
        torch.testing.assert_close(ddpm_sigma(alpha_bar[t]), s / (a + s))
    assert ddpm_sigma(1.0).item() == 0.0 and ddpm_sigma(0.0).item() == 1.0 and ddpm_sigma(0.5).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="abar_t"):
        ddpm_sigma(1.5)
    with pytest.raises(TypeError, match="abar_t"):
        ddpm_sigma(torch.tensor(999))


def test_v_prediction_velocity_formula():
    alpha_bar = torch.tensor(0.3, dtype=torch.float64)
    x_t, v = (tensor.double() for tensor in batch(5))
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    torch.testing.assert_close(ddpm_velocity(v, x_t, alpha_bar, "v_prediction"), (s - a) * x_t + (a + s) * v)


def test_sample_flow_refuses_bad_settings():
    model = TinyUNet((8, 16))
    with pytest.raises(ValueError, match="sampler"):
        sample_flow(model, 1, 2, sampler="rk4", progress=False)
    with pytest.raises(ValueError, match="num_steps"):
        sample_flow(model, 1, 0, progress=False)
    with pytest.raises(ValueError, match="num_images"):
        sample_flow(model, 0, 2, progress=False)


def test_ideal_velocity_of_one_point_is_the_straight_line_to_it():
    data = torch.tensor([[1.0, -2.0]])
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ideal_velocity(x, 0.4, data), (x - data) / 0.4)


def test_ideal_velocity_takes_one_level_per_row():
    data = torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.0, 1.0]])
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    sigmas = torch.tensor([0.9, 0.5, 0.2, 0.05])
    rows = torch.cat([ideal_velocity(x[i:i + 1], sigma, data) for i, sigma in enumerate(sigmas.tolist())])
    torch.testing.assert_close(ideal_velocity(x, sigmas, data), rows)
    with pytest.raises(ValueError, match="sigma"):
        ideal_velocity(x, torch.tensor([0.9, 0.5, 0.2, 0.0]), data)  # singular at 0
    with pytest.raises(ValueError, match="sigma"):
        ideal_velocity(x, sigmas[:3], data)


def test_ideal_velocity_is_the_mean_conditional_velocity():
    """Monte Carlo: among pairs (x_0, eps) whose x_sigma lands near x, the mean of eps - x_0 is u(x, sigma)."""
    data, sigma, x = torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), 0.5, torch.tensor([[0.2, 0.1]])
    generator = torch.Generator().manual_seed(0)
    x0 = data[torch.randint(0, 2, (2_000_000,), generator=generator)]
    noise = torch.randn(x0.shape, generator=generator)
    near = (flow_path(x0, noise, sigma) - x).norm(dim=1) < 0.05
    monte_carlo = (noise - x0)[near].mean(dim=0)
    torch.testing.assert_close(ideal_velocity(x, sigma, data)[0], monte_carlo, atol=0.05, rtol=0)


def test_following_the_ideal_velocity_ends_on_a_data_point():
    data = torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.0, 1.0]])
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    sigmas = flow_sigmas(400).tolist()
    for sigma, sigma_next in zip(sigmas[:-2], sigmas[1:-1]):
        x = euler_step(ideal_velocity(x, sigma, data), sigma, sigma_next, x)
    distance_to_nearest = torch.cdist(x, data).min(dim=1).values
    assert distance_to_nearest.max() < 0.02
    with pytest.raises(ValueError, match="sigma"):
        ideal_velocity(x, 0.0, data)


def test_flow_path_refuses_mismatched_shapes_and_sigma_outside_0_1():
    x0, noise = batch()
    with pytest.raises(ValueError, match="same shape"):
        flow_path(x0, noise[:2], 0.5)
    with pytest.raises(ValueError, match="sigma"):
        flow_path(x0, noise, 1.5)
    with pytest.raises(ValueError, match="sigma"):
        flow_path(x0, noise, torch.tensor([0.1, 0.2, -0.1, 0.3]))


def test_velocity_straightness_is_zero_only_for_a_line_at_constant_speed():
    from course_utils.flow import velocity_straightness

    start, end, sigmas = torch.zeros(1, 2), torch.tensor([[2.0, 0.0]]), [1.0, 0.5, 0.0]
    line = [start, (start + end) / 2, end]
    assert velocity_straightness(line, sigmas).item() == pytest.approx(0.0, abs=1e-7)
    # the same straight line, three quarters of it in the first half: length over chord cannot see it
    uneven = [start, 0.75 * end, end]
    assert straightness(uneven).item() == pytest.approx(1.0)
    assert velocity_straightness(uneven, sigmas).item() == pytest.approx(0.25)  # (0.5 + 0.5) / 4
    bend = [start, torch.tensor([[1.0, 1.0]]), end]
    assert velocity_straightness(bend, sigmas).item() == pytest.approx(1.0)  # (0.5 * 4 + 0.5 * 4) / 4
    with pytest.raises(ValueError, match="sigmas must be 3 distinct levels"):
        velocity_straightness(line, [1.0, 0.0])
