"""Reflow (course_utils.reflow and its three scripts): the pairs are the flow ODE's ends, the loss is the straight-line
loss on given pairs, the U-shaped levels follow Lee et al.'s density, a reflowed 2-D toy follows straighter paths, and
the scripts resume exactly, record what made their outputs and refuse bad options before any work."""
from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from course_utils import flow, reflow
from course_utils.checkpoints import CheckpointError, save_weights, write_json
from course_utils.data import DATA_DIR
from course_utils.unet import TinyUNet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import compare_few_step  # noqa: E402
import make_reflow_pairs  # noqa: E402
import reports  # noqa: E402
import train_ddpm  # noqa: E402
import train_reflow  # noqa: E402

POINTS = torch.tensor([[-1.5, -1.0], [1.5, -1.0], [0.0, 1.5]])


@pytest.fixture
def torch_threads():
    """The scripts set the thread count; give the rest of the session its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


class GaussianField(torch.nn.Module):
    """The exact marginal velocity of flow matching when the data are N(mu, s^2 I): x_sigma is Gaussian with mean
    m = (1 - sigma) mu and standard deviation r = sqrt((1 - sigma)^2 s^2 + sigma^2), and
    u(x, sigma) = E[eps - x_0 | x] = -mu + (sigma - (1 - sigma) s^2) / r^2 (x - m). Its ODE carries noise z to
    mu + s z (it keeps the standardised coordinate (x - m) / r), along paths x = m + r z that bend, since r is not
    linear in sigma, unless s = 0."""

    def __init__(self, mu: float = 0.3, s: float = 0.5):
        super().__init__()
        self.mu, self.s = mu, s
        self.dummy = torch.nn.Parameter(torch.zeros(()), requires_grad=False)  # the samplers read the device here

    def forward(self, x, timesteps):
        sigma = (timesteps / flow.TIME_SCALE).view(-1, *([1] * (x.dim() - 1)))
        mean, variance = (1 - sigma) * self.mu, (1 - sigma) ** 2 * self.s**2 + sigma**2
        return -self.mu + (sigma - (1 - sigma) * self.s**2) / variance * (x - mean)


class LinearField(torch.nn.Module):
    """u(x, t) = w (1 + t / 1000) x - 0.1: a stand-in network whose output depends on both inputs."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x, timesteps):
        return self.weight * (1 + timesteps.view(-1, *([1] * (x.dim() - 1))) / flow.TIME_SCALE) * x - 0.1


def pairs_batch(seed=0, shape=(6, 1, 4, 4)):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator), torch.rand(shape, generator=generator) * 2 - 1


# ------------------------------------------------------------------------------------------------
# noise levels
# ------------------------------------------------------------------------------------------------

def test_u_shaped_levels_follow_lee_et_als_density():
    sigma = reflow.reflow_sigmas(200_000, torch.Generator().manual_seed(0), time_sampling="u-shaped")
    assert 0 <= sigma.min() and sigma.max() <= 1
    histogram = torch.histc(sigma, 20, 0, 1) / len(sigma) * 20  # a density estimate on 20 bins
    centres = torch.linspace(0.025, 0.975, 20)
    torch.testing.assert_close(histogram, reflow.u_shaped_density(centres), atol=0.06, rtol=0)
    uniform = reflow.reflow_sigmas(200_000, torch.Generator().manual_seed(0), time_sampling="uniform")
    assert not torch.allclose(torch.histc(uniform, 20, 0, 1) / len(uniform) * 20, reflow.u_shaped_density(centres),
                              atol=0.06)  # the comparison can fail


def test_u_shaped_density_is_normalised_symmetric_and_highest_at_the_ends():
    grid = torch.linspace(0, 1, 100_001, dtype=torch.float64)
    density = reflow.u_shaped_density(grid)
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(density, density.flip(0))
    assert density[0] / density[50_000] == pytest.approx((1 + math.e**4) / (2 * math.e**2))


def test_u_shaped_draw_is_the_inverse_of_the_exponentials_distribution_function():
    a = 4.0
    generator = torch.Generator().manual_seed(3)
    r, coin = torch.rand(5, generator=generator), torch.rand(5, generator=generator)
    s = torch.log(1 + r * (math.exp(a) - 1)) / a  # F(s) = (e^{a s} - 1) / (e^a - 1) = r
    by_hand = torch.where(coin < 0.5, 1 - s, s)
    drawn = reflow.reflow_sigmas(5, torch.Generator().manual_seed(3), time_sampling="u-shaped", u_shape=a)
    torch.testing.assert_close(drawn, by_hand)


def test_one_step_levels_are_all_one():
    assert torch.equal(reflow.reflow_sigmas(4, time_sampling="one-step"), torch.ones(4))


