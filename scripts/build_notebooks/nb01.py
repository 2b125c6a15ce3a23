"""Generate notebooks/01_noise_to_image.ipynb (no outputs; run scripts/execute_notebooks.py after).

    python scripts/build_notebooks/nb01.py && python scripts/execute_notebooks.py notebooks/01_noise_to_image.ipynb
"""
from common import code, md, notebook, quick_check, write

FILENAME = "01_noise_to_image.ipynb"

TITLE = r"""
# 01 · From noise to image

Every image generator in this course, from a small model that draws 28×28 handwritten digits to
Stable Diffusion, runs the same loop: **start from pure random noise and remove a little noise at a
time until an image is left.** In this notebook you run that loop by hand, watch it fail, find out
exactly why, and then make it work with a "cheating" noise predictor that knows the answer. By the
end you will know which pieces the rest of the course has to build.

**What you will learn**
- why "subtract a bit of random noise, ten times" can never produce an image, shown with two
  measurements (the spread of the pixel values, and how strongly neighbouring pixels agree);
- that denoising needs *the particular noise that is inside the image*, so it needs a **noise predictor**;
- how an oracle predictor turns noise into a handwritten digit, step by step;
- why many small steps beat one big step when the predictor makes mistakes (and when they do not);
- the plan of the course: which notebook builds which part of the loop.

{badge}

**Time:** well under a minute on a 2-core CPU with the default parameters (about 10 seconds on an
idle one). No GPU and no downloads are needed; the MNIST digits ship with the course.
"""

PARAMETERS = """
SEED = 0  # seeds every generator
THREADS = 2  # CPU threads; results depend on it
NUM_STEPS = 10  # steps of the toy loop and the oracle loop (1 to 1000)
STEP_SIZE = 0.1  # how much noise each step removes (0 < STEP_SIZE <= 1); NUM_STEPS * STEP_SIZE = 1 removes it all
DIGIT_INDEX = 0  # which MNIST training digit the oracle recovers (0 to 59999)
NUM_DIGITS = 64  # digits used to measure errors in section 4 (1 to 1000)
NOISE_STD = 2.0  # standard deviation of the noise added to the digits in sections 2 and 3 (0 < NOISE_STD <= 10)
PREDICTOR_ERROR = 0.5  # standard deviation of the imperfect predictor's mistakes (0 < PREDICTOR_ERROR <= 2)
"""

