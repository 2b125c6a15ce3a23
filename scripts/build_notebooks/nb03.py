"""Generate notebooks/03_pixel_ddpm.ipynb (no outputs; run scripts/execute_notebooks.py after).

    python scripts/build_notebooks/nb03.py && python scripts/execute_notebooks.py notebooks/03_pixel_ddpm.ipynb
"""
from common import code, md, notebook, quick_check, write

FILENAME = "03_pixel_ddpm.ipynb"

TITLE = r"""
# 03 · A tiny pixel-space DDPM on MNIST

{badge}

In notebook 01 an *oracle* told us the noise in an image, and subtracting it step by step revealed a digit.
In notebook 02 we wrote the forward process $q(x_t \mid x_0)$ that adds noise in closed form.
Now we train a neural network to play the oracle: a **denoising diffusion probabilistic model**
(DDPM, [Ho et al. 2020](https://arxiv.org/abs/2006.11239)) that predicts the noise $\epsilon$ in $x_t$,
and then we sample digits from pure noise.

You will:
1. build the noise predictor, a small **UNet** with a timestep embedding, and meet its `diffusers` twin;
2. write the **epsilon loss** and watch it fall in a one-minute live training run;
3. load the course's **shipped checkpoint**, trained for much longer by `scripts/train_ddpm.py`;
4. write the **DDPM ancestral sampler** by hand and check it against `diffusers.DDPMScheduler`;
5. **measure** the digits: an MNIST FID against its data floor, and how many digits a classifier reads with confidence.

*Runs in about 2 minutes on a 2-core CPU with the defaults below.*
"""

PARAMETERS = """
SEED = 0  # seeds every random generator
THREADS = 2  # CPU threads; results depend on it
LIVE_TRAIN_STEPS = 120  # optimizer steps of the live demo run (the shipped model had thousands)
LIVE_BATCH_SIZE = 64  # images per step in the live run
SAMPLING_STEPS = 100  # DDPM sampler steps (1 to 1000)
NUM_SAMPLES = 64  # digits shown in the grids
EVAL_SAMPLES = 256  # digits generated for the quality measures
"""