# ------------------------------------------------------------------------------------------------
# the loss
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("time_sampling", reflow.TIME_SAMPLINGS)
def test_reflow_loss_equals_a_hand_computation(time_sampling):
    noise, images = pairs_batch()
    model = LinearField()
    sigma = reflow.reflow_sigmas(6, torch.Generator().manual_seed(5), time_sampling=time_sampling).view(-1, 1, 1, 1)
    x_sigma = (1 - sigma) * images + sigma * noise
    by_hand = ((model(x_sigma, 1000 * sigma.view(-1)) - (noise - images)) ** 2).mean()
    loss = reflow.reflow_loss(model, noise, images, torch.Generator().manual_seed(5), time_sampling)
    torch.testing.assert_close(loss, by_hand)
    loss.backward()
    assert model.weight.grad is not None and model.weight.grad != 0


def test_pseudo_huber_is_song_and_dhariwals_distance_per_sample():
    residual = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    c = 0.00054 * 28  # c = 0.00054 sqrt(d), d = 784
    norms = residual.flatten(1).norm(dim=1)
    torch.testing.assert_close(reflow.pseudo_huber(residual), (torch.sqrt(norms**2 + c**2) - c).mean())
    tiny = 1e-5 * residual.double()  # far below c: the squared norm over 2c
    torch.testing.assert_close(reflow.pseudo_huber(tiny), (tiny.flatten(1).pow(2).sum(1) / (2 * c)).mean(),
                               rtol=1e-3, atol=0)
    # far above c: the norm, so doubling every error doubles the loss (the squared loss would quadruple)
    assert reflow.pseudo_huber(2 * residual).item() == pytest.approx(2 * reflow.pseudo_huber(residual).item(), rel=1e-3)


def test_reflow_loss_with_pseudo_huber_is_the_distance_of_the_same_residuals():
    noise, images = pairs_batch()
    model = LinearField()
    sigma = reflow.reflow_sigmas(6, torch.Generator().manual_seed(5), time_sampling="u-shaped").view(-1, 1, 1, 1)
    residual = model((1 - sigma) * images + sigma * noise, 1000 * sigma.view(-1)) - (noise - images)
    loss = reflow.reflow_loss(model, noise, images, torch.Generator().manual_seed(5), "u-shaped", loss="pseudo-huber")
    torch.testing.assert_close(loss, reflow.pseudo_huber(residual))
    squared = reflow.reflow_loss(model, noise, images, torch.Generator().manual_seed(5), "u-shaped")
    assert not torch.allclose(loss, squared)


def test_with_the_noise_flow_loss_would_draw_the_reflow_loss_is_the_flow_matching_loss():
    """Reflow changes the coupling only: given the independent coupling's noise it is notebook 08's loss."""
    _, images = pairs_batch()
    model = LinearField()
    generator = torch.Generator().manual_seed(9)
    torch.rand(6, generator=generator)  # flow_loss draws its sigmas first...
    noise = torch.randn(images.shape, generator=generator)  # ...then its noise
    expected = flow.flow_loss(model, images, torch.Generator().manual_seed(9))
    torch.testing.assert_close(reflow.reflow_loss(model, noise, images, torch.Generator().manual_seed(9)), expected)
    other_noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(reflow.reflow_loss(model, other_noise, images, torch.Generator().manual_seed(9)), expected)