CELLS = [
    code(r'''
    import math

    import matplotlib.pyplot as plt
    import torch
    from IPython.display import HTML, display
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    from course_utils.data import mnist_tensors
    from course_utils.runtime import setup
    from course_utils.viz import animate_trajectory, image_grid, show_trajectory

    LIMITS = {"NUM_STEPS": (int, 1, 1000), "DIGIT_INDEX": (int, 0, 59_999), "NUM_DIGITS": (int, 1, 1000),
              "STEP_SIZE": (float, 0, 1), "NOISE_STD": (float, 0, 10), "PREDICTOR_ERROR": (float, 0, 2)}
    for name, (kind, low, high) in LIMITS.items():  # integers in [low, high]; numbers in (low, high]
        value = globals()[name]
        if kind is int and not (isinstance(value, int) and low <= value <= high):
            raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        if kind is float and not (isinstance(value, (int, float)) and low < value <= high):
            raise ValueError(f"{name} must be a number in ({low}, {high}], got {value!r}")
    device = setup(seed=SEED, threads=THREADS)
    '''),
    md(r"""
    `setup` seeded every random number generator and fixed the number of CPU threads, so the numbers
    below are the same every time you run the notebook. It also picked the fastest device, but the
    tensors in this notebook are tiny, so everything stays on the CPU.

    ## 1. The toy loop

    Here is the idea of diffusion in its most naive form: an "image" of pure noise (3 colour channels,
    64×64 pixels), and ten steps that each subtract a little noise.
    """),
    code(r'''
    image = torch.randn(1, 3, 64, 64)
    start = image.clone()
    toy_frames = [image]
    for step in range(NUM_STEPS):
        image = image - torch.randn_like(image) * STEP_SIZE
        toy_frames.append(image)
    '''),
    md(r"""
    Did it become an image? Looking is not enough, so we measure. Two numbers tell an image from noise:

    - **the spread** of the pixel values (standard deviation). The loop starts at 1; if it removed
      noise, the spread should shrink.
    - **the neighbour correlation**: the correlation between each pixel and the pixel to its right.
      In a photo or a drawing neighbouring pixels mostly agree (an edge, a stroke, a patch of sky);
      in noise every pixel is drawn on its own, so the correlation is 0. This is our "structure meter".

    We also track the correlation with the starting noise, to see how far the loop moves.
    """),
    code(r'''
    def neighbour_correlation(x):
        """Correlation between each pixel and its right-hand neighbour, averaged over the batch."""
        left, right = x[..., :-1].flatten(1), x[..., 1:].flatten(1)
        left, right = left - left.mean(1, keepdim=True), right - right.mean(1, keepdim=True)
        return ((left * right).sum(1) / (left.norm(dim=1) * right.norm(dim=1))).mean().item()


    def correlation(a, b):
        """Pearson correlation of two tensors, treated as flat lists of numbers."""
        return torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()


    images, labels = mnist_tensors("train")  # [60000, 1, 28, 28] in [-1, 1], and the digit labels
    '''),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    print("step    std   neighbour corr   corr with start")
    for step, frame in enumerate(toy_frames):
        print(f"{step:4d} {frame.std():6.3f} {neighbour_correlation(frame):+16.3f} {correlation(frame, start):17.3f}")
    reference = images[:1000]
    print(f"real MNIST digits: std {reference.std():.3f}, neighbour corr {neighbour_correlation(reference):+.3f}")
    '''),
    code(r'''
    def to_rgb(x, scale=6.0):
        """[1, 3, H, W] with values in about [-scale/2, scale/2] -> an [H, W, 3] array in [0, 1] for imshow."""
        return (x[0].permute(1, 2, 0) / scale + 0.5).clamp(0, 1).numpy()


    fig, axes = plt.subplots(1, 4, figsize=(8.5, 2.4))
    panels = [(to_rgb(start), "start: pure noise"), (to_rgb(toy_frames[-1]), f"after {NUM_STEPS} steps"),
              (to_rgb(toy_frames[-1] - start, 2.0), "what the loop changed\n(contrast x3)"),
              (to_rgb(images[DIGIT_INDEX : DIGIT_INDEX + 1].repeat(1, 3, 1, 1), 2.0), "a real digit")]
    for ax, (array, title) in zip(axes, panels):
        ax.imshow(array, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    plt.show()
    '''),
    md(r"""
    The spread *grows* (from 1.000 towards $\sqrt{1.1} \approx 1.049$), the neighbour correlation stays
    at zero while a real digit has about 0.79, and the picture after ten steps is just different noise.
    The loop moves away from where it started (correlation 0.955 after ten steps) but towards nothing
    in particular.

    ### Why it fails

    Write $x_0$ for the starting noise and $\varepsilon_1, \dots, \varepsilon_K$ for the $K$ fresh
    draws of `torch.randn_like`. With step size $s$, after $K$ steps

    $$x_K = x_0 - s\,(\varepsilon_1 + \dots + \varepsilon_K).$$

    Every $\varepsilon_k$ is independent of the image and of the others. A sum of independent Gaussians
    is Gaussian, and **variances add** (subtracting a Gaussian adds its variance too, because
    $-\varepsilon$ is just as random as $\varepsilon$). So every pixel of $x_K$ is Gaussian noise with
    variance $1 + K s^2$, and every pixel is still independent of its neighbours. The update never
    looks at `image`, so no information about any picture can get in: the loop adds noise.

    ### What would work

    Suppose the image really is a clean picture plus noise, $x = x_{\text{clean}} + \varepsilon$. Then
    the one thing to subtract is *that* $\varepsilon$, the noise that is actually in the image, not a
    new random draw. When generating we do not know $\varepsilon$: the whole job of a diffusion model
    is to *estimate it from the noisy image*, $\hat\varepsilon = \varepsilon_\theta(x, t)$, with a
    neural network trained on many (clean image, noise) pairs. That network is the **noise predictor**
    you will build and train in notebook 03.

    First, a quick exercise on the failure, then we cheat: we give the loop an *oracle* that knows the
    true noise.
    """),
    md(r"""
    ### Exercise 1: predict the spread of the toy loop

    Write `toy_loop_std(num_steps, step_size)` that returns, **without simulating**, the standard
    deviation of a pixel after `num_steps` steps of the toy loop started from `torch.randn`
    (use the "variances add" argument above). The check compares it with a simulation.
    """),
    code(r'''
    def toy_loop_std(num_steps, step_size):
        """Standard deviation of a pixel after the toy loop: sqrt(1 + num_steps * step_size**2)."""
        ### BEGIN SOLUTION
        return math.sqrt(1.0 + num_steps * step_size**2)
        ### END SOLUTION
    '''),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    generator = torch.Generator().manual_seed(1)
    for num_steps, step_size in [(10, 0.1), (100, 0.1), (10, 1.0)]:
        x = torch.randn(200_000, generator=generator)
        for _ in range(num_steps):
            x = x - torch.randn(200_000, generator=generator) * step_size
        assert abs(x.std().item() - toy_loop_std(num_steps, step_size)) < 0.01, (num_steps, step_size)
        print(f"{num_steps:3d} steps of {step_size}: predicted std {toy_loop_std(num_steps, step_size):.3f}")
    ### BEGIN HIDDEN TESTS
    assert abs(toy_loop_std(0, 0.5) - 1.0) < 1e-12
    assert abs(toy_loop_std(3, 1.0) - 2.0) < 1e-12
    ### END HIDDEN TESTS
    '''),
    md(r"""
    ## 2. The same loop with an oracle noise predictor

    Take a real handwritten digit $x_{\text{clean}}$ (values in $[-1, 1]$, white stroke on black), draw
    noise $\varepsilon$ once (standard deviation `NOISE_STD` = 2, enough to bury the digit), and start
    from $x = x_{\text{clean}} + \varepsilon$. The oracle "predicts"
    the noise perfectly, because we kept it. The loop is **the toy loop with one change**:
    `torch.randn_like(image)` becomes `true_noise`.
    """),
    code(r'''
    digit = images[DIGIT_INDEX : DIGIT_INDEX + 1]  # [1, 1, 28, 28], a clean digit in [-1, 1]
    true_noise = NOISE_STD * torch.randn_like(digit)
    image = digit + true_noise  # where the loop starts; the oracle remembers true_noise
    oracle_frames = [(0, image)]
    for step in range(1, NUM_STEPS + 1):
        image = image - true_noise * STEP_SIZE  # the toy loop, with the true noise
        oracle_frames.append((step, image))
    print(f"digit label: {labels[DIGIT_INDEX].item()}")
    '''),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    def rms(x):
        """Root mean square: the typical size of the entries of x."""
        return x.pow(2).mean().sqrt().item()


    print("step   error to clean digit (rms)   neighbour corr")
    for step, frame in oracle_frames:
        print(f"{step:4d} {rms(frame - digit):20.3f} {neighbour_correlation(frame):+22.3f}")
    print(f"noise left after the loop: {1 - NUM_STEPS * STEP_SIZE:+.2f} x the true noise")
    '''),
    code(r'''
    shown = oracle_frames[:: max(1, NUM_STEPS // 10)]  # at most about 11 frames in the figure
    print("Oracle denoising: subtract a fraction of the true noise at every step")
    show_trajectory(shown, num_images=1, label="step")
    plt.show()
    display(HTML(animate_trajectory(shown, nrow=1, interval_ms=300)))
    '''),
    md(r"""
    Now structure appears step by step: the error to the clean digit falls by the same amount every
    step (each step removes `STEP_SIZE` of the noise), and the neighbour correlation climbs from about 0.1
    to the value of the clean digit (0.86 for this one; 0.79 on average). After `NUM_STEPS` steps with `NUM_STEPS * STEP_SIZE = 1` the
    digit is recovered exactly. (The animation above needs JavaScript; the strip of frames shows the
    same thing everywhere.)

    Of course the oracle cheats: it only works because we made the noisy image ourselves. But it
    shows exactly what is missing. Replace `true_noise` by a **prediction** computed from the noisy
    image, and this loop becomes a diffusion sampler. Two things change in the real thing:

    1. The predictor is a neural network, and it makes mistakes (section 3).
    2. Real samplers do not add noise to a known image; they start from pure noise and scale the
       image as they go so its values stay bounded. That bookkeeping is the **noise schedule** of
       notebook 02.

    ## 3. One big step or many small steps?

    If the oracle is perfect, one step of size 1 does the same as ten steps of size 0.1. So why would
    anyone take a thousand steps? Because real predictors are wrong. Model an imperfect predictor as
    the true noise plus a fresh mistake $e$ with standard deviation `PREDICTOR_ERROR` at every call:
    """),
    code(r'''
    def imperfect_predictor(true_noise):
        """The true noise plus a fresh Gaussian mistake with standard deviation PREDICTOR_ERROR."""
        return true_noise + PREDICTOR_ERROR * torch.randn_like(true_noise)


    def denoise_in_steps(noisy, true_noise, num_steps):
        """Remove the predicted noise in num_steps equal steps; returns the final image."""
        image = noisy
        for _ in range(num_steps):
            image = image - imperfect_predictor(true_noise) / num_steps
        return image
    '''),
    md(r"""
    With one big step the result is $x_{\text{clean}} - e$: the whole mistake lands in the image.
    With $N$ small steps each removes $(\varepsilon + e_k)/N$, so what is left is
    $-\frac{1}{N}\sum_k e_k$, an **average** of $N$ independent mistakes, whose standard deviation is
    `PREDICTOR_ERROR` $/\sqrt{N}$. Let us measure it on `NUM_DIGITS` digits.
    """),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    clean = images[:NUM_DIGITS]
    noise = NOISE_STD * torch.randn_like(clean)
    step_counts = [1, 2, 5, 10, 20, 50, 100]
    errors = [rms(denoise_in_steps(clean + noise, noise, n) - clean) for n in step_counts]
    print("steps   error to clean (rms)   PREDICTOR_ERROR / sqrt(steps)")
    for n, error in zip(step_counts, errors):
        print(f"{n:5d} {error:18.3f} {PREDICTOR_ERROR / math.sqrt(n):24.3f}")
    '''),
    code(r'''
    one_big = denoise_in_steps(clean[:8] + noise[:8], noise[:8], 1)
    small = denoise_in_steps(clean[:8] + noise[:8], noise[:8], NUM_STEPS)
    fig, axes = plt.subplots(1, 3, figsize=(11, 2.6), gridspec_kw={"width_ratios": [2.2, 2.2, 1.3]})
    for ax, batch, title in [(axes[0], one_big, "one big step"), (axes[1], small, f"{NUM_STEPS} small steps")]:
        ax.imshow(image_grid(batch, nrow=4), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    axes[2].loglog(step_counts, errors, "o", label="measured")
    theory = [PREDICTOR_ERROR / math.sqrt(n) for n in step_counts]
    axes[2].loglog(step_counts, theory, "k--", label=r"$\sigma/\sqrt{N}$")
    axes[2].set(xlabel="number of steps N", ylabel="error to clean (rms)", title="error vs steps")
    axes[2].yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axes[2].yaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes[2].yaxis.set_minor_formatter(NullFormatter())
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    plt.show()
    '''),
    md(r"""
    The measured errors follow $\sigma/\sqrt{N}$: one big step leaves the full mistake in the image,
    ten steps cut it by $\sqrt{10} \approx 3.2$, a hundred steps by 10. The digits on the left are
    buried in speckle; the ones in the middle are much cleaner.

    Be careful with what this toy shows and what it does not:

    - **It assumes the mistakes of different calls are independent.** A *systematic* mistake, the same
      at every call, does not average away. Exercise 2 shows this.
    - **Real models have a second, bigger reason to take small steps.** Our predictor is equally wrong
      at every step, but a real network sees the *current* image, which gets cleaner as the loop goes
      on, and predicting the noise in an almost clean image is much easier than in pure noise. So a
      real sampler's later predictions are better than its first ones (notebooks 03 and 04).
    - **Steps cost time.** Each step is one call of the predictor, which in Stable Diffusion is a large
      network. Most of notebook 04 is about samplers that reach the quality of many steps with few.
    """),
    md(r"""
    ### Exercise 2: a biased predictor

    Suppose the predictor is not noisy but **biased**: it always returns `scale * true_noise`
    (for example `scale = 0.8`, a network that under-estimates the noise by 20%). Write
    `biased_final_error(clean, true_noise, scale, num_steps)` that starts from `clean + true_noise`,
    removes `scale * true_noise / num_steps` at each of `num_steps` steps, and returns the rms error
    to `clean` (use `rms`). Then look at the check's output: do more steps help?
    """),
    code(r'''
    def biased_final_error(clean, true_noise, scale, num_steps):
        """rms error to `clean` after num_steps steps with a predictor that returns scale * true_noise."""
        ### BEGIN SOLUTION
        image = clean + true_noise
        for _ in range(num_steps):
            image = image - scale * true_noise / num_steps
        return rms(image - clean)
        ### END SOLUTION
    '''),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    for num_steps in [1, 10, 100]:
        error = biased_final_error(clean, noise, 0.8, num_steps)
        assert abs(error - 0.2 * rms(noise)) < 1e-4 * NOISE_STD, f"expected 0.2 * rms(noise), got {error}"
        print(f"scale 0.8, {num_steps:3d} steps: error {error:.3f}")
    ### BEGIN HIDDEN TESTS
    assert biased_final_error(clean, noise, 1.0, 7) < 1e-5 * NOISE_STD
    assert abs(biased_final_error(clean, noise, 1.2, 3) - 0.2 * rms(noise)) < 1e-4 * NOISE_STD
    ### END HIDDEN TESTS
    '''),
    md(r"""
    The error is $|1 - \text{scale}| \cdot \text{rms}(\varepsilon)$, the same for 1, 10 or 100 steps.
    Small steps average out *random* mistakes, not *systematic* ones. A biased noise predictor has to
    be fixed by training it better, not by sampling longer.

    ### Exercise 3: how many steps?

    With independent mistakes of standard deviation `error_std`, how many small steps do you need for
    the final error to be at most `target`? Write `steps_needed(error_std, target)` that returns the
    smallest such whole number of steps, using the $\sigma/\sqrt{N}$ rule.
    """),
    code(r'''
    def steps_needed(error_std, target):
        """Smallest N with error_std / sqrt(N) <= target."""
        ### BEGIN SOLUTION
        return max(1, math.ceil((error_std / target) ** 2 - 1e-9))
        ### END SOLUTION
    '''),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    n = steps_needed(PREDICTOR_ERROR, PREDICTOR_ERROR / 4)
    print(f"steps for a quarter of the error: {n}")
    assert n == 16, "a quarter of the error needs 4**2 = 16 steps"
    measured = rms(denoise_in_steps(clean + noise, noise, n) - clean)
    assert measured < 1.1 * PREDICTOR_ERROR / 4 + 1e-3, f"measured error {measured:.3f} is too large"
    ### BEGIN HIDDEN TESTS
    assert steps_needed(0.5, 0.05) == 100
    assert steps_needed(0.3, 0.3) == 1
    assert steps_needed(0.5, 1.0) == 1
    assert steps_needed(1.0, 0.3) == 12
    ### END HIDDEN TESTS
    '''),
    md(r"""
    ## 4. The loop every diffusion model runs

    Strip away the oracle and you have the skeleton of every sampler in this course, Stable Diffusion
    included:

    ```text
    latent = sample pure noise                        # x_T ~ N(0, I)
    for t in timesteps:                               # e.g. T-1, ..., 1, 0
        noise_pred = predict_noise(latent, t, prompt) # the noise predictor (a UNet)
        latent = remove_a_bit(latent, noise_pred, t)  # how much to remove: the schedule and the sampler
    image = decode(latent)                            # latents -> pixels (Stable Diffusion's VAE)
    ```

    In this notebook every part was a stand-in. The rest of the course replaces them one by one:

    | Part of the loop | Stand-in in this notebook | Built for real in |
    |---|---|---|
    | sample the starting latent $x_T$ | `torch.randn`, or a digit plus known noise | **02** the forward process: why the end of the noising process is pure noise $\mathcal N(0, I)$; **05** latents (4×64×64 for Stable Diffusion instead of pixels) |
    | the timesteps and how much to remove at each | a fixed `STEP_SIZE` | **02** noise schedules ($\beta_t$, $\bar\alpha_t$, SNR); **04** samplers (DDIM, Euler, ...) with few steps |
    | predict the noise | the oracle `true_noise` | **03** a UNet trained with the noise-prediction loss (DDPM) |
    | remove a bit | `image - STEP_SIZE * noise` | **03** the DDPM sampling step; **04** other samplers |
    | the prompt | none | **06** text conditioning with a text encoder, and classifier-free guidance (CFG) |
    | decode | none: we worked on pixels | **05** the VAE that maps between images and latents |
    | all of it together | | **07** the Stable Diffusion pipeline, assembled from these parts and compared with `diffusers` |

    """),
    *quick_check(1),
    md(r"""
    ## Summary

    - Subtracting *fresh* random noise adds noise: variances add, the spread grows as
      $\sqrt{1 + K s^2}$, and no structure appears (neighbour correlation stays 0).
    - Denoising works when you subtract the noise that is *in* the image. Knowing it takes a
      predictor; with an oracle the digit emerges step by step.
    - With an imperfect predictor, many small steps average independent mistakes
      ($\sigma/\sqrt{N}$) but not systematic ones, and every step costs one predictor call.

    **Next:** notebook 02 makes "a clean image plus noise" precise: the forward process
    $q(x_t \mid x_0)$ and the noise schedules that decide how much noise there is at each step $t$.
    """),
]


if __name__ == "__main__":
    write(notebook(FILENAME, TITLE, PARAMETERS, CELLS), FILENAME)
