"""Notebook 04: samplers and evaluation, speed against quality, measured.

    python scripts/build_notebooks/nb04.py && python scripts/execute_notebooks.py notebooks/04_samplers.ipynb
"""
from common import code, md, notebook, quick_check, write

FILENAME = "04_samplers.ipynb"

TITLE = r"""
# 04 · Samplers: speed against quality, measured

{badge}

Notebook 03 trained a noise predictor $\epsilon_\theta(x_t, t)$ and sampled with DDPM, one network call per
step, 100 steps. The network is the expensive part, so the question of this notebook is: **how few network
calls can we get away with, and what does it cost in quality?** The network stays the same; only the
*sampler*, the rule that turns its predictions into the next $x_t$, changes.

You will:
1. derive **DDIM** (Song et al. 2021) from one observation about DDPM's training objective, write its step by
   hand, and check it against `course_utils.samplers` and `diffusers.DDIMScheduler`;
2. see why **which timesteps** a few-step sampler visits matters as much as the update rule;
3. meet the `diffusers` samplers in common use (DPM-Solver++, Euler and Heun on Karras noise levels, UniPC) and
   run all of them through one loop that counts **network evaluations (NFE)**;
4. learn what **FID** measures, why the course uses a digit classifier's features, and how FID is biased at
   small sample counts;
5. **measure** every sampler at several step counts: MNIST FID against its data floor, confident share, wall
   time, NFE, and look at the same seeds across step counts and samplers.

*Runs in about 2 minutes on a 2-core CPU with the defaults below (most of it in section 6).*
"""

PARAMETERS = """
SEED = 0  # seeds every random generator; every sampler run starts from the same noise
THREADS = 2  # CPU threads; results and timings depend on it
NUM_SAMPLES = 100  # digits per sampler and step count for the measures (2 to 5000)
STEP_COUNTS = [5, 10, 20]  # sampler steps to compare (integers from 2 to 1000)
REFERENCE_STEPS = 100  # steps of the DDPM reference run (1 to 1000)
SAMPLER_NAMES = ["ddpm", "ddim", "dpm_solver++", "euler_karras", "heun_karras", "unipc"]  # samplers to compare
DDIM_STEPS = 20  # steps of the hand-written DDIM demos and exercise 1 (a divisor of 1000)
GRID_SEEDS = 8  # seeds shown in the picture grids (1 to 64)
"""