def test_the_loss_of_the_velocity_that_walks_each_pairs_line_is_zero():
    """A field that knows the pair (here: one pair, so the straight line is the whole data set) has zero loss."""
    noise, images = pairs_batch(shape=(1, 1, 4, 4))

    class PairLine(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.direction = torch.nn.Parameter(noise - images)

        def forward(self, x, timesteps):
            return self.direction.expand_as(x)

    loss = reflow.reflow_loss(PairLine(), noise, images, torch.Generator().manual_seed(0), "u-shaped")
    assert loss.item() == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------------------------------------
# the pairs and the straightness measures
# ------------------------------------------------------------------------------------------------

def test_reflow_pairs_of_an_exact_model_are_its_ode_ends():
    field, z = GaussianField(mu=0.3, s=0.5), torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    exact = 0.3 + 0.5 * z
    errors = {steps: (reflow.reflow_pairs(field, z, steps) - exact).abs().max() for steps in (100, 200)}
    assert errors[200] < 0.03 and errors[200] == pytest.approx(errors[100] / 2, rel=0.1)  # Euler: first order
    heun = reflow.reflow_pairs(field, z, 20, sampler="heun")
    assert (heun - exact).abs().max() < errors[200]
    one_step = reflow.reflow_pairs(field, z, 1)  # from pure noise, one step lands on the mean: the bend, missed
    torch.testing.assert_close(one_step, torch.full_like(z, 0.3))


def test_reflow_pairs_are_sample_flows_images_from_the_same_noise():
    torch.manual_seed(0)
    model = TinyUNet((8, 16)).eval()
    noise = torch.randn((3, 1, 28, 28), generator=torch.Generator().manual_seed(4))
    for sampler, steps in (("euler", 3), ("heun", 2)):
        sampled = flow.sample_flow(model, 3, steps, torch.Generator().manual_seed(4), sampler=sampler, progress=False)
        pairs, path = reflow.reflow_pairs(model, noise, steps, sampler, return_trajectory=True)
        torch.testing.assert_close(pairs, sampled)
        assert len(path) == steps + 1 and torch.equal(path[0], noise)
    assert torch.equal(reflow.reflow_pairs(model, noise[:2], 3), reflow.reflow_pairs(model, noise, 3)[:2])


def test_x0_hat_path_of_an_euler_path_is_the_models_own_guess():
    model, z = LinearField(), torch.randn(5, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    _, path = reflow.reflow_pairs(model, z, 4, return_trajectory=True)
    levels = flow.flow_sigmas(4)
    guesses = reflow.x0_hat_path(path, levels)
    assert guesses.shape == (4, 5, 1, 4, 4)
    with torch.no_grad():
        for i, sigma in enumerate(levels[:-1].tolist()):
            own = path[i] - sigma * model(path[i], torch.full((5,), 1000 * sigma))
            torch.testing.assert_close(guesses[i].float(), own, atol=1e-5, rtol=0)
    torch.testing.assert_close(guesses[0].float(), reflow.reflow_pairs(model, z, 1), atol=1e-5, rtol=0)


def test_x0_drift_is_zero_on_a_straight_path_and_grows_with_the_bend():
    start, end = torch.randn(3, 2), torch.randn(3, 2)
    levels = flow.flow_sigmas(10)
    straight = [(1 - s) * end + s * start for s in levels.tolist()]
    assert reflow.x0_drift(straight, levels).abs().max() < 1e-10
    field, z = GaussianField(s=0.5), torch.randn(32, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    _, bent = reflow.reflow_pairs(field, z, 10, return_trajectory=True)
    # the narrower the data, the straighter the paths (a single point, s = 0, gives straight lines)
    _, less_bent = reflow.reflow_pairs(GaussianField(s=0.2), z, 10, return_trajectory=True)
    drift, smaller = reflow.x0_drift(bent, levels).mean(), reflow.x0_drift(less_bent, levels).mean()
    assert drift > smaller > 0


def test_ideal_velocity_module_is_flow_ideal_velocity_row_by_row():
    field = reflow.IdealVelocity(POINTS)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    sigmas = torch.tensor([0.9, 0.5, 0.2, 0.05])
    out = field(x, 1000 * sigmas)
    for i, sigma in enumerate(sigmas.tolist()):
        torch.testing.assert_close(out[i:i + 1], flow.ideal_velocity(x[i:i + 1], sigma, POINTS), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="timesteps"):
        field(x, torch.zeros(4))  # singular at sigma = 0
    assert not list(field.parameters()) and "data" in dict(field.named_buffers())  # moved by .to(), never trained
    halfway = x - 0.5 * field(x, torch.full((4,), 1000.0))  # two Euler steps, sigma 1 -> 0.5 -> 0
    torch.testing.assert_close(reflow.reflow_pairs(field, x, 2), halfway - 0.5 * field(halfway, torch.full((4,), 500.0)))


def test_a_reflowed_toy_follows_straighter_paths_than_the_marginal_field():
    """Notebook 10's 2-D toy in small: pairs from the exact marginal field of three points, a small network trained on
    their straight lines; its paths bend far less, and its one-step samples land near the points."""
    torch.manual_seed(0)
    ideal = reflow.IdealVelocity(POINTS)
    noise = torch.randn(2048, 2, generator=torch.Generator().manual_seed(0))
    ends = reflow.reflow_pairs(ideal, noise, 100)
    assert torch.cdist(ends, POINTS).min(dim=1).values.max() < 1e-3  # the ODE ends on a data point
    model = reflow.ToyVelocity()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(400):
        generator = torch.Generator().manual_seed(step)
        picked = torch.randint(0, len(noise), (256,), generator=generator)
        loss = reflow.reflow_loss(model, noise[picked], ends[picked], generator, "u-shaped")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    starts, levels = torch.randn(256, 2, generator=torch.Generator().manual_seed(1)), flow.flow_sigmas(20)
    measures = {}
    for name, field in (("marginal", ideal), ("reflowed", model)):
        _, path = reflow.reflow_pairs(field, starts, 20, return_trajectory=True)
        one_step = torch.cdist(reflow.reflow_pairs(field, starts, 1), POINTS).min(dim=1).values.mean()
        measures[name] = (flow.velocity_straightness(path, levels).mean(), reflow.x0_drift(path, levels).mean(), one_step)
    for before, after in zip(measures["marginal"], measures["reflowed"]):
        assert after < 0.3 * before, measures


def test_load_flow_file_reads_shipped_and_other_checkpoints_and_refuses_others(tmp_path):
    model, manifest = reflow.load_flow_file(DATA_DIR / "flow_mnist.safetensors")
    shipped, _ = flow.load_flow()
    assert manifest["config"]["objective"] == "flow"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), shipped.state_dict().values()))
    with pytest.raises(ValueError, match="path must be a flow-matching"):
        reflow.load_flow_file(DATA_DIR / "ddpm_mnist.safetensors")
    for suffix in (".safetensors", ".json"):
        shutil.copy(DATA_DIR / f"flow_mnist{suffix}", tmp_path / f"copy{suffix}")
    damaged = tmp_path / "copy.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(CheckpointError, match="corrupt"):
        reflow.load_flow_file(damaged)
    with pytest.raises(ValueError, match="path must name a .safetensors"):
        reflow.load_flow_file(DATA_DIR / "flow_mnist.json")


