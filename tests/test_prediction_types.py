"""The three prediction targets (eps, v, x_0) and their conversions, written by hand, against diffusers."""
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from course_utils.ddpm import PREDICTION_TYPES, ddpm_loss, ddpm_step, predicted_x0_and_eps, training_target
from course_utils.samplers import ddim_step

COSINE = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")


def batch(seed=0, shape=(4, 1, 28, 28)):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator) * 2 - 1, torch.randn(shape, generator=generator)


def test_velocity_equals_diffusers_get_velocity():
    scheduler = DDPMScheduler(**COSINE, prediction_type="v_prediction")
    x0, noise = batch()
    timesteps = torch.tensor([0, 250, 700, 999])
    expected = scheduler.get_velocity(x0, noise, timesteps)
    ours = training_target(x0, noise, scheduler.alphas_cumprod[timesteps], "v_prediction")
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("t", [0, 10, 500, 999])
def test_the_exact_target_recovers_x0_and_eps(prediction_type, t):
    """Feed each conversion the true target: it must give back the x_0 and eps that made x_t."""
    alpha_bar = DDPMScheduler(**COSINE).alphas_cumprod.double()
    x0, noise = (tensor.double() for tensor in batch(1))
    x_t = alpha_bar[t].sqrt() * x0 + (1 - alpha_bar[t]).sqrt() * noise
    target = training_target(x0, noise, alpha_bar[t], prediction_type)
    x0_hat, eps_hat = predicted_x0_and_eps(target, x_t, alpha_bar[t], prediction_type)
    torch.testing.assert_close(x0_hat, x0, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(eps_hat, noise, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("t", [980, 500, 20])
def test_ddpm_step_equals_diffusers_for_every_target(prediction_type, t):
    scheduler = DDPMScheduler(**COSINE, prediction_type=prediction_type, clip_sample=True, variance_type="fixed_small")
    scheduler.set_timesteps(50)
    x_t, output = batch(2)
    expected = scheduler.step(output, t, x_t, generator=torch.Generator().manual_seed(t)).prev_sample
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(t))
    ours = ddpm_step(output, t, t - 20, x_t, scheduler.alphas_cumprod, noise, prediction_type=prediction_type)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("clip", [True, False])
def test_ddim_step_equals_diffusers_for_every_target(prediction_type, clip):
    scheduler = DDIMScheduler(**COSINE, prediction_type=prediction_type, clip_sample=clip, set_alpha_to_one=True)
    scheduler.set_timesteps(10)
    x_t, output = batch(3)
    for t in (900, 400, 0):
        expected = scheduler.step(output, t, x_t, eta=0.0).prev_sample
        ours = ddim_step(output, t, t - 100, x_t, scheduler.alphas_cumprod, clip=clip, prediction_type=prediction_type)
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_a_wrong_target_is_caught():
    """The step tests can fail: reading a v output as eps gives a different step."""
    scheduler = DDIMScheduler(**COSINE, prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=True)
    scheduler.set_timesteps(10)
    x_t, output = batch(4)
    expected = scheduler.step(output, 500, x_t).prev_sample
    wrong = ddim_step(output, 500, 400, x_t, scheduler.alphas_cumprod, clip=False, prediction_type="epsilon")
    assert not torch.allclose(wrong, expected, atol=1e-3)


def test_loss_regresses_the_asked_target():
    """A 'model' that outputs the exact target of the loss's own draw has zero loss, and only for that target."""
    x0, _ = batch(5)
    alpha_bar = DDPMScheduler(**COSINE).alphas_cumprod

    class Oracle(torch.nn.Module):
        def __init__(self, prediction_type):
            super().__init__()
            self.prediction_type = prediction_type

        def forward(self, x_t, timesteps):
            draw = torch.Generator().manual_seed(7)
            torch.randint(0, 1000, (len(x_t),), generator=draw)
            noise = torch.randn(x_t.shape, generator=draw)
            return training_target(x0, noise, alpha_bar[timesteps], self.prediction_type)

    for prediction_type in PREDICTION_TYPES:
        for model_type in PREDICTION_TYPES:
            loss = ddpm_loss(Oracle(model_type), x0, alpha_bar, torch.Generator().manual_seed(7), prediction_type)
            assert (loss.item() < 1e-10) == (model_type == prediction_type), (prediction_type, model_type)


def test_an_unknown_target_is_refused_by_name():
    with pytest.raises(ValueError, match="prediction_type must be one of"):
        training_target(*batch(), torch.tensor(0.5), "velocity")
