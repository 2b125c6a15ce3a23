"""Generate notebooks/05_latent_diffusion.ipynb (no outputs; run scripts/execute_notebooks.py after).

    python scripts/build_notebooks/nb05.py && python scripts/execute_notebooks.py notebooks/05_latent_diffusion.ipynb
"""
from common import code, md, notebook, quick_check, write

FILENAME = "05_latent_diffusion.ipynb"

TITLE = r"""
# 05 · Latent space: a VAE on MNIST, and diffusion in its latents

{badge}

The pixel DDPM of notebook 03 runs its UNet on every one of the 784 pixels at every sampling step. Most of
those numbers are background, and neighbouring pixels say nearly the same thing. **Latent diffusion**
([Rombach et al. 2022](https://arxiv.org/abs/2112.10752), the "LD" in Stable Diffusion) first trains an
**autoencoder** that squeezes an image into a small *latent* and back, and then runs the whole diffusion
process on latents, decoding only the final sample. Stable Diffusion turns a 512×512×3 image into a
64×64×4 latent: 48 times fewer numbers for the UNet at every step.

You will:
1. write the pieces of a **variational autoencoder** (VAE): encoder, reparameterisation, KL term, decoder,
   and check them against `diffusers.AutoencoderKL`, Stable Diffusion's autoencoder class;
2. train one live for a minute, then load the course's **shipped VAE** and measure its reconstructions (PSNR);
3. look inside the latent space: channels as images, interpolation between two digits;
4. compute the **latent scaling factor** (Stable Diffusion's 0.18215) for our VAE;
5. sample from a **latent DDPM**, the UNet of notebook 03 on 8×8×4 latents, and measure it against the pixel model:
   speed, FID, confident share.

*Runs in about 2 minutes on a 2-core CPU with the defaults below.*
"""

PARAMETERS = """
SEED = 0  # seeds every random generator
THREADS = 2  # CPU threads; results depend on it
LIVE_VAE_STEPS = 60  # optimizer steps of the live VAE run (the shipped VAE had 3,000)
LIVE_BATCH_SIZE = 64  # images per step in the live run
KL_WEIGHT = 1e-4  # beta: weight of the KL term per latent number
SAMPLING_STEPS = 100  # DDPM sampler steps (1 to 1000), for both models
NUM_SAMPLES = 64  # digits shown in the grids and timed
EVAL_SAMPLES = 256  # digits generated for the quality measures
"""