@pytest.mark.parametrize("call, name", [
    (lambda: reflow.reflow_loss(LinearField(), *pairs_batch()[::-1]), None),  # images of noise: allowed, no error
    (lambda: reflow.reflow_loss(LinearField(), pairs_batch()[0], (pairs_batch()[1] + 1) / 2), "images"),
    (lambda: reflow.reflow_loss(LinearField(), pairs_batch()[0][:3], pairs_batch()[1]), "noise"),
    (lambda: reflow.reflow_loss(LinearField(), *pairs_batch(), time_sampling="ushaped"), "time_sampling"),
    (lambda: reflow.reflow_loss(LinearField(), *pairs_batch(), generator=3), "generator"),
    (lambda: reflow.reflow_loss(None, *pairs_batch()), "model"),
    (lambda: reflow.reflow_loss(LinearField(), *pairs_batch(), u_shape=0), "u_shape"),
    (lambda: reflow.reflow_pairs(LinearField(), pairs_batch()[0], 0), "num_steps"),
    (lambda: reflow.reflow_pairs(LinearField(), pairs_batch()[0], 2, "rk4"), "sampler"),
    (lambda: reflow.reflow_pairs(LinearField(), pairs_batch()[0].long(), 2), "noise"),
    (lambda: reflow.reflow_pairs(TinyUNet((8, 16)), torch.randn(2, 1, 27, 27), 2), "noise"),
    (lambda: reflow.reflow_sigmas(-1), "size"),
    (lambda: reflow.reflow_sigmas(3, time_sampling=True), "time_sampling"),
    (lambda: reflow.x0_drift([torch.zeros(2, 3)] * 3, [0.0, 0.5, 1.0]), "sigmas"),
    (lambda: reflow.x0_drift(torch.zeros(3, 2, 3), [1.0, 0.5, 0.0]), "trajectory"),
    (lambda: reflow.u_shaped_density(torch.tensor([1.5])), "sigma"),
    (lambda: reflow.IdealVelocity(torch.zeros(0, 2)), "data"),
    (lambda: reflow.ToyVelocity(width=0), "width"),
    (lambda: reflow.load_flow_file(None), "path"),
    (lambda: reflow.reflow_loss(LinearField(), *pairs_batch(), loss="huber"), "loss"),
    (lambda: reflow.pseudo_huber(torch.ones(3)), "residual"),
    # found by scripts/probe_bad_inputs.py: each was a raw torch error, named another parameter, or misled
    (lambda: reflow.reflow_sigmas(4, device="gpu", time_sampling="one-step"), "device"),
    (lambda: reflow.reflow_loss(TinyUNet((8, 16)), *(x[:, 0] for x in pairs_batch())), "images"),  # [N, H, W]
    (lambda: reflow.reflow_pairs(TinyUNet((8, 16)), torch.randn(2, 28, 28), 2), "noise"),
    (lambda: reflow.reflow_loss(LinearField().double(), *(x.double() for x in pairs_batch())), None),  # as flow_loss
    (lambda: reflow.x0_hat_path([torch.zeros(2, 3)] * 3, None), "sigmas"),
    (lambda: reflow.x0_drift([torch.zeros(2, 3)] * 3, "1, 0.5, 0"), "sigmas"),
    (lambda: reflow.load_flow_file(DATA_DIR / "flow_mnsit.safetensors"), "path"),  # misspelled: no manifest either
    (lambda: reflow.x0_drift([torch.ones(2, 3)] * 3, [1.0, 0.5, 0.0]), "trajectory"),  # ends where it starts
])
def test_bad_input_is_refused_by_name(call, name):
    if name is None:
        call()
        return
    with pytest.raises((TypeError, ValueError, FileNotFoundError), match=rf"\b{name}\b"):
        call()