CELLS = [
code("""
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from diffusers import DDIMScheduler
from tqdm.auto import tqdm

from course_utils import ddpm, metrics, samplers, viz
from course_utils.data import mnist_tensors
from course_utils.runtime import setup

for name, value, low, high in [("NUM_SAMPLES", NUM_SAMPLES, 2, 5000), ("REFERENCE_STEPS", REFERENCE_STEPS, 1, 1000),
                               ("GRID_SEEDS", GRID_SEEDS, 1, 64)]:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
if not isinstance(STEP_COUNTS, (list, tuple)) or not STEP_COUNTS or not all(
        isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= 1000 for n in STEP_COUNTS):
    raise ValueError(f"STEP_COUNTS must be a non-empty list of integers in [2, 1000], got {STEP_COUNTS!r}")
if not isinstance(SAMPLER_NAMES, (list, tuple)) or not SAMPLER_NAMES or not set(SAMPLER_NAMES) <= set(samplers.SAMPLERS):
    raise ValueError(f"SAMPLER_NAMES must be a non-empty list drawn from {samplers.SAMPLERS}, got {SAMPLER_NAMES!r}")
if isinstance(DDIM_STEPS, bool) or not isinstance(DDIM_STEPS, int) or not 1 <= DDIM_STEPS <= 1000 or 1000 % DDIM_STEPS:
    raise ValueError(f"DDIM_STEPS must be a divisor of 1000 (1, 2, 4, 5, 8, 10, 20, 25, 40, 50, ...), got {DDIM_STEPS!r}")
STEP_COUNTS, GRID_SEEDS = sorted(set(STEP_COUNTS)), min(GRID_SEEDS, NUM_SAMPLES)
device = setup(seed=SEED, threads=THREADS)
"""),
code("""
# NBVAL_CHECK_OUTPUT
model, alpha_bar, manifest = ddpm.load_ddpm()  # notebook 03's shipped model and its cosine schedule
classifier = metrics.load_classifier()  # the digit classifier behind the measures (notebook 03, section 6)
print(f"shipped model: {manifest['parameters']:,} parameters, trained {manifest['steps']:,} steps")
print(f"schedule: {manifest['config']['schedule']}, T = {len(alpha_bar)}")
"""),
md(r"""
## 1. What a sample costs

Every sampler in this notebook calls the same network. Everything else a sampler does (a few additions and
multiplications on a 28×28 image) is negligible next to a forward pass of the UNet, so the cost of a sample is
the **number of function evaluations (NFE)** times the cost of one evaluation. Let us measure that cost here,
on this machine, for a batch of `NUM_SAMPLES` images:
"""),
code("""
x = torch.randn(NUM_SAMPLES, 1, 28, 28)
t = torch.full((NUM_SAMPLES,), 500)
with torch.no_grad():
    model(x, t)  # warm-up: the first call allocates memory
    start = time.perf_counter()
    for _ in range(3):
        model(x, t)
ms_per_evaluation = (time.perf_counter() - start) / 3 / NUM_SAMPLES * 1000
print(f"one network evaluation: {ms_per_evaluation:.2f} ms per image on {THREADS} thread(s)")
for steps in [1000, 100, 10]:
    print(f"DDPM with {steps:>4} steps: {steps * ms_per_evaluation / 1000:7.2f} s per image, "
          f"{steps * ms_per_evaluation:7.0f} s per 1,000 images")
"""),
md(r"""
DDPM was trained with $T = 1000$ steps and samples best with many of them: each ancestral step draws from a
Gaussian $q(x_{t'} \mid x_t, \hat x_0)$, an approximation that is only good when $t$ and $t'$ are close, so with
few steps it gets worse (notebook 03's exercise 1 tried 10). A faster sampler must take **big steps that are
still accurate**.

## 2. DDIM, derived and written by hand

**The observation** (Song, Meng & Ermon 2021, [arXiv:2010.02502](https://arxiv.org/abs/2010.02502)). The
training loss of notebook 03 only ever uses the marginals $q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}\,x_0,
(1-\bar\alpha_t) I)$: it noises $x_0$ straight to $x_t$ and never looks at how $x_{t-1}$ and $x_t$ are connected.
So the trained network works for *any* process with these marginals, not only for DDPM's Markov chain.
Among them we may pick one that is easier to walk back in big steps.

**A family with the right marginals.** Write $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$.
For an earlier step $t' < t$ and any $\sigma_t^2 \le 1 - \bar\alpha_{t'}$ define

$$x_{t'} = \sqrt{\bar\alpha_{t'}}\,x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma_t^2}\;\epsilon + \sigma_t\, z, \qquad z \sim \mathcal N(0, I),$$

i.e. keep the *same* noise direction $\epsilon$, mixed in a smaller amount, plus optional fresh noise. Its
variance around $\sqrt{\bar\alpha_{t'}}\,x_0$ is $(1-\bar\alpha_{t'}-\sigma_t^2) + \sigma_t^2 = 1-\bar\alpha_{t'}$:
exactly the marginal $q(x_{t'} \mid x_0)$, for every choice of $\sigma_t$ and every jump $t \to t'$.

**The sampler.** We do not know $x_0$ and $\epsilon$, but the network gives $\hat\epsilon = \epsilon_\theta(x_t, t)$
and from it $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$. Substituting gives the
DDIM update (eq. 12 of the paper):

$$x_{t'} = \underbrace{\sqrt{\bar\alpha_{t'}}\;\hat x_0}_{\text{predicted } x_0}
+ \underbrace{\sqrt{1-\bar\alpha_{t'}-\sigma_t^2}\;\hat\epsilon}_{\text{direction pointing to } x_t}
+ \underbrace{\sigma_t\, z}_{\text{random noise}},
\qquad \sigma_t = \eta\,\sqrt{\frac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\,\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_{t'}}} \quad\text{(eq. 16)}.$$

With $\eta = 1$, $\sigma_t^2$ is DDPM's posterior variance and we are back to (a variant of) notebook 03's
sampler. With $\eta = 0$ there is no fresh noise at all: the sampler is **deterministic**, one $x_T$ gives one
image, and each step is an Euler step of an ordinary differential equation (section 4). As in notebook 03 we
clip $\hat x_0$ to the data range $[-1, 1]$. After the last step $\bar\alpha_{t'} = 1$: the result is $\hat x_0$.
"""),
code("""
def ddim_step_by_hand(eps, t, prev_t, x_t, alpha_bar, eta=0.0, noise=None):
    abar_t = alpha_bar[t]
    abar_prev = alpha_bar[prev_t] if prev_t >= 0 else torch.tensor(1.0)
    x0_hat = ((x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()).clamp(-1, 1)  # predicted x_0
    sigma = eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).sqrt()  # eq. 16
    direction = (1 - abar_prev - sigma**2).sqrt() * eps  # direction pointing to x_t
    x_prev = abar_prev.sqrt() * x0_hat + direction
    if eta > 0 and prev_t >= 0:
        x_prev = x_prev + sigma * noise  # random noise (none after the last step, where sigma = 0)
    return x_prev
"""),
md(r"""
A first check of the idea with the *true* noise instead of a network: take a real digit, noise it to $t = 700$,
and take one deterministic step to $t' = 300$ with the $\epsilon$ that was used. DDIM keeps the noise direction,
so we must land exactly on the same digit noised to $t = 300$ with the same $\epsilon$:
"""),
code("""
# NBVAL_CHECK_OUTPUT
digits = mnist_tensors("test")[0][:4]
true_eps = torch.randn(digits.shape, generator=torch.Generator().manual_seed(SEED))
x_700 = alpha_bar[700].sqrt() * digits + (1 - alpha_bar[700]).sqrt() * true_eps
x_300 = alpha_bar[300].sqrt() * digits + (1 - alpha_bar[300]).sqrt() * true_eps
stepped = ddim_step_by_hand(true_eps, 700, 300, x_700, alpha_bar)
print(f"one DDIM step 700 -> 300 lands on x_300: {torch.allclose(stepped, x_300, atol=1e-5)}")
print(f"and a step to the end recovers the digit: {torch.allclose(ddim_step_by_hand(true_eps, 700, -1, x_700, alpha_bar), digits, atol=1e-5)}")
"""),
md(r"""
`course_utils.samplers.ddim_step` is the same function (it also rejects bad `eta`), and
`diffusers.DDIMScheduler.step` computes the same update. We compare all three on the same inputs, for
$\eta = 0$ and $\eta = 0.5$ (passing the same noise to `diffusers` as `variance_noise`), at the first, a middle and
the last step. As in notebook 03 we give all three the scheduler's own $\bar\alpha$ table: `diffusers` multiplies
the $\alpha$s in float32, `course_utils` in float64, and where $\bar\alpha_t$ is tiny (about $2\cdot 10^{-9}$ at
$t = 999$) dividing by $\sqrt{\bar\alpha_t}$ magnifies that rounding difference far beyond $10^{-6}$.
"""),
code("""
# NBVAL_CHECK_OUTPUT
scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", timestep_spacing="trailing")
scheduler.set_timesteps(10)  # steps of 100: t -> t - 100
table = scheduler.alphas_cumprod
generator = torch.Generator().manual_seed(SEED)
x_t, eps, noise = (torch.randn(4, 1, 28, 28, generator=generator) for _ in range(3))
for eta in [0.0, 0.5]:
    for t in [999, 499, 99]:
        mine = ddim_step_by_hand(eps, t, t - 100, x_t, table, eta, noise)
        course = samplers.ddim_step(eps, t, t - 100, x_t, table, eta, noise)
        library = scheduler.step(eps, t, x_t, eta=eta, variance_noise=noise if eta > 0 else None).prev_sample
        print(f"eta={eta} t={t:>3} -> {max(t - 100, -1):>3}: course_utils agrees {torch.allclose(mine, course, atol=1e-6)}, "
              f"diffusers agrees {torch.allclose(mine, library, atol=1e-6)}")
"""),
md(r"""
## 3. Which timesteps? The first step matters

A sampler with $N$ steps visits $N$ of the $T = 1000$ training timesteps. Two common spacings (Lin et al. 2024,
[arXiv:2305.08891](https://arxiv.org/abs/2305.08891), table 2):

- **leading**: $t_i = i \cdot \lfloor T/N \rfloor$, so 5 steps visit 800, 600, 400, 200, 0. This is notebook 03's
  `inference_timesteps` and the `diffusers` default for DDPM and DDIM.
- **trailing**: count back from the end, $t_i = \mathrm{round}(T - i\,T/N) - 1$: 999, 799, 599, 399, 199.

The sampler starts from pure noise $x_T \sim \mathcal N(0, I)$. With *leading* spacing it hands that noise to the
network as if it were $x_{800}$, but at $t = 800$ the cosine schedule still keeps $\sqrt{\bar\alpha_t} \approx 0.31$
of the image: the network is asked to find a digit that is not there. With many steps the first timestep is
close to 999 either way; with few steps it is not:
"""),
code("""
# NBVAL_CHECK_OUTPUT
print("steps | leading: first t, sqrt(abar) there | trailing: first t, sqrt(abar) there")
for steps in STEP_COUNTS:
    first = {spacing: int(samplers.sampling_timesteps(1000, steps, spacing)[0]) for spacing in samplers.SPACINGS}
    print(f"{steps:>5} | {first['leading']:>14}, {alpha_bar[first['leading']].sqrt():.3f}"
          f"{'':>12} | {first['trailing']:>15}, {alpha_bar[first['trailing']].sqrt():.5f}")
"""),
md(r"""
The course's samplers therefore use **trailing** spacing. Here is the whole DDIM sampler, by hand: start from
noise, and at every visited timestep ask the network for $\hat\epsilon$ and take the step of section 2 to the next
visited timestep (to $x_0$ after the last one). One network evaluation per step.
"""),
code("""
def sample_ddim_by_hand(model, num_images, alpha_bar, timesteps, generator):
    x = torch.randn(num_images, 1, 28, 28, generator=generator)
    with torch.no_grad():
        for t, prev_t in zip(timesteps, timesteps[1:] + [-1]):
            eps = model(x, torch.full((num_images,), t))
            x = ddim_step_by_hand(eps, t, prev_t, x, alpha_bar)
    return x

demo_timesteps = samplers.sampling_timesteps(1000, DDIM_STEPS, "trailing").tolist()
by_hand = sample_ddim_by_hand(model, GRID_SEEDS, table, demo_timesteps, torch.Generator().manual_seed(SEED))
viz.show_images(by_hand, nrow=GRID_SEEDS, title=f"DDIM by hand, {DDIM_STEPS} steps")
plt.show()
"""),
md(r"""
`course_utils.samplers.sample_ddim` is this loop, and the generic loop of section 4 with the `diffusers`
`DDIMScheduler` gives the same digits from the same seed. (`DDIMScheduler` steps from $t$ to $t - \lfloor T/N \rfloor$,
which is the next visited timestep when $N$ divides $T = 1000$, hence `DDIM_STEPS` is a divisor of 1000;
`course_utils` always steps to the next visited timestep.)
"""),
code("""
# NBVAL_CHECK_OUTPUT
course = samplers.sample_ddim(model, GRID_SEEDS, table, DDIM_STEPS, torch.Generator().manual_seed(SEED), progress=False)
library, nfe = samplers.sample_with_scheduler(model, samplers.make_scheduler("ddim"), GRID_SEEDS, DDIM_STEPS,
                                              torch.Generator().manual_seed(SEED), progress=False)
print(f"course_utils.samplers.sample_ddim gives the same digits: {torch.allclose(by_hand, course, atol=1e-5)}")
print(f"diffusers DDIMScheduler gives the same digits: {torch.allclose(by_hand.clamp(-1, 1), library, atol=1e-4)}, "
      f"with {nfe} network evaluations")
"""),
md(r"""
And the effect of the spacing, on the same seeds with the fewest steps of `STEP_COUNTS`:
"""),
code("""
few = STEP_COUNTS[0]
fig, axes = plt.subplots(2, 1, figsize=(0.6 * GRID_SEEDS, 1.6))
for ax, spacing in zip(axes, samplers.SPACINGS):
    x = samplers.sample_ddim(model, GRID_SEEDS, alpha_bar, few, torch.Generator().manual_seed(SEED),
                             timestep_spacing=spacing, progress=False)
    viz.show_images(x, nrow=GRID_SEEDS, ax=ax)
    ax.set_title(f"DDIM, {few} steps, {spacing} spacing (first t = {samplers.sampling_timesteps(1000, few, spacing)[0]})", fontsize=8)
plt.show()
"""),
md(r"""
## 4. A zoo of samplers, one loop

**The ODE view.** Song et al. (2021, [arXiv:2011.13456](https://arxiv.org/abs/2011.13456)) showed that the
deterministic sampler follows an ordinary differential equation, the *probability-flow ODE*: write
$x_t = \sqrt{\bar\alpha_t}\,(x_0 + \sigma_t\,\epsilon)$ with the noise-to-signal ratio $\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$;
in the rescaled variable $y = x/\sqrt{\bar\alpha_t}$ the ODE is simply $dy/d\sigma = \hat\epsilon(y, \sigma)$, and a DDIM
step is exactly one Euler step of it (DDIM paper, eq. 14). (This $\sigma$ is the noise level of the `diffusers` "discrete"
schedulers, not DDIM's $\sigma_t$ of eq. 16.) Indeed $x_t/\sqrt{\bar\alpha_t} = \hat x_0 + \sigma_t\hat\epsilon$, so the DDIM
update divided by $\sqrt{\bar\alpha_{t'}}$ reads $y_{t'} = y_t + (\sigma_{t'} - \sigma_t)\,\hat\epsilon$ (without clipping).
`diffusers`' `EulerDiscreteScheduler` solves exactly this ODE; on the same timesteps it must give DDIM's digits:
"""),
code("""
# NBVAL_CHECK_OUTPUT
euler = samplers.make_scheduler("euler_karras", use_karras_sigmas=False, timestep_spacing="trailing")  # plain Euler
by_euler, _ = samplers.sample_with_scheduler(model, euler, GRID_SEEDS, DDIM_STEPS, torch.Generator().manual_seed(SEED),
                                             progress=False)
unclipped = samplers.sample_ddim(model, GRID_SEEDS, table, DDIM_STEPS, torch.Generator().manual_seed(SEED),
                                 clip=False, progress=False)
print(f"Euler's method and unclipped DDIM agree to 0.01: {torch.allclose(by_euler, unclipped.clamp(-1, 1), atol=1e-2)}")
"""),
md(r"""
Sampling = solving an ODE from $\sigma_{\max}$ to 0, and numerical analysis offers better solvers than Euler's. The
ones `diffusers` offers, all built by `course_utils.samplers.make_scheduler(name)` for our cosine schedule and
epsilon-prediction:

| name | `diffusers` class | idea | NFE for $N$ steps |
|---|---|---|---|
| `ddpm` | `DDPMScheduler` | ancestral sampling, fresh noise every step (notebook 03) | $N$ |
| `ddim` | `DDIMScheduler` | Euler step of the ODE, $\eta = 0$ (section 2) | $N$ |
| `dpm_solver++` | `DPMSolverMultistepScheduler` | 2nd-order multistep in log-SNR, reuses the previous $\hat x_0$ ([Lu et al. 2022](https://arxiv.org/abs/2211.01095)) | $N$ |
| `euler_karras` | `EulerDiscreteScheduler` | Euler in $\sigma$, on Karras noise levels ([Karras et al. 2022](https://arxiv.org/abs/2206.00364)) | $N$ |
| `heun_karras` | `HeunDiscreteScheduler` | Heun's 2nd-order method: each step evaluated twice, then averaged | $2N - 1$ |
| `unipc` | `UniPCMultistepScheduler` | predictor-corrector, the corrector reuses the next step's evaluation ([Zhao et al. 2023](https://arxiv.org/abs/2302.04867)) | $N$ |

Multistep solvers (DPM-Solver++, UniPC) get second order *for free* by remembering earlier evaluations; Heun
pays for it with a second call per step. That is why we compare samplers at equal **NFE**, not equal steps.

**Settings** (see the docstring of `make_scheduler`): all use trailing spacing where they have one, and all keep
their estimate of $\hat x_0$ inside $[-1, 1]$ where `diffusers` allows it (`clip_sample` for DDPM, DDIM and Heun;
for DPM-Solver++ and UniPC `thresholding=True` with `sample_max_value=1.0`, which reduces Imagen's dynamic
thresholding to plain clipping). Euler has no such option. DPM-Solver++ also gets `lambda_min_clipped=-5.1`,
which the `diffusers` documentation calls critical for the cosine schedule.

**The loop.** Every `diffusers` scheduler is driven the same way, which `samplers.sample_with_scheduler` does
in ten lines: `set_timesteps(N)`; start from `init_noise_sigma` times Gaussian noise; for each entry of
`scheduler.timesteps`, call the network on `scale_model_input(x, t)` and hand its output to `step`. It counts
the network calls as it goes. Where does each sampler evaluate the network? Here are the noise levels $\sigma$
visited, one point per evaluation:
"""),
code("""
log_sigma = (0.5 * torch.log((1 - table) / table)).double().numpy()
N_SHOW = STEP_COUNTS[len(STEP_COUNTS) // 2]
fig, ax = plt.subplots(figsize=(8, 3.2))
for name in SAMPLER_NAMES:
    scheduler = samplers.make_scheduler(name)
    scheduler.set_timesteps(N_SHOW)
    sigmas = np.exp(np.interp(scheduler.timesteps.double().numpy(), np.arange(1000), log_sigma))
    ax.plot(range(1, len(sigmas) + 1), sigmas, marker="o", markersize=3, label=f"{name}: {len(sigmas)} evaluations")
for level, label, style in [(1, "noise = signal", ":"), (80, "sigma_max = 80 of Karras et al.", "--")]:
    ax.axhline(level, color="gray", linestyle=style)
    ax.text(0.99, level, label, transform=ax.get_yaxis_transform(), ha="right", va="bottom", fontsize=7)
ax.set_yscale("log"); ax.set_xlabel("network evaluation"); ax.set_ylabel("noise level sigma_t")
ax.xaxis.get_major_locator().set_params(integer=True)
ax.set_title(f"where the samplers look, {N_SHOW} steps")
ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5)); plt.show()
"""),
md(r"""
Read the plot before the measurements. The cosine schedule caps the last $\beta$ at 0.999, so at $t = 999$ the
noise level is $\sigma \approx 2\cdot 10^4$: nothing of the image is visible. Karras et al. space their noise levels
as $\sigma_i^{1/\rho}$ evenly with $\rho = 7$ between $\sigma_{\max}$ and $\sigma_{\min}$, which puts many steps at
small $\sigma$ where detail is decided, but when $\sigma_{\max}$ is taken from this schedule it also spends several of
a few steps at levels hundreds of times the image's scale. (For images in $[-1, 1]$ their paper uses
$\sigma_{\max} = 80$; exercise 3 tries it.) The evenly spaced samplers instead make one big jump from pure noise.
Which is better for *this* model is what section 6 measures.

## 5. Measuring samples: what FID does and does not tell us

**FID** (Fréchet Inception Distance, Heusel et al. 2017, [arXiv:1706.08500](https://arxiv.org/abs/1706.08500))
compares two sets of images through a feature extractor: fit a Gaussian to the features of each set and take
the Fréchet (2-Wasserstein) distance between the Gaussians,

$$\mathrm{FID} = \|\mu_r - \mu_g\|^2 + \mathrm{Tr}\big(\Sigma_r + \Sigma_g - 2\,(\Sigma_r\Sigma_g)^{1/2}\big).$$

The mean term sees *what* is drawn on average, the covariance term the *spread*: a sampler that makes perfect
digits of one class only, or blurry averages, is far from the real distribution in both. Lower is better.

**Why not the usual Inception network?** Published FIDs use Inception-v3 features, which need a download
(the course runs offline) and come from a network trained on 299×299 ImageNet photographs: a 28×28 digit
upscaled to 299×299 is far from anything it saw, and its 2048 features mostly describe textures and objects
that digits do not have. The course uses the 128 penultimate-layer features of its own MNIST classifier
(`course_utils.metrics`, notebook 03), which respond to strokes and digit shapes. The price: our "MNIST FID"
can only be compared with itself (same classifier, same sample count), never with published numbers.

**FID is biased upwards at small sample counts.** $\mu$ and $\Sigma$ are *estimated* from $n$ images, and the
estimation errors do not cancel: they add to the distance on average, less and less as $n$ grows. Two disjoint
sets of *real* test digits come from the same distribution and should be at distance 0. They are not:
"""),
code("""
# NBVAL_CHECK_OUTPUT
sizes = sorted({50, 100, 200, 500, NUM_SAMPLES})
floors = {}
for size in sizes:
    real_a, real_b = metrics.real_feature_sets(classifier, size, seed=SEED)
    floors[size] = metrics.mnist_fid(real_a, real_b)
    print(f"real vs real, {size:>4} digits each: FID {floors[size]:6.1f}")
"""),
code("""
plt.figure(figsize=(5, 2.8))
plt.plot(sizes, [floors[s] for s in sizes], marker="o")
plt.xscale("log"); plt.xlabel("digits per set"); plt.ylabel("FID, real vs real")
plt.title("the data floor: FID of real data against real data"); plt.show()
"""),
md(r"""
So a number like "FID 30" means nothing without the sample count, and with a few hundred samples even
perfect samples score well above 0. The rules we follow: compare FIDs only at **equal sample counts**, always
print the **data floor** (real vs real at that count) beside them, and regenerate important tables with more
samples (`scripts/benchmark_samplers.py` uses 1,000). Below $n = 128$ samples the covariance of our 128 features
cannot even be of full rank: the notebook's default of 100 samples per run keeps it fast, and makes its table a
rough guide rather than a ranking.

**The classifier measures** complement FID: the **confident share** (fraction of samples the classifier
assigns to one digit with probability ≥ 0.9) asks "is each sample a clear digit?", and the **class histogram**
asks "are all ten digits drawn?". Each misses what the other sees, and a classifier can also be confidently
wrong: an image of mostly noise may fall far from every real digit in feature space and still get a confident
label. So we read the confident share only next to the FID and the pictures. A "sampler" that returns real
digits, but only ones, is perfectly confident and still far from the data:
"""),
code("""
# NBVAL_CHECK_OUTPUT
test_images, test_labels = mnist_tensors("test")
reference, other_real = metrics.real_feature_sets(classifier, NUM_SAMPLES, seed=SEED)
only_ones = test_images[test_labels == 1][:NUM_SAMPLES]
fake = metrics.evaluate_samples(classifier, only_ones, reference)
print(f"{len(only_ones)} real ones: confident share {fake['confident_share']:.2f}, "
      f"FID {fake['fid']:.0f} (data floor {metrics.mnist_fid(reference, other_real):.0f})")
"""),
md(r"""
## 6. The measurement: every sampler at every step count

Each run below samples `NUM_SAMPLES` digits with one sampler and one step count, from a generator reseeded with
`SEED`: image $i$ starts from the same $x_T$ in every run. We record the NFE, the wall time, the MNIST FID
against a fixed set of real digits, and the confident share, and add DDPM with `REFERENCE_STEPS` steps as the
reference that the fast samplers try to match.
"""),
code("""
data_floor = metrics.mnist_fid(reference, other_real)
runs = [(name, steps) for name in SAMPLER_NAMES for steps in STEP_COUNTS] + [("ddpm", REFERENCE_STEPS)]
results, images = {}, {}
for name, steps in tqdm(runs, desc="sampler runs"):
    if (name, steps) in results:  # the reference may already be among the runs
        continue
    start = time.perf_counter()
    x, nfe = samplers.sample_with_scheduler(model, samplers.make_scheduler(name), NUM_SAMPLES, steps,
                                            torch.Generator().manual_seed(SEED), progress=False)
    seconds = time.perf_counter() - start
    results[name, steps] = {"nfe": nfe, "ms_per_image": 1000 * seconds / NUM_SAMPLES,
                            **metrics.evaluate_samples(classifier, x, reference)}
    images[name, steps] = x
"""),
code("""
def print_table(with_time):
    print(f"{NUM_SAMPLES} samples per run; MNIST FID data floor at this size: {data_floor:.1f}")
    header = f"{'sampler':<14}{'steps':>6}{'NFE':>6}{'FID':>9}{'confident':>11}" + (f"{'ms/image':>10}" if with_time else "")
    print(header + "\\n" + "-" * len(header))
    for (name, steps), r in sorted(results.items(), key=lambda item: (item[1]["nfe"], item[0])):
        row = f"{name:<14}{steps:>6}{r['nfe']:>6}{r['fid']:>9.1f}{r['confident_share']:>11.2f}"
        print(row + (f"{r['ms_per_image']:>10.1f}" if with_time else ""))

print_table(with_time=True)
"""),
md(r"""
The same table without the timings (which differ from run to run), sorted by cost:
"""),
code("""
# NBVAL_CHECK_OUTPUT
print_table(with_time=False)
"""),
code("""
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for name in SAMPLER_NAMES:
    rows = [(results[name, s]["nfe"], results[name, s]) for s in STEP_COUNTS]
    for ax, key in zip(axes, ["fid", "confident_share", "ms_per_image"]):
        ax.plot([n for n, _ in rows], [r[key] for _, r in rows], marker="o", label=name)
reference_run = results["ddpm", REFERENCE_STEPS]
for ax, key in zip(axes, ["fid", "confident_share", "ms_per_image"]):
    ax.plot(reference_run["nfe"], reference_run[key], marker="*", markersize=12, color="black", linestyle="none",
            label=f"DDPM {REFERENCE_STEPS}")
    ax.set_xscale("log"); ax.set_xlabel("network evaluations (NFE)")
axes[0].axhline(data_floor, color="gray", linestyle="--", label="data floor")
axes[0].set_yscale("log"); axes[0].set_ylabel("MNIST FID (lower is better)")
axes[1].set_ylabel("confident share (higher is better)"); axes[2].set_ylabel("ms per image"); axes[2].set_yscale("log")
axes[0].legend(fontsize=7); fig.suptitle(f"speed against quality, {NUM_SAMPLES} samples per point"); plt.show()
"""),
md(r"""
How to read it:

- **Time follows NFE.** The third panel is close to a straight line through all samplers: the solvers' own
  arithmetic is free next to the network. So NFE is the fair x-axis, and Heun's points sit to the right of the
  others at the same step count.
- **Quality per NFE is what distinguishes samplers.** Compare each curve with the DDPM reference star and with
  the data floor. A sampler is better if it reaches the same FID with fewer evaluations. Higher-order and
  deterministic samplers usually gain most at few steps; with enough steps all of them approach the same
  distribution, the one the network learned.
- **Small differences are noise.** The FID of a fixed number of samples also varies from one draw of samples to
  the next: run the notebook again with another `SEED` to see by how much. With `NUM_SAMPLES` digits per point,
  differences of that size are not a ranking. `scripts/benchmark_samplers.py` repeats this table with 1,000
  samples and up to 1,000 steps (`docs/sampler_table.md`).

## 7. Looking at the samples

**Too few steps.** The same seeds (the first four images of every run) for each sampler (rows) and step count
(columns):
"""),
code("""
fig, axes = plt.subplots(len(SAMPLER_NAMES), len(STEP_COUNTS), figsize=(2.2 * len(STEP_COUNTS), 0.75 * len(SAMPLER_NAMES)),
                         squeeze=False)
for row, name in enumerate(SAMPLER_NAMES):
    for col, steps in enumerate(STEP_COUNTS):
        axes[row, col].imshow(viz.image_grid(images[name, steps][:4], nrow=4), cmap="gray", vmin=0, vmax=1)
        axes[row, col].set_xticks([]); axes[row, col].set_yticks([])
        if col == 0:
            axes[row, col].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        if row == 0:
            axes[row, col].set_title(f"{steps} steps", fontsize=9)
plt.show()
"""),
md(r"""
**Same seed, different samplers; different seeds.** At the largest step count, one column per sampler and one
row per seed (plus the DDPM reference on the right). The deterministic samplers solve the same ODE from the
same $x_T$, so as they converge they draw the *same* digit in each row: the noise $x_T$ is a code for the
image. (Clipping $\hat x_0$ changes the ODE a little, so Euler, which cannot clip, may settle on somewhat different
digits.) DDPM draws fresh noise at every step, so its digit is a different one. Down each column: variety.
"""),
code("""
columns = [(name, STEP_COUNTS[-1]) for name in SAMPLER_NAMES] + [("ddpm", REFERENCE_STEPS)]
fig, axes = plt.subplots(1, len(columns), figsize=(1.1 * len(columns), 0.6 * GRID_SEEDS + 0.5))
for ax, (name, steps) in zip(np.atleast_1d(axes), columns):
    ax.imshow(viz.image_grid(images[name, steps][:GRID_SEEDS], nrow=1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{name}\\n{steps} steps", fontsize=7); ax.set_axis_off()
plt.show()
"""),
md(r"""
How close are they, in numbers? The mean absolute pixel difference (images in $[-1, 1]$) between each pair of
runs at the largest step count (and the reference), over all `NUM_SAMPLES` images, labelled sampler/steps:
"""),
code("""
labels = [f"{name}/{steps}" for name, steps in columns]
print(" " * 16 + "".join(f"{label:>16}" for label in labels))
for label, (name_a, steps_a) in zip(labels, columns):
    distances = [(images[name_a, steps_a] - images[name_b, steps_b]).abs().mean().item() for name_b, steps_b in columns]
    print(f"{label:<16}" + "".join(f"{d:>16.3f}" for d in distances))
"""),
md(r"""
## Exercises

### Exercise 1: DDIM inversion, from a digit to its noise

Because deterministic DDIM maps each $x_T$ to one image, it can be run **backwards** to find the $x_T$ of a
given image (Song et al. 2021, section 5.4). The update is the same formula with $t'$ *later* than $t$:
estimate $\hat x_0$ from $x_t$ and $\hat\epsilon$ (no clipping here: we want the step to be exactly invertible),
then mix: $x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t'}}\,\hat\epsilon$.

Write `ddim_invert_step(eps, t, next_t, x_t, alpha_bar)` computing the predicted-$x_0$ term and the direction
term. The cells after it encode real digits into noise, one step up at a time, and decode that noise with
`sample_ddim`'s steps. How well are the digits reconstructed?
"""),
code("""
def ddim_invert_step(eps, t, next_t, x_t, alpha_bar):
    ### BEGIN SOLUTION
    x0_hat = (x_t - (1 - alpha_bar[t]).sqrt() * eps) / alpha_bar[t].sqrt()
    direction = (1 - alpha_bar[next_t]).sqrt() * eps
    return alpha_bar[next_t].sqrt() * x0_hat + direction
    ### END SOLUTION
"""),
code("""
eps = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(SEED))
x_200 = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(SEED + 1))
up = ddim_invert_step(eps, 200, 600, x_200, alpha_bar)
back = samplers.ddim_step(eps, 600, 200, up, alpha_bar, clip=False)
assert up.shape == x_200.shape, "ddim_invert_step must return an image batch of the input's shape"
assert torch.allclose(back, x_200, atol=1e-4), "with the same eps, a DDIM step down must undo your step up"
### BEGIN HIDDEN TESTS
torch.testing.assert_close(up, samplers.ddim_step(eps, 200, 600, x_200, alpha_bar, clip=False), atol=1e-5, rtol=1e-5)
### END HIDDEN TESTS
print("the step up and the step down are inverse to each other")
"""),
code("""
levels = [0] + samplers.sampling_timesteps(1000, DDIM_STEPS, "trailing").flip(0).tolist()  # 0, then up to 999
x = test_images[:GRID_SEEDS]
with torch.no_grad():
    for t, next_t in zip(levels[:-1], levels[1:]):
        x = ddim_invert_step(model(x, torch.full((GRID_SEEDS,), t)), t, next_t, x, alpha_bar)
    encoded = x
    for t, prev_t in zip(levels[::-1], levels[::-1][1:] + [-1]):
        x = samplers.ddim_step(model(x, torch.full((GRID_SEEDS,), t)), t, prev_t, x, alpha_bar)
print(f"encoded noise: mean {encoded.mean():.2f}, std {encoded.std():.2f} (pure noise: 0 and 1)")
print(f"reconstruction: mean |x - digit| = {(x - test_images[:GRID_SEEDS]).abs().mean():.3f} on a scale of [-1, 1]")
viz.show_images(torch.cat([test_images[:GRID_SEEDS], encoded.clamp(-1, 1), x]), nrow=GRID_SEEDS,
                title="digits / their DDIM-encoded noise / decoded again"); plt.show()
"""),
md(r"""
### Exercise 2: the fewest steps for a given quality

A practical question: for each sampler, what is the fewest number of steps (in `STEP_COUNTS`, plus the reference
run) whose FID is at most a target? Write `fewest_steps(results, sampler, target_fid)` that returns that step
count from the `results` dictionary of section 6 (keys `(sampler, steps)`, values with a `"fid"` entry), or `None`
if no run of that sampler reaches the target. The cell below uses "within 25% of the DDPM reference's FID" and
reports the NFE it costs.
"""),
code("""
def fewest_steps(results, sampler, target_fid):
    ### BEGIN SOLUTION
    good = [steps for (name, steps), r in results.items() if name == sampler and r["fid"] <= target_fid]
    return min(good) if good else None
    ### END SOLUTION

target = 1.25 * results["ddpm", REFERENCE_STEPS]["fid"]
print(f"target: FID <= {target:.1f} (1.25 x DDPM with {REFERENCE_STEPS} steps)")
for name in SAMPLER_NAMES:
    steps = fewest_steps(results, name, target)
    print(f"{name:<14}" + (f"{steps:>4} steps = {results[name, steps]['nfe']:>4} NFE" if steps else "  not reached"))
"""),
code("""
toy = {("a", 5): {"fid": 50.0}, ("a", 10): {"fid": 20.0}, ("a", 20): {"fid": 21.0}, ("b", 5): {"fid": 10.0}}
assert fewest_steps(toy, "a", 25.0) == 10, "10 steps is the fewest with FID <= 25 for sampler 'a'"
assert fewest_steps(toy, "a", 5.0) is None, "return None when no run reaches the target"
### BEGIN HIDDEN TESTS
assert fewest_steps(toy, "b", 10.0) == 5
assert fewest_steps(toy, "c", 100.0) is None
for name in SAMPLER_NAMES:
    reached = [s for (n, s), r in results.items() if n == name and r["fid"] <= target]
    assert fewest_steps(results, name, target) == (min(reached) if reached else None)
### END HIDDEN TESTS
"""),
md(r"""
### Exercise 3 (open): tune a sampler, then measure again

Pick one of these and measure it like section 6, at equal NFE, against the data floor:

- Euler on Karras levels with the $\sigma_{\max} = 80$ of Karras et al. instead of the schedule's $2\cdot 10^4$:
  `samplers.make_scheduler("euler_karras", sigma_max=80.0)`. Does spending fewer steps at invisible noise levels help?
- Clipping: `samplers.make_scheduler(name, clip=False)` for DDIM or DPM-Solver++. How much of their quality at
  few steps comes from keeping $\hat x_0$ in $[-1, 1]$?
- Stochastic DDIM: `samplers.sample_ddim(..., eta=0.5)` and `eta=1.0`. Where between DDIM and DDPM does it land?

"""),
*quick_check(4),
md(r"""
## What's next

The sampler is now a choice you can measure rather than a default. Keep the habit for whatever you change next,
in the model or in the sampling: report its cost in NFE, and its quality as an MNIST FID at a stated sample count,
next to the data floor.
"""),
]

if __name__ == "__main__":
    write(notebook(FILENAME, TITLE, PARAMETERS, CELLS), FILENAME)