CELLS = [
code("""
import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, display
from tqdm.auto import tqdm

from course_utils import ddpm, metrics, unet, viz
from course_utils.data import mnist_tensors
from course_utils.homework import check_range, check_shape
from course_utils.runtime import setup
from course_utils.schedules import alphas_cumprod, make_betas, q_sample

for name, value, low, high in [("LIVE_TRAIN_STEPS", LIVE_TRAIN_STEPS, 1, 100_000), ("LIVE_BATCH_SIZE", LIVE_BATCH_SIZE, 1, 4096),
                               ("SAMPLING_STEPS", SAMPLING_STEPS, 1, 1000), ("NUM_SAMPLES", NUM_SAMPLES, 1, 10_000),
                               ("EVAL_SAMPLES", EVAL_SAMPLES, 2, 5000)]:
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
device = setup(seed=SEED, threads=THREADS)
images, labels = mnist_tensors("train")
alpha_bar = alphas_cumprod(make_betas("cosine", 1000)).float()
print(f"{len(images)} training digits, shape {tuple(images.shape[1:])}, values in [{images.min():.0f}, {images.max():.0f}]")
"""),
md(r"""
## 1. What the network must learn

Notebook 02 gave us $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ with $\epsilon \sim \mathcal N(0, I)$.
If a network $\epsilon_\theta(x_t, t)$ could tell us $\epsilon$, we could undo the noise. DDPM trains it with
the simplest possible objective (Ho et al., algorithm 1):

$$L_\text{simple} = \mathbb E_{x_0,\,t,\,\epsilon}\Big[\big\| \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\big)\big\|^2\Big]$$

with $t$ uniform over $0 \dots T-1$. The network sees the same digit at every noise level, and must
know *which* level it is looking at: a little noise on a clean digit and a lot of noise on a faint one need
different answers. So $t$ is an input too.

We use the **cosine schedule** of notebook 02 with $T = 1000$: on 28×28 digits the linear schedule destroys
the image within the first third of the steps, so most training time would be spent on pure noise.
"""),
md(r"""
## 2. The noise predictor: a small UNet

A UNet maps an image to an image of the same size. It encodes (28 → 14 → 7 pixels, more channels at each
level), processes the coarse picture where every pixel can see the whole digit, then decodes back to 28×28,
concatenating the encoder's features of the same size (the *skip connections*) so fine detail is not lost.
Every block also receives the timestep.

The timestep enters as a **sinusoidal embedding**, the transformer's position encoding: $t$ becomes a
vector of $\cos(t\,\omega_i)$ and $\sin(t\,\omega_i)$ at geometrically spaced frequencies $\omega_i$, so
nearby timesteps get similar vectors and the network can read off both coarse and fine differences.
"""),
code("""
import math

def timestep_embedding(timesteps, dim, max_period=10_000.0):
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half) / half)  # omega_i
    angles = timesteps.float()[:, None] * frequencies[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)

embedding = timestep_embedding(torch.arange(1000), 32)
plt.figure(figsize=(7, 2.2))
plt.imshow(embedding.T, aspect="auto", cmap="RdBu")
plt.xlabel("timestep t"); plt.ylabel("embedding dimension"); plt.title("sinusoidal timestep embedding")
plt.colorbar(); plt.show()
"""),
md(r"""
Each block of the UNet is a **residual block**: normalise, activate, convolve, add the (projected)
timestep embedding to every pixel, do it again, and add the input back. This is the whole idea of the block:
"""),
code("""
from torch import nn
from torch.nn import functional as F

class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, time_dim, groups=8):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_channels)
        self.norm2, self.conv2 = nn.GroupNorm(groups, out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x, time_emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_proj(F.silu(time_emb))[:, :, None, None]  # "which noise level?" on every pixel
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)
"""),
md(r"""
`course_utils.unet` holds these two pieces (the same code), a self-attention layer for the 7×7 bottleneck,
and `TinyUNet`, which stacks them: one residual block per level on the way down and up, widths 32, 64, 128.
We check that the copies agree, then look at the whole model.
"""),
code("""
# NBVAL_CHECK_OUTPUT
torch.testing.assert_close(timestep_embedding(torch.arange(1000), 32), unet.timestep_embedding(torch.arange(1000), 32))
block, library_block = ResidualBlock(32, 64, 128), unet.ResidualBlock(32, 64, 128)
library_block.load_state_dict(block.state_dict())
x, time_emb = torch.randn(2, 32, 14, 14), torch.randn(2, 128)
torch.testing.assert_close(block(x, time_emb), library_block(x, time_emb))
model = unet.TinyUNet((32, 64, 128))
print(f"TinyUNet: {unet.count_parameters(model):,} parameters; output shape {tuple(model(images[:2], torch.tensor([10, 900])).shape)}")
"""),
md(r"""
### The library equivalent: `diffusers.UNet2DModel`

`diffusers` ships the same architecture family, configured by block types. Here is one of about the same
size. It returns an object whose `.sample` is the predicted noise; otherwise the contract is identical:
`(x_t, t) -> ε̂` of the same shape. We keep our own UNet for the course because every line of it is
readable in one file, and because on this CPU it trains about 1.5× faster at equal size.
"""),
code("""
from diffusers import UNet2DModel

library_unet = UNet2DModel(
    sample_size=28, in_channels=1, out_channels=1, layers_per_block=1, norm_num_groups=8,
    block_out_channels=(32, 64, 128),
    down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
    up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
)
eps_hat = library_unet(images[:2], torch.tensor([10, 900])).sample
print(f"UNet2DModel: {unet.count_parameters(library_unet):,} parameters; output shape {tuple(eps_hat.shape)}")
"""),
md(r"""
## 3. The epsilon loss, by hand

Algorithm 1 of the paper, line by line: pick timesteps, draw noise, noise the batch in closed form
(`q_sample` from notebook 02), predict, and take the mean squared error.
"""),
code("""
def ddpm_loss(model, x0, alpha_bar, generator=None):
    t = torch.randint(0, len(alpha_bar), (x0.shape[0],), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    x_t = q_sample(x0, t, noise, alpha_bar)
    return torch.mean((model(x_t, t) - noise) ** 2)

batch = images[:16]
mine = ddpm_loss(model, batch, alpha_bar, torch.Generator().manual_seed(1))
library = ddpm.ddpm_loss(model, batch, alpha_bar, torch.Generator().manual_seed(1))
print(f"hand-written loss {mine:.4f}, course_utils.ddpm.ddpm_loss {library:.4f}")
"""),
md(r"""
An untrained network outputs roughly nothing, so the loss starts near $\mathbb E\|\epsilon\|^2/d = 1$.

## 4. A live training run

A short run with AdamW, a learning-rate warm-up (a freshly initialised UNet with a large step size can
diverge), gradient clipping, and an **exponential moving average** (EMA) of the weights:
$\theta_\text{EMA} \leftarrow d\,\theta_\text{EMA} + (1-d)\,\theta$. Sampling uses the EMA weights: they
average out the jitter of the last SGD steps and give visibly cleaner digits.
"""),
code("""
torch.manual_seed(SEED)
live_model = unet.TinyUNet((32, 64, 128))
ema = ddpm.EMA(live_model, decay=0.999)
optimizer = torch.optim.AdamW(live_model.parameters(), lr=1e-3)
losses = []
for step in tqdm(range(LIVE_TRAIN_STEPS), desc="live training"):
    generator = torch.Generator().manual_seed(SEED * 1_000_003 + step)
    x0 = images[torch.randint(0, len(images), (LIVE_BATCH_SIZE,), generator=generator)]
    optimizer.param_groups[0]["lr"] = 1e-3 * min(1.0, (step + 1) / 100)  # warm-up
    loss = ddpm.ddpm_loss(live_model, x0, alpha_bar, generator)
    optimizer.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(live_model.parameters(), 1.0)
    optimizer.step(); ema.update(live_model)
    losses.append(loss.item())
"""),
code("""
plt.figure(figsize=(6, 3))
plt.plot(losses, alpha=0.4, label="per step")
window = max(1, len(losses) // 10)
plt.plot(range(window - 1, len(losses)), torch.tensor(losses).unfold(0, window, 1).mean(1), label=f"mean of {window}")
plt.yscale("log"); plt.xlabel("step"); plt.ylabel("epsilon MSE"); plt.legend(); plt.title("live training run")
plt.show()
"""),
code("""
# NBVAL_CHECK_OUTPUT
first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
print(f"loss over the first 10 steps: {first:.1f}; over the last 10: {last:.2f}")
print(f"fell by more than half: {last < first / 2}")
"""),
md(r"""
The loss falls fast, but a loss of ~0.1 does not yet make digits: the network first learns to remove the
easy, high-frequency noise. Readable digits take thousands of steps. The course ships a model trained for
longer by `scripts/train_ddpm.py` (resumable; its manifest records the exact command, seed, steps and
wall time). Re-create it with the command shown below, or train longer by raising `--steps`.

**Why this model?** On a CPU, time per step grows with the width at 28×28 resolution, where most of the
compute goes. Widths 32/64/128 with one block per level (1.4M parameters, about 0.3 s per batch of 64 on
two cores) and attention only at 7×7 keep that cost low; the cosine schedule keeps training signal at
every $t$; epsilon prediction with the plain MSE is the objective whose samplers `diffusers` supports
everywhere; a short EMA (0.999) suits a run of thousands rather than hundreds of thousands of steps.
"""),
code("""
# NBVAL_CHECK_OUTPUT
shipped_model, shipped_alpha_bar, manifest = ddpm.load_ddpm()
print(f"shipped checkpoint: {manifest['file']}, {manifest['parameters']:,} parameters")
print(f"trained {manifest['steps']:,} steps of batch {manifest['batch_size']}, seed {manifest['seed']}, "
      f"{manifest['wall_time_minutes']:.0f} min on a {manifest['machine']}")
print(f"rebuild with: {manifest['command']}")
torch.testing.assert_close(shipped_alpha_bar, alpha_bar)
"""),
md(r"""
## 5. Sampling: the DDPM ancestral sampler, by hand

To generate, start from $x_T \sim \mathcal N(0, I)$ and walk back. At each step the network's $\hat\epsilon$
gives an estimate of the clean image, $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$
(clipped to the data range $[-1, 1]$). Given $x_0$, the forward process can be run *backwards* exactly: the
posterior $q(x_{t'} \mid x_t, x_0)$ of an earlier step $t' < t$ is Gaussian (Ho et al., eqs. 6–7) with

$$\tilde\mu = \frac{\sqrt{\bar\alpha_{t'}}\,\beta}{1-\bar\alpha_t}\,\hat x_0 + \frac{\sqrt{\alpha}\,(1-\bar\alpha_{t'})}{1-\bar\alpha_t}\,x_t,
\qquad \tilde\sigma^2 = \frac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}\,\beta,
\qquad \alpha = \bar\alpha_t / \bar\alpha_{t'},\ \beta = 1 - \alpha .$$

We draw $x_{t'} = \tilde\mu + \tilde\sigma z$ with fresh noise $z$, except at the last step. With $t' = t - 1$
this is the paper's algorithm 2 over 1000 steps; with $t' = t - 10$ it visits every tenth timestep
("respacing", Nichol & Dhariwal 2021): `SAMPLING_STEPS` steps instead of 1000.
"""),
code("""
def ddpm_step(eps, t, prev_t, x_t, alpha_bar, noise):
    abar_t = alpha_bar[t]
    abar_prev = alpha_bar[prev_t] if prev_t >= 0 else torch.tensor(1.0)
    alpha = abar_t / abar_prev
    beta = 1 - alpha
    x0_hat = ((x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()).clamp(-1, 1)
    mean = (abar_prev.sqrt() * beta / (1 - abar_t)) * x0_hat + (alpha.sqrt() * (1 - abar_prev) / (1 - abar_t)) * x_t
    if prev_t < 0:
        return mean
    return mean + ((1 - abar_prev) / (1 - abar_t) * beta).sqrt() * noise
"""),
md(r"""
The library's `DDPMScheduler.step` does the same computation. Given the same model output, the same noise
and the same $\bar\alpha$ table, the two agree to float precision (`tests/test_ddpm.py` checks this for
several schedules and step counts). We pass the scheduler's own table: it multiplies the $\alpha$s in float32
while `course_utils` does it in float64, and near $t = 0$, where $1-\bar\alpha_t \approx 10^{-5}$, that
rounding alone moves a step by up to $5\cdot10^{-5}$.
"""),
code("""
# NBVAL_CHECK_OUTPUT
from diffusers import DDPMScheduler

scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
scheduler.set_timesteps(SAMPLING_STEPS)
stride = 1000 // SAMPLING_STEPS
x_t, eps = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
for t in [int(scheduler.timesteps[0]), int(scheduler.timesteps[-2])]:
    library = scheduler.step(eps, t, x_t, generator=torch.Generator().manual_seed(t)).prev_sample
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(t))
    mine = ddpm_step(eps, t, t - stride, x_t, scheduler.alphas_cumprod, noise)
    print(f"t={t:>3}: max |hand-written - diffusers| < 1e-6: {(mine - library).abs().max().item() < 1e-6}")
"""),
md(r"""
Now the loop: the timesteps $t = 990, 980, \dots, 0$ for 100 steps, one network call each. We keep
snapshots of $x_t$ to watch the digits appear.
"""),
code("""
timesteps = torch.arange(SAMPLING_STEPS - 1, -1, -1) * stride  # 990, 980, ..., 0
generator = torch.Generator().manual_seed(SEED)
x = torch.randn(NUM_SAMPLES, 1, 28, 28, generator=generator)
frames = []
with torch.no_grad():
    for i, t in enumerate(tqdm(timesteps.tolist(), desc="sampling")):
        eps = shipped_model(x, torch.full((NUM_SAMPLES,), t))
        noise = torch.randn(x.shape, generator=generator) if t > 0 else None
        x = ddpm_step(eps, t, t - stride, x, shipped_alpha_bar, noise)
        if i % max(1, SAMPLING_STEPS // 10) == 0 or t == 0:
            frames.append((t, x.clone()))
samples = x
viz.show_images(samples, nrow=16, title=f"{NUM_SAMPLES} DDPM samples, {SAMPLING_STEPS} steps")
plt.show()
"""),
md(r"""
`course_utils.ddpm.sample_ddpm` is this loop, with the step moved to `course_utils.ddpm.ddpm_step`. Same seed,
same digits:
"""),
code("""
# NBVAL_CHECK_OUTPUT
again = ddpm.sample_ddpm(shipped_model, NUM_SAMPLES, shipped_alpha_bar, SAMPLING_STEPS,
                         generator=torch.Generator().manual_seed(SEED), progress=False)
print(f"same samples as the hand-written loop: {torch.allclose(again, samples, atol=1e-5)}")
"""),
md(r"""
### The denoising trajectory

Each row is one sample; left to right, the sampler's current $x_t$ as $t$ falls from 990 to 0. The coarse
shape of the digit is decided early, at high noise; the last steps only sharpen strokes. The animation plays
the same frames (it needs JavaScript; the static figure is there for renderers without it).
"""),
code("""
viz.show_trajectory(frames, num_images=6)
plt.show()
display(HTML(viz.animate_trajectory([(t, x[:9]) for t, x in frames], nrow=3)))
"""),
md(r"""
## 6. How good are these digits? Measuring, not eyeballing

A picture convinces one reader; a number can be compared across models, samplers and notebooks. The course
measures generated digits with a **small MNIST classifier** trained for this purpose
(`scripts/train_classifier.py`, 99.3% test accuracy; shipped in `data/`):

- **Confident share**: the fraction of samples the classifier assigns to one digit with probability ≥ 0.9.
  A smudge or a half-seven half-one is not confidently anything.
- **Class histogram**: a good model makes every digit about 10% of the time. A model that only draws ones
  would score well on confidence and badly here.
- **MNIST FID**: fit a Gaussian to the classifier's 128-dimensional penultimate-layer features of real digits,
  another to those of generated digits, and take the Fréchet distance between them (Heusel et al. 2017):
  $\|\mu_r-\mu_g\|^2 + \mathrm{Tr}\big(\Sigma_r + \Sigma_g - 2(\Sigma_r\Sigma_g)^{1/2}\big)$. It sees both quality
  and variety. It is the usual FID with the Inception network replaced by a digit classifier.

FID is biased upwards at small sample counts, so it is never 0 even for real data. We always print the
**data floor** beside it: the FID between two disjoint sets of real test digits of the same size.
"""),
code("""
classifier = metrics.load_classifier()
reference, other_real = metrics.real_feature_sets(classifier, EVAL_SAMPLES, seed=SEED)
data_floor = metrics.mnist_fid(reference, other_real)
eval_samples = ddpm.sample_ddpm(shipped_model, EVAL_SAMPLES, shipped_alpha_bar, SAMPLING_STEPS,
                                generator=torch.Generator().manual_seed(SEED + 1))
result = metrics.evaluate_samples(classifier, eval_samples, reference)
"""),
code("""
# NBVAL_CHECK_OUTPUT
print(f"{EVAL_SAMPLES} samples, DDPM {SAMPLING_STEPS} steps")
print(f"MNIST FID {result['fid']:.1f}   (data floor at this size: {data_floor:.1f})")
print(f"confident share (p >= 0.9): {result['confident_share']:.2f}")
print(f"class shares from {result['class_histogram'].min():.2f} to {result['class_histogram'].max():.2f} (uniform: 0.10)")
"""),
code("""
fig, ax = plt.subplots(figsize=(6, 2.5))
ax.bar(range(10), result["class_histogram"], color="tab:blue")
ax.axhline(0.1, color="gray", linestyle="--", label="uniform")
ax.set_xticks(range(10)); ax.set_xlabel("digit the classifier sees"); ax.set_ylabel("share of samples"); ax.legend()
ax.set_title("class histogram of generated digits"); plt.show()
"""),
md(r"""
The shipped model was also measured with 1,000 samples by `scripts/evaluate_ddpm.py`, which wrote the
result into its manifest; with more samples both the FID and its floor are smaller:
"""),
code("""
# NBVAL_CHECK_OUTPUT
quality = manifest["quality"]
print(f"{quality['num_samples']} samples, {quality['sampler']}:")
print(f"MNIST FID {quality['mnist_fid']:.2f} vs data floor {quality['data_floor_fid']:.2f}; "
      f"confident share {quality['confident_share']:.3f}")
print("class shares:", " ".join(f"{digit}:{share:.2f}" for digit, share in enumerate(quality["class_histogram"])))
"""),
md(r"""
## Exercises

### Exercise 1: how many sampling steps do you need?

Sample 64 digits from the shipped model with 10 sampler steps instead of 100 and compute their confident
share with `metrics.classify` and `metrics.confident_share`. Store it in `share_10_steps`.
What do you see in the pictures? (Notebook 04 studies this trade-off with better samplers.)
"""),
code("""
### BEGIN SOLUTION
few_step_samples = ddpm.sample_ddpm(shipped_model, 64, shipped_alpha_bar, 10,
                                    generator=torch.Generator().manual_seed(SEED), progress=False)
_, probabilities = metrics.classify(classifier, few_step_samples)
share_10_steps = metrics.confident_share(probabilities)
### END SOLUTION
viz.show_images(few_step_samples, nrow=16, title=f"10 steps: confident share {share_10_steps:.2f}")
plt.show()
"""),
code("""
check_range("share_10_steps", share_10_steps, 0, 1, hint="metrics.confident_share returns a fraction")
### BEGIN HIDDEN TESTS
reference_samples = ddpm.sample_ddpm(shipped_model, 64, shipped_alpha_bar, 10,
                                     generator=torch.Generator().manual_seed(SEED), progress=False)
assert abs(share_10_steps - metrics.confident_share(metrics.classify(classifier, reference_samples)[1])) < 1e-6
### END HIDDEN TESTS
"""),
md(r"""
### Exercise 2: predict the clean image

Inside every step the sampler estimates $\hat x_0$ from $x_t$ and $\hat\epsilon$. Write `predict_x0(x_t, eps, t)`
for the shipped schedule (without clipping), and use it on a real digit noised to $t = 500$ with the
network's $\hat\epsilon$. How close is the one-shot estimate to the real digit?
"""),
code("""
def predict_x0(x_t, eps, t):
    ### BEGIN SOLUTION
    abar = shipped_alpha_bar[t]
    return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()
    ### END SOLUTION

digit = images[:8]
noise = torch.randn(digit.shape, generator=torch.Generator().manual_seed(SEED))
noisy = q_sample(digit, torch.full((8,), 500), noise, shipped_alpha_bar)
with torch.no_grad():
    estimate = predict_x0(noisy, shipped_model(noisy, torch.full((8,), 500)), 500)
viz.show_images(torch.cat([digit, noisy, estimate.clamp(-1, 1)]), nrow=8, title="real / noised to t=500 / one-shot estimate")
plt.show()
"""),
code("""
check_shape("estimate", estimate, tuple(digit.shape), hint="predict_x0 must return an image batch of the input's shape")
### BEGIN HIDDEN TESTS
torch.testing.assert_close(predict_x0(noisy, noise, 500), digit, atol=1e-4, rtol=1e-4)
### END HIDDEN TESTS
"""),
md(r"""
### Exercise 3 (open): train longer

Run the live training with `LIVE_TRAIN_STEPS = 2000` (about 10 minutes on two cores; set it in the
parameters cell or with `papermill -p LIVE_TRAIN_STEPS 2000`) and sample from `ema.model` instead of the
shipped model. Compare the confident share with the shipped model's. How does it change with 500, 1000, 2000 steps?

"""),
*quick_check(3),
md(r"""
## What's next

The DDPM sampler needed 100 network calls per batch here, and the paper used 1000. Notebook 04 asks how few
steps a *better sampler* can get away with, DDIM, DPM-Solver, Euler, UniPC, measured with the same FID.
"""),
]

if __name__ == "__main__":
    write(notebook(FILENAME, TITLE, PARAMETERS, CELLS), FILENAME)