# ------------------------------------------------------------------------------------------------
# the scripts, with tiny models
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny flow model and a tiny DDPM, trained for two steps by the course's script."""
    folder = tmp_path_factory.mktemp("tiny")
    threads = torch.get_num_threads()
    common = ["--steps", "2", "--batch-size", "4", "--channels", "8,16,32", "--warmup", "2", "--threads", "1"]
    train_ddpm.main([*common, "--objective", "flow", "--run-dir", str(folder / "f"), "--out", str(folder / "flow.safetensors")])
    train_ddpm.main([*common, "--run-dir", str(folder / "d"), "--out", str(folder / "ddpm.safetensors")])
    torch.set_num_threads(threads)
    return folder


def make_pairs(folder: Path, tiny_models: Path, *extra: str) -> Path:
    make_reflow_pairs.main(["--flow", str(tiny_models / "flow.safetensors"), "--nfe", "2", "--chunk-size", "4",
                            "--threads", "1", "--run-dir", str(folder), *extra])
    return folder / "pairs.safetensors"


def test_make_reflow_pairs_resumes_after_a_kill_to_the_same_pairs(tmp_path, tiny_models, monkeypatch, torch_threads):
    straight = load_file(make_pairs(tmp_path / "straight", tiny_models, "--num-pairs", "10"))
    real_make_chunk = make_reflow_pairs.make_chunk

    def dies_at_chunk_two(model, seed, index, *rest):
        if index == 2:
            raise KeyboardInterrupt  # the run is killed while making its third chunk
        return real_make_chunk(model, seed, index, *rest)

    monkeypatch.setattr(make_reflow_pairs, "make_chunk", dies_at_chunk_two)
    with pytest.raises(KeyboardInterrupt):
        make_pairs(tmp_path / "killed", tiny_models, "--num-pairs", "10")
    progress = json.loads((tmp_path / "killed" / "progress.json").read_text())
    assert sorted(progress["chunks"]) == ["0", "1"] and not (tmp_path / "killed" / "pairs.safetensors").exists()
    monkeypatch.setattr(make_reflow_pairs, "make_chunk", real_make_chunk)
    made = []
    monkeypatch.setattr(make_reflow_pairs, "make_chunk", lambda model, seed, index, *rest: made.append(index)
                        or real_make_chunk(model, seed, index, *rest))
    resumed = load_file(make_pairs(tmp_path / "killed", tiny_models, "--num-pairs", "10"))
    assert made == [2]  # only the unfinished chunk is made again
    assert all(torch.equal(straight[key], resumed[key]) for key in ("noise", "images"))
    assert straight["noise"].shape == (10, 1, 28, 28) and straight["noise"].dtype == torch.float16