CELLS = [
code("""
import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, Markdown, display
from tqdm.auto import tqdm

from course_utils import ddpm, latents, metrics, viz
from course_utils.checkpoints import load_manifest
from course_utils.data import DATA_DIR, mnist_tensors
from course_utils.homework import check_close, check_range
from course_utils.runtime import setup
from course_utils.unet import count_parameters

for name, value, low, high in [("LIVE_VAE_STEPS", LIVE_VAE_STEPS, 1, 100_000), ("LIVE_BATCH_SIZE", LIVE_BATCH_SIZE, 1, 4096),
                               ("SAMPLING_STEPS", SAMPLING_STEPS, 1, 1000), ("NUM_SAMPLES", NUM_SAMPLES, 1, 10_000),
                               ("EVAL_SAMPLES", EVAL_SAMPLES, 2, 5000)]:
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
if not isinstance(KL_WEIGHT, (int, float)) or not 0 <= KL_WEIGHT <= 1:
    raise ValueError(f"KL_WEIGHT must be a number in [0, 1], got {KL_WEIGHT!r}")
device = setup(seed=SEED, threads=THREADS)
images, labels = mnist_tensors("train")
test_images, test_labels = mnist_tensors("test")
"""),
md(r"""
## 1. An autoencoder, made variational

An **autoencoder** is two networks: an encoder $E$ that maps an image $x$ to a smaller latent $z$, and a
decoder $D$ that maps it back, trained so that $D(E(x)) \approx x$. For diffusion we want more than
compression: the latents must form a smooth, bounded space, or the diffusion model would have to learn
an arbitrary, spiky distribution. A **variational** autoencoder (VAE, [Kingma & Welling 2014](https://arxiv.org/abs/1312.6114))
gets there with two changes:

- the encoder outputs a Gaussian $q(z \mid x) = \mathcal N(\mu(x), \sigma^2(x))$ per latent number instead
  of a single point, and the decoder is trained on samples of it, so nearby latents must decode to similar images;
- a **KL term** pulls each $q(z \mid x)$ towards $\mathcal N(0, I)$, keeping the latents near the origin:

$$L = \underbrace{\|D(z) - x\|^2}_\text{reconstruction} + \beta\,\underbrace{\mathrm{KL}\big(\mathcal N(\mu, \sigma^2)\,\|\,\mathcal N(0, 1)\big)}_{\frac12(\mu^2 + \sigma^2 - 1 - \log\sigma^2)},
\qquad z = \mu + \sigma\,\epsilon,\ \epsilon \sim \mathcal N(0, I).$$

Writing the sample as $z = \mu + \sigma\epsilon$ is the **reparameterisation trick**: the randomness sits in
$\epsilon$, so gradients flow through $\mu$ and $\sigma$. The encoder predicts $\log\sigma^2$ (any real
number is a valid log-variance). Stable Diffusion's autoencoder uses a tiny $\beta$ (it cares about sharp
reconstructions; the scale is fixed afterwards, section 4); ours uses $\beta = 10^{-4}$ per latent number.
"""),
code("""
def reparameterise(mean, logvar, generator=None):
    noise = torch.randn(mean.shape, generator=generator)
    return mean + torch.exp(0.5 * logvar) * noise  # z = mu + sigma * eps

def kl_to_standard_normal(mean, logvar):  # summed over each image's latent numbers -> [N]
    return 0.5 * torch.sum(mean**2 + logvar.exp() - 1.0 - logvar, dim=(1, 2, 3))
"""),
md(r"""
The course's VAE is `diffusers.AutoencoderKL` (the class of Stable Diffusion's VAE) at toy size, so the
pipeline of notebook 07 can use it unchanged. MNIST's 28×28 digits are padded to 32×32 with background: two
halvings give an **8×8×4 latent** (Stable Diffusion halves three times, 512 → 64). Its encoder returns
the Gaussian as a `DiagonalGaussianDistribution`; our two functions must agree with its `sample` and `kl`:
"""),
code("""
# NBVAL_CHECK_OUTPUT
print(latents.vae_config())
vae = latents.make_vae()
x = latents.pad_to_32(images[:8])
posterior = vae.encode(x).latent_dist
z = reparameterise(posterior.mean, posterior.logvar, torch.Generator().manual_seed(SEED))
torch.testing.assert_close(z, posterior.sample(torch.Generator().manual_seed(SEED)))
torch.testing.assert_close(kl_to_standard_normal(posterior.mean, posterior.logvar), posterior.kl())
print(f"{count_parameters(vae):,} parameters; image {tuple(x.shape[1:])} -> latent {tuple(z.shape[1:])} "
      f"-> image {tuple(vae.decode(z).sample.shape[1:])}")
print(f"compression: {latents.compression_ratio():.0f}x fewer numbers (Stable Diffusion: 48x)")
"""),
md(r"""
`course_utils.latents` holds the same two functions (`reparameterise`, `kl_to_standard_normal`) and the
loss, `vae_loss(vae, images, kl_weight)`: mean squared error per pixel plus $\beta$ times the KL per latent
number. A short live run shows the loss fall; the reconstruction error drops fast, while the KL first
rises as the encoder starts to use its latents.
"""),
code("""
optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3)
generator = torch.Generator().manual_seed(SEED)
history = []
for step in tqdm(range(LIVE_VAE_STEPS), desc="live VAE training"):
    batch = latents.pad_to_32(images[torch.randint(0, len(images), (LIVE_BATCH_SIZE,), generator=generator)])
    loss, mse, kl = latents.vae_loss(vae, batch, KL_WEIGHT, generator)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    history.append((mse.item(), kl.item()))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 2.5))
ax1.plot([h[0] for h in history]); ax1.set_title("reconstruction MSE"); ax1.set_yscale("log")
ax2.plot([h[1] for h in history]); ax2.set_title("KL per latent number"); ax1.set_xlabel("step"); ax2.set_xlabel("step")
plt.show()
"""),
md(r"""
## 2. The shipped VAE and its reconstructions

`scripts/train_vae.py` trained the same model for 3,000 steps (about 13 minutes on 2 CPU cores) and
stored it in `data/vae_mnist.safetensors`, with a manifest of how it was made. Top row: test digits it never
saw; middle: reconstructions $D(\mu(x))$; bottom: the error, scaled ×4.

We measure quality with the **PSNR**, $10\log_{10}(\text{range}^2 / \text{MSE})$ in decibels (range 2 for
images in $[-1, 1]$): 20 dB is a visibly blurred copy, above 30 dB differences are hard to see.
"""),
code("""
shipped_vae = latents.load_vae()
test_latents = latents.encode(shipped_vae, test_images[:1000])
reconstructions = latents.decode(shipped_vae, test_latents)
error = (reconstructions - test_images[:1000]).abs() * 4 - 1
viz.show_images(torch.cat([test_images[:12], reconstructions[:12], error[:12].clamp(-1, 1)]), nrow=12,
                title="test digits / reconstructions / |error| x4")
plt.show()
"""),
code("""
# NBVAL_CHECK_OUTPUT
test_psnr = latents.psnr(reconstructions, test_images[:1000])
print(f"PSNR on 1000 test digits: mean {test_psnr.mean():.1f} dB, worst {test_psnr.min():.1f} dB")
vae_quality = load_manifest(DATA_DIR / "vae_mnist.safetensors")["quality"]
print(f"shipped manifest, all {vae_quality['num_test_images']:,} test digits: mean {vae_quality['test_psnr_db']:.1f} dB")
"""),
md(r"""
## 3. Inside the latent space

Each digit is now four 8×8 maps. They are not a tiny picture of the digit in four colours, but they are
spatial: the convolutions keep "where" roughly in place, so the maps still show the digit's layout.
"""),
code("""
channels = test_latents[:6].reshape(-1, 1, 8, 8)  # 6 digits x 4 channels, each an 8x8 image
scaled = channels / channels.abs().amax(dim=(2, 3), keepdim=True)
viz.show_images(scaled, nrow=8, title="latent channels of 6 test digits (two digits per row)")
plt.show()
"""),
md(r"""
Walking in a straight line from one digit's latent to another's and decoding each point (top) moves and
reshapes the strokes; the same walk in pixel space (bottom) only cross-fades two images. A 4× compressed toy
latent space is far from perfectly smooth: the middle frames are not clean digits.
"""),
code("""
start, end = test_latents[3], test_latents[2]  # a 0 and a 1 in the test set
weights = torch.linspace(0, 1, 10)[:, None, None, None]
latent_walk = latents.decode(shipped_vae, (1 - weights) * start + weights * end)
pixel_walk = (1 - weights) * test_images[3] + weights * test_images[2]
viz.show_images(torch.cat([latent_walk, pixel_walk]), nrow=10, title="interpolation: latent space (top), pixel space (bottom)")
plt.show()
"""),
md(r"""
## 4. The latent scaling factor

The diffusion forward process assumes data of roughly unit variance: it mixes $x_0$ with $\mathcal N(0, I)$
noise, and a schedule tuned for images in $[-1, 1]$ would destroy small latents far too early and large ones
far too late. So latent diffusion multiplies the latents by a constant that gives them unit standard deviation
(Rombach et al. 2022; their code takes 1 / std of the first training batch). For Stable Diffusion v1's VAE that constant, computed on a batch of
training images, is **0.18215**: its latents have a standard deviation of about 5.5. `AutoencoderKL` stores it
as `config.scaling_factor`; pipelines multiply after encoding and divide before decoding.

Ours, computed the same way on 2,000 training digits:
"""),
code("""
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    raw = shipped_vae.encode(latents.pad_to_32(images[:2000])).latent_dist.mean
scaling_factor = 1 / raw.std()
print(f"std of the raw latents: {raw.std():.3f} -> scaling factor {scaling_factor:.3f}")
print(f"stored in the shipped VAE's config (10,000 digits): {shipped_vae.config.scaling_factor:.3f}")
print(f"scaled latents: mean {(raw * shipped_vae.config.scaling_factor).mean():+.2f}, "
      f"std {(raw * shipped_vae.config.scaling_factor).std():.2f}")
"""),
md(r"""
## 5. Diffusion in the latents

Nothing about DDPM cares what its data are. The latent DDPM is notebook 03's `TinyUNet`, unchanged but for 4
input and output channels, trained by the same script on the scaled latents of the 60,000 training digits:

    python scripts/train_ddpm.py --space latent ...

Sampling is notebook 03's `sample_ddpm` on 8×8×4 noise, with one difference: $\hat x_0$ is clipped to the range of
the *latents*, $[-6, 6]$ (`latents.LATENT_CLIP_RANGE`), not to the pixel range $[-1, 1]$. Clipping matters most at the
first step, where the cosine schedule divides by $\sqrt{\bar\alpha_{999}} \approx 5\cdot10^{-5}$ and magnifies any
error of $\hat\epsilon$ twenty thousand times. Then one decoder call turns latents into digits.
"""),
code("""
latent_model, latent_alpha_bar, latent_manifest = ddpm.load_ddpm("latent_ddpm_mnist")
pixel_model, pixel_alpha_bar, pixel_manifest = ddpm.load_ddpm("ddpm_mnist")
print(f"latent UNet: {count_parameters(latent_model):,} parameters, widths {latent_model.config['channels']}, "
      f"{latent_manifest['steps']:,} training steps")
generator = torch.Generator().manual_seed(SEED)
z, frames = ddpm.sample_ddpm(latent_model, NUM_SAMPLES, latent_alpha_bar, SAMPLING_STEPS, generator,
                             image_shape=(4, 8, 8), clip_range=latents.LATENT_CLIP_RANGE, trajectory_every=max(1, SAMPLING_STEPS // 10))
latent_samples = latents.decode(shipped_vae, z)
viz.show_images(latent_samples, nrow=16, title=f"{NUM_SAMPLES} latent DDPM samples, {SAMPLING_STEPS} steps")
plt.show()
"""),
md(r"""
The trajectory, decoded: every frame is the current $z_t$ passed through the decoder. Noise in latent space
decodes to blobs, not to pixel noise: the decoder only knows how to draw digit-like strokes.
"""),
code("""
decoded_frames = [(t, latents.decode(shipped_vae, frame[:9])) for t, frame in frames]
viz.show_trajectory(decoded_frames, num_images=6)
plt.show()
display(HTML(viz.animate_trajectory(decoded_frames, nrow=3)))
"""),
md(r"""
## 6. Pixel against latent, measured

Same sampler, same number of steps, same seed, same machine. First the speed: one timed batch of
`NUM_SAMPLES` digits each (the latent time includes the decoder). Timings depend on your machine, so this
cell's output is not checked by the course's tests.
"""),
code("""
import time

def seconds_per_image(sample):
    started = time.perf_counter()
    sample()
    return (time.perf_counter() - started) / NUM_SAMPLES

pixel_seconds = seconds_per_image(lambda: ddpm.sample_ddpm(pixel_model, NUM_SAMPLES, pixel_alpha_bar, SAMPLING_STEPS, progress=False))
latent_seconds = seconds_per_image(lambda: latents.decode(shipped_vae, ddpm.sample_ddpm(
    latent_model, NUM_SAMPLES, latent_alpha_bar, SAMPLING_STEPS, image_shape=(4, 8, 8), clip_range=latents.LATENT_CLIP_RANGE, progress=False)))
print(f"pixel {1000 * pixel_seconds:.1f} ms/image, latent {1000 * latent_seconds:.1f} ms/image: "
      f"{pixel_seconds / latent_seconds:.1f}x faster")
"""),
md(r"""
Then quality, with notebook 03's measures: MNIST FID against real test digits (with its data floor) and the
share of samples the course classifier reads with confidence. A latent model can only draw what its decoder
can draw, so we also measure the **VAE floor**: the FID of the VAE's reconstructions of real test digits, which
shows how far from real digits the decoder's strokes are on their own. (FID is noisy at a few hundred samples:
compare the 1,000-sample table below.)
"""),
code("""
classifier = metrics.load_classifier()
reference, other_real = metrics.real_feature_sets(classifier, EVAL_SAMPLES, seed=SEED)
eval_generator = torch.Generator().manual_seed(SEED + 1)
results = {
    "pixel DDPM": ddpm.sample_ddpm(pixel_model, EVAL_SAMPLES, pixel_alpha_bar, SAMPLING_STEPS, eval_generator),
    "latent DDPM": latents.decode(shipped_vae, ddpm.sample_ddpm(latent_model, EVAL_SAMPLES, latent_alpha_bar, SAMPLING_STEPS,
                                                               eval_generator, image_shape=(4, 8, 8), clip_range=latents.LATENT_CLIP_RANGE)),
    "VAE reconstructions": reconstructions[-EVAL_SAMPLES:],
}
results = {name: metrics.evaluate_samples(classifier, samples, reference) for name, samples in results.items()}
"""),
code("""
# NBVAL_CHECK_OUTPUT
print(f"{EVAL_SAMPLES} samples each, DDPM {SAMPLING_STEPS} steps; data floor FID {metrics.mnist_fid(reference, other_real):.1f}")
for name, result in results.items():
    print(f"{name:>20}: MNIST FID {result['fid']:5.1f}   confident share {result['confident_share']:.2f}")
"""),
md(r"""
`scripts/compare_latent_pixel.py` measures the same with 1,000 samples per model, and training step times,
in one run, and writes this table (also in the README):
"""),
code("""
display(Markdown((DATA_DIR.parent / "docs" / "latent_vs_pixel.md").read_text()))
"""),
md(r"""
## Exercises

### Exercise 1: the KL of one latent number

A latent number with $\mu = 1$ and $\log\sigma^2 = -2$: compute its KL to $\mathcal N(0, 1)$ by hand from the
formula in section 1 and store it in `kl_by_hand` (a float). Which part of the formula punishes a too-confident
encoder (tiny $\sigma$)?
"""),
code("""
### BEGIN SOLUTION
import math
kl_by_hand = 0.5 * (1.0**2 + math.exp(-2.0) - 1.0 - (-2.0))
### END SOLUTION
print(f"KL = {kl_by_hand:.4f}")
"""),
code("""
check_range("kl_by_hand", kl_by_hand, 0, 10, hint="a KL divergence is never negative")
### BEGIN HIDDEN TESTS
check_close("kl_by_hand", kl_by_hand, kl_to_standard_normal(torch.ones(1, 1, 1, 1), torch.full((1, 1, 1, 1), -2.0)).item())
### END HIDDEN TESTS
"""),
md(r"""
### Exercise 2: forget the scaling factor

Train-time latents were multiplied by `scaling_factor`. Decode the samples `z` of section 5 *without*
dividing by it, as a pipeline with the wrong `scaling_factor` would: store the images in `unscaled_images`
(call `shipped_vae.decode(...)`, take `.sample`, crop with `latents.crop_to_28` and clamp to $[-1, 1]$).
What goes wrong, and why is it worse when the factor is far from 1?
"""),
code("""
### BEGIN SOLUTION
with torch.no_grad():
    unscaled_images = latents.crop_to_28(shipped_vae.decode(z).sample).clamp(-1, 1)
### END SOLUTION
"""),
code("""
check_range("unscaled_images", unscaled_images, -1, 1, hint="clamp the decoded images to [-1, 1]")
### BEGIN HIDDEN TESTS
with torch.no_grad():
    expected = latents.crop_to_28(shipped_vae.decode(z).sample).clamp(-1, 1)
check_close("unscaled_images", unscaled_images, expected, atol=1e-5)
### END HIDDEN TESTS
"""),
code("""
viz.show_images(torch.cat([latent_samples[:16], unscaled_images[:16]]), nrow=16, title="decoded correctly (top), without unscaling (bottom)")
plt.show()
"""),
md(r"""
### Exercise 3 (open): how small can the latent be?

`course_utils.latents.vae_config` fixes 4 latent channels. Train VAEs with 1 and 2 channels
(`scripts/train_vae.py` with a changed config, or the live loop above for a few hundred steps) and compare their
PSNR. Where do reconstructions start to lose the digit's identity (check with `metrics.classify`)?
"""),
*quick_check(5),
md(r"""
## Summary

- A VAE compresses a 32×32 digit into an 8×8×4 latent and back (PSNR measured above); the KL term and the
  reparameterisation keep its latent space smooth enough to interpolate in.
- The latents are rescaled to unit variance before diffusion: the course's own scaling factor plays the role of
  Stable Diffusion's 0.18215.
- The same UNet and sampler, on latents, sample several times faster per image at the same number of steps;
  the table above says how close the quality comes, and the VAE floor says how close it *could* come.

## What's next

So far the model draws *some* digit. Notebook 06 trains a text encoder and a cross-attention UNet on these same
latents, so that a prompt like "a thick seven" decides which digit, and adds **classifier-free guidance**.
"""),
]

if __name__ == "__main__":
    write(notebook(FILENAME, TITLE, PARAMETERS, CELLS), FILENAME)