def test_the_pairs_are_the_flow_models_ode_ends_and_their_manifest_says_how_they_were_made(tmp_path, tiny_models,
                                                                                          torch_threads):
    path = make_pairs(tmp_path, tiny_models, "--num-pairs", "6", "--store-dtype", "float32")
    pairs, manifest = load_file(path), json.loads(path.with_suffix(".json").read_text())
    model, flow_manifest = reflow.load_flow_file(tiny_models / "flow.safetensors")
    torch.testing.assert_close(pairs["images"], reflow.reflow_pairs(model, pairs["noise"], 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(pairs["noise"][:4], make_reflow_pairs.chunk_noise(0, 0, 4, 4))
    assert manifest["sha256"] == make_reflow_pairs.sha256_of(path) and manifest["num_pairs"] == 6
    assert manifest["flow"]["sha256"] == flow_manifest["sha256"] and manifest["nfe"] == 2
    assert manifest["network_evaluations"] == 12 and "mnist_fid" in manifest["quality"]
    assert manifest["command"].startswith("python scripts/make_reflow_pairs.py --flow")
    with pytest.raises(SystemExit, match="other settings"):  # the same run dir, another NFE
        make_pairs(tmp_path, tiny_models, "--num-pairs", "6", "--store-dtype", "float32", "--nfe", "3")


def test_train_reflow_resumes_to_identical_weights_and_records_its_pairs(tmp_path, tiny_models, torch_threads):
    pairs = make_pairs(tmp_path / "pairs", tiny_models, "--num-pairs", "8")

    def run(name: str, steps: int) -> Path:
        out = tmp_path / name / "reflow.safetensors"
        out.parent.mkdir(exist_ok=True)
        train_reflow.main(["--pairs", str(pairs), "--init-from", str(tiny_models / "flow.safetensors"), "--steps",
                           str(steps), "--batch-size", "4", "--warmup", "2", "--save-every", "2", "--threads", "1",
                           "--run-dir", str(tmp_path / name / "run"), "--out", str(out)])
        return out

    straight = load_file(run("straight", 4))
    run("resumed", 2)
    resumed_path = run("resumed", 4)
    resumed = load_file(resumed_path)
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)
    initial = load_file(tiny_models / "flow.safetensors")
    assert any(not torch.equal(initial[key], resumed[key]) for key in initial)  # it trained
    manifest = json.loads(resumed_path.with_suffix(".json").read_text())
    pairs_manifest = json.loads(pairs.with_suffix(".json").read_text())
    assert manifest["pairs"]["sha256"] == pairs_manifest["sha256"] and manifest["pairs"]["nfe"] == 2
    assert manifest["init_from"]["sha256"] == json.loads((tiny_models / "flow.json").read_text())["sha256"]
    assert manifest["steps"] == 4 and manifest["images_seen"] == 16 and manifest["time_sampling"] == "u-shaped"
    model, loaded = reflow.load_flow_file(resumed_path)  # a flow model the course can load and sample
    assert loaded["config"]["coupling"] == "reflow" and model.config["channels"] == [8, 16, 32]


@pytest.mark.parametrize("script, argv, expected", [
    ("make_reflow_pairs", ["--nfe", "0"], "argument --nfe: must be an integer in [1, 1000], got 0"),
    ("make_reflow_pairs", ["--sampler", "heun", "--nfe", "20"], "--nfe must be odd for --sampler heun"),
    ("make_reflow_pairs", ["--chunk-size", "x"], "argument --chunk-size: must be an integer"),
    ("make_reflow_pairs", ["--flow", "no/such.safetensors"], "--flow needs a .safetensors file"),
    ("train_reflow", ["--steps", "0"], "argument --steps: must be an integer >= 1, got 0"),
    ("train_reflow", ["--time-sampling", "logit-normal"], "argument --time-sampling: invalid choice"),
    ("train_reflow", ["--u-shape", "0"], "argument --u-shape: must lie in (0, 50)"),
    ("train_reflow", ["--pairs", "no/such.safetensors"], "--pairs needs a .safetensors file"),
    ("compare_few_step", ["--nfe", "0"], "argument --nfe: must be an integer in [1, 1000], got 0"),
    ("compare_few_step", ["--ddpm-samplers", "euler_karras"], "argument --ddpm-samplers: invalid choice"),
    ("compare_few_step", ["--json", "no/such/folder/t.json"], "--json"),
])
def test_scripts_refuse_bad_options_by_name_before_any_work(script, argv, expected, capsys, tmp_path):
    module = {"make_reflow_pairs": make_reflow_pairs, "train_reflow": train_reflow,
              "compare_few_step": compare_few_step}[script]
    extra = ["--out", str(tmp_path / "x.safetensors")] if script != "compare_few_step" else []
    with pytest.raises(SystemExit) as raised:
        module.parse_args([*argv, *extra])
    assert raised.value.code == 2
    assert expected in capsys.readouterr().err


def test_train_reflow_refuses_a_checksummed_file_without_pairs(tmp_path):
    path = tmp_path / "weights.safetensors"
    write_json(path.with_suffix(".json"), {"command": "python scripts/x.py",
                                           "sha256": save_weights({"weight": torch.zeros(2)}, path, {})})
    with pytest.raises(SystemExit, match="must hold the tensors 'noise' and 'images'"):
        train_reflow.load_pairs(path)


def test_the_few_step_table_shows_what_an_older_manifest_did_not_record():
    settings = {"command": "python scripts/compare_few_step.py", "flow_file": "data/flow_mnist.safetensors",
                "flow_sha256": "a" * 64, "reflow_file": "data/reflow_mnist.safetensors", "reflow_sha256": "b" * 64,
                "num_samples": 6, "seed": 0, "threads": 1, "machine": "x86_64", "batch_size": 6, "reference_nfe": 20}
    costs = {"pairs": 50_000, "pair_nfe": 20, "pair_sampler": "euler", "pair_network_evaluations": None,
             "pair_minutes": None, "pair_threads": None, "training_steps": None, "batch_size": 128,
             "training_minutes": 30.0, "training_threads": 1, "time_sampling": None}
    text = compare_few_step.markdown_table({"settings": settings, "runs": {}, "data_floor_fid": 5.0, "costs": costs})
    assert ("**Cost of reflow**: 50,000 pairs at 20 NFE (euler), ? network evaluations, ? min on ? thread(s); "
            "training ? steps of 128 pairs (? noise levels), 30.0 min on 1 thread(s).") in text
    assert "seed 0 (the noise of the first reflow pairs, which flatters reflow)" in text
    settings["seed"] = reflow.HELD_OUT_SEED
    text = compare_few_step.markdown_table({"settings": settings, "runs": {}, "data_floor_fid": 5.0, "costs": costs})
    assert "seed 1,000,000 (noise none of the models trained on" in text


def test_train_reflow_never_silently_replaces_a_shipped_model(capsys, tmp_path, tiny_models, torch_threads):
    pairs = make_pairs(tmp_path / "pairs", tiny_models, "--num-pairs", "4")
    with pytest.raises(SystemExit):
        train_reflow.parse_args(["--pairs", str(pairs), "--out", str(DATA_DIR / "flow_mnist.safetensors")])
    error = capsys.readouterr().err
    assert "ships in data/" in error and "--overwrite-shipped" in error


def test_train_reflow_cools_down_to_a_fixed_end(capsys, tmp_path, tiny_models, torch_threads):
    pairs = make_pairs(tmp_path / "pairs", tiny_models, "--num-pairs", "4")
    out = ["--pairs", str(pairs), "--out", str(tmp_path / "cool.safetensors")]
    with pytest.raises(SystemExit):
        train_reflow.parse_args([*out, "--steps", "100", "--decay-steps", "200"])
    assert "--decay-steps must be at most --steps (100), got 200" in capsys.readouterr().err
    cooling, constant = (train_reflow.parse_args([*out, "--steps", "100", "--decay-steps", str(decay)]) for decay in (50, 0))
    with_decay, without = (train_reflow.run_settings(args, "sha", None) for args in (cooling, constant))
    assert with_decay["decay_steps"] == "50" and with_decay["steps"] == "100"  # a cool-down cannot be extended
    assert "steps" not in without and "decay_steps" not in without  # a constant run can, and old runs resume


def test_compare_few_step_measures_every_model_and_keeps_the_readme(tmp_path, tiny_models, torch_threads):
    pairs = make_pairs(tmp_path / "pairs", tiny_models, "--num-pairs", "4")
    reflowed = tmp_path / "reflow.safetensors"
    train_reflow.main(["--pairs", str(pairs), "--init-from", str(tiny_models / "flow.safetensors"), "--steps", "2",
                       "--batch-size", "4", "--warmup", "1", "--threads", "1", "--run-dir", str(tmp_path / "run"),
                       "--out", str(reflowed)])
    readme = reports.README.read_text(encoding="utf-8")  # a table outside docs/ leaves the README alone
    json_path, markdown_path = tmp_path / "t.json", tmp_path / "t.md"
    argv = ["--flow", str(tiny_models / "flow.safetensors"), "--reflow", str(reflowed), "--ddpm",
            str(tiny_models / "ddpm.safetensors"), "--num-samples", "6", "--nfe", "1", "2", "--reference-nfe", "3",
            "--ddpm-samplers", "unipc", "--straightness-samples", "3", "--straightness-steps", "3", "--threads", "1",
            "--json", str(json_path), "--markdown", str(markdown_path)]
    compare_few_step.main(argv)
    table = json.loads(json_path.read_text())
    assert sorted(table["runs"]) == ["ddpm unipc/1", "ddpm unipc/2", "flow ancestral/3", "flow euler/1",
                                     "flow euler/2", "flow euler/3", "flow heun/3", "reflow euler/1", "reflow euler/2"]
    assert table["runs"]["flow heun/3"]["nfe"] == 3 and table["runs"]["ddpm unipc/2"]["nfe"] == 2
    assert set(table["straightness"]) >= {"flow", "reflow"} and table["costs"]["pairs"] == 4
    assert {"fid_met", "one_step_met"} <= set(table["acceptance"])
    assert {run["command"] for run in table["runs"].values()} == {table["settings"]["command"]}  # who measured each
    text = markdown_path.read_text()
    assert text.startswith(f"# {compare_few_step.HEADING}") and "| reflow | Euler | 1 |" in text
    assert "**Cost of reflow**: 4 pairs at 2 NFE" in text
    before = json_path.read_text()
    compare_few_step.main(argv)  # everything measured already: nothing is measured again
    assert json.loads(json_path.read_text())["runs"] == json.loads(before)["runs"]
    assert reports.README.read_text(encoding="utf-8") == readme


def test_compare_few_step_adds_a_student_and_shifted_grids_and_judges_the_family(tmp_path, tiny_models,
                                                                                  torch_threads):
    """--student adds the one-step student's rows, --shift the shifted-grid rows of both; the acceptance check
    takes the best 2-NFE and 1-NFE runs of the reflowed family and names them."""
    pairs = make_pairs(tmp_path / "pairs", tiny_models, "--num-pairs", "4")
    common = ["--pairs", str(pairs), "--steps", "2", "--batch-size", "4", "--warmup", "1", "--threads", "1"]
    reflowed, student = tmp_path / "reflow.safetensors", tmp_path / "student.safetensors"
    train_reflow.main([*common, "--init-from", str(tiny_models / "flow.safetensors"), "--run-dir",
                       str(tmp_path / "r"), "--out", str(reflowed)])
    train_reflow.main([*common, "--init-from", str(reflowed), "--time-sampling", "one-step", "--loss", "pseudo-huber",
                       "--run-dir", str(tmp_path / "s"), "--out", str(student)])
    json_path = tmp_path / "t.json"
    compare_few_step.main(["--flow", str(tiny_models / "flow.safetensors"), "--reflow", str(reflowed), "--student",
                           str(student), "--shift", "9", "--ddpm-samplers", "--num-samples", "6", "--nfe", "1", "2",
                           "--reference-nfe", "0", "--straightness-samples", "3", "--straightness-steps", "3",
                           "--threads", "1", "--json", str(json_path), "--markdown", str(tmp_path / "t.md")])
    table = json.loads(json_path.read_text())
    family = {key: run for key, run in table["runs"].items() if key.split(" ")[0] in ("reflow", "student")}
    assert sorted(family) == sorted(f"{kind} {grid}" for kind in ("reflow", "student")
                                    for grid in ("euler/1", "euler/2", "euler-shifted/2"))  # one step has no grid
    check = table["acceptance"]
    best_two = min((run for run in family.values() if run["nfe"] == 2), key=lambda run: run["mnist_fid"])
    assert (check["reflow_2nfe_method"], check["reflow_2nfe_fid"]) == (best_two["method"], best_two["mnist_fid"])
    assert table["student_costs"]["training_steps"] == [2, 2]  # the reflow run, then the student's
    assert json.loads(student.with_suffix(".json").read_text())["loss"] == "pseudo-huber"
    text = (tmp_path / "t.md").read_text()
    assert "| one-step student | Euler, shifted sigmas | 2 |" in text and "middle level 0.90" in text
    # a 2-step shifted grid puts its middle level at s / (1 + s)
    assert flow.flow_sigmas(2, 9.0)[1].item() == pytest.approx(0.9)


def test_the_cost_of_reflow_counts_every_stage_back_to_the_flow_model():
    flow_record = {"file": "data/flow_mnist.safetensors", "steps": 20500, "wall_time_minutes": 300.0,
                   "command": "flow"}
    constant = {"coupling": "reflow", "steps": 8000, "wall_time_minutes": 80.0, "init_from": flow_record,
                "command": "reflow"}
    shipped = {"steps": 2000, "wall_time_minutes": 12.5, "batch_size": 64, "init_from": constant, "command": "cool",
               "pairs": {"num_pairs": 10, "seconds": 60.0}}
    assert compare_few_step.training_stages(shipped) == [constant, shipped]  # the flow model is not a stage
    cost = compare_few_step.costs(shipped)
    assert cost["training_steps"] == [8000, 2000] and cost["training_minutes"] == 92.5 and cost["pair_minutes"] == 1.0
    assert compare_few_step.steps_text(cost["training_steps"]) == "8,000 + 2,000"
    unknown = compare_few_step.costs({**shipped, "wall_time_minutes": None})
    assert unknown["training_minutes"] is None  # one stage without its time: no total


def test_held_out_noise_is_not_the_shipped_pairs_noise():
    """The reflowed model's pairs drew chunk k's noise from seed k (k < 100): held-out noise must differ from all."""
    held_out = torch.randn((500, 1, 28, 28), generator=reflow.held_out_generator(0))
    for chunk in (0, 1, 99):
        pairs_noise = make_reflow_pairs.chunk_noise(0, chunk, 500, 500)
        assert not torch.isclose(held_out, pairs_noise).flatten(1).all(1).any()
    assert reflow.held_out_generator(3).initial_seed() == reflow.HELD_OUT_SEED + 3


def test_the_break_even_prices_the_run_the_acceptance_found_best():
    """The student's 2-NFE run wins here, so the break-even counts the student's costs and its sampling time."""
    def run(method, nfe, fid, ms):
        return {"method": method, "nfe": nfe, "mnist_fid": fid, "confident_share": 0.8, "ms_per_image": ms}

    runs = [run("flow euler", 20, 10.0, 80.0), run("reflow euler", 2, 30.0, 10.0),
            run("student euler-shifted", 2, 20.0, 12.0), run("student euler", 1, 30.0, 6.0)]
    table = {"settings": {"reference_nfe": 20}, "runs": {f"{r['method']}/{r['nfe']}": r for r in runs},
             "costs": {"pair_minutes": 50.0, "training_minutes": 100.0},
             "student_costs": {"pair_minutes": 50.0, "training_minutes": 150.0}}
    compare_few_step.summarise(table)
    assert table["acceptance"]["reflow_2nfe_method"] == "student euler-shifted"
    assert table["break_even"] == {"cost_minutes": 200.0, "saved_ms_per_image": 68.0,
                                   "images": int(60_000 * 200.0 / 68.0)}
