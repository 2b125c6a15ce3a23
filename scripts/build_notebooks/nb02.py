"""Generate notebooks/02_forward_process.ipynb (no outputs; run scripts/execute_notebooks.py after).

    python scripts/build_notebooks/nb02.py && python scripts/execute_notebooks.py notebooks/02_forward_process.ipynb
"""
from common import code, md, notebook, quick_check, write

FILENAME = "02_forward_process.ipynb"

TITLE = r"""
# 02 · The forward process and noise schedules

In notebook 01 the oracle removed noise that we had added ourselves. A diffusion model is trained the
same way: take a clean image, add a known amount of known noise, and ask the network to find the
noise again. This notebook makes "add a known amount of noise" precise. It is the **forward
process** $q(x_t \mid x_0)$, and the recipe for how much noise there is at each step $t$ is the
**noise schedule**.

**What you will learn**
- the DDPM forward step $x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon$ and why it
  shrinks the image as it adds noise;
- to derive the closed form $q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}\,x_0,\,(1-\bar\alpha_t) I)$,
  write it by hand (`q_sample`), and check it against a step-by-step simulation and against
  `course_utils.schedules.q_sample`, which the later notebooks import;
- the four schedules in common use (linear, scaled linear, cosine, sigmoid), how their $\bar\alpha_t$
  and signal-to-noise ratio differ, and what that looks like on a digit;
- what changes when you change the number of steps $T$ or design a schedule of your own.

{badge}

**Time:** well under a minute on a 2-core CPU with the default parameters (about 10 seconds on an idle
one). No GPU and no downloads.
"""

PARAMETERS = """
SEED = 0  # seeds every generator
THREADS = 2  # CPU threads; results depend on it
NUM_TIMESTEPS = 1000  # T, the number of noising steps (2 to 100000)
SCHEDULE = "cosine"  # for the step-by-step check and the slider: "linear", "scaled_linear", "cosine", "sigmoid"
DIGIT_INDEX = 0  # which MNIST training digit to noise (0 to 59999)
NUM_CHAINS = 256  # copies of the digit noised step by step to check the closed form (10 to 5000)
"""

CELLS = [
    code(r'''
    import math

    import ipywidgets
    import matplotlib.pyplot as plt
    import torch

    from course_utils import schedules
    from course_utils.data import mnist_tensors
    from course_utils.runtime import setup
    from course_utils.viz import image_grid, show_trajectory

    for name, value, low, high in [("NUM_TIMESTEPS", NUM_TIMESTEPS, 2, 100_000),
                                   ("DIGIT_INDEX", DIGIT_INDEX, 0, 59_999), ("NUM_CHAINS", NUM_CHAINS, 10, 5000)]:
        if not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    if SCHEDULE not in schedules.SCHEDULES:
        raise ValueError(f"SCHEDULE must be one of {schedules.SCHEDULES}, got {SCHEDULE!r}")
    device = setup(seed=SEED, threads=THREADS)
    T = NUM_TIMESTEPS
    CHECK_T = sorted({0, T // 4, T // 2, 3 * T // 4, T - 1})  # timesteps of the printed tables
    SHOW_T = sorted({round(i * (T - 1) / 7) for i in range(8)})  # timesteps of the figures
    '''),
    md(r"""
    ## 1. Adding noise one step at a time

    In notebook 01 we made a noisy digit as $x_{\text{clean}} + \varepsilon$. That has a flaw: the
    more noise you add, the larger the values get (we measured the spread growing as
    $\sqrt{1 + K s^2}$), so "very noisy" has no fixed scale to start generating from. DDPM
    ([Ho et al. 2020](https://arxiv.org/abs/2006.11239)) instead **mixes**: at every step it shrinks
    the image a little and adds a little noise,

    $$x_t = \sqrt{1-\beta_t}\;x_{t-1} + \sqrt{\beta_t}\;\varepsilon_t, \qquad \varepsilon_t \sim \mathcal N(0, I),$$

    that is $q(x_t \mid x_{t-1}) = \mathcal N(\sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I)$. The number
    $\beta_t \in (0, 1)$ is how much noise step $t$ adds; the whole sequence $\beta_1, \dots, \beta_T$
    is the **noise schedule**.

    Why $\sqrt{1-\beta_t}$? If $x_{t-1}$ has variance 1, then $x_t$ has variance
    $(1-\beta_t) \cdot 1 + \beta_t = 1$: the process is *variance preserving*. However the image
    started, after enough steps nothing of it is left and $x_T$ is simply $\mathcal N(0, I)$, a
    distribution we can sample. That is where generation will start.

    **Indexing.** The papers number the steps $1, \dots, T$ and call the clean image $x_0$. Code
    (`diffusers` and `course_utils`) keeps $\beta$ in an array indexed $0, \dots, T-1$. We use the
    code's numbering from here on: `betas[t]` is the noise added at step `t`, `t = 0` is the lightest
    noise level and `t = T - 1` the heaviest. Here is the step, by hand, run on `NUM_CHAINS` copies
    of one digit:
    """),
    code(r'''
    images, labels = mnist_tensors("train")  # [60000, 1, 28, 28] in [-1, 1]
    x0 = images[DIGIT_INDEX : DIGIT_INDEX + 1]  # one clean digit, [1, 1, 28, 28]
    betas = schedules.make_betas(SCHEDULE, T)  # beta_t for t = 0..T-1, float64


    def forward_step(x, beta):
        """One step of q(x_t | x_{t-1}): shrink the image a little, add a little noise."""
        return math.sqrt(1 - beta) * x + math.sqrt(beta) * torch.randn_like(x)


    x = x0.repeat(NUM_CHAINS, 1, 1, 1)  # NUM_CHAINS independent noisings of the same digit
    chain = {}  # t -> x_t, for the timesteps we look at later
    for t in range(T):
        x = forward_step(x, betas[t].item())
        if t in CHECK_T or t in SHOW_T:
            chain[t] = x.clone()
    '''),
    code(r'''
    print(f"One digit noised step by step ({SCHEDULE} schedule, T = {T}):")
    show_trajectory([(t, chain[t][:1]) for t in SHOW_T], num_images=1)
    plt.show()
    '''),
    md(r"""
    ## 2. Jumping straight to step $t$

    Running $t$ steps to get $x_t$ is wasteful, and training (notebook 03) needs $x_t$ at a random
    $t$ for every image of every batch. Fortunately the steps compose. Write
    $\alpha_t = 1 - \beta_t$ and unroll two steps:

    $$
    \begin{aligned}
    x_t &= \sqrt{\alpha_t}\,x_{t-1} + \sqrt{1-\alpha_t}\,\varepsilon_t \\
        &= \sqrt{\alpha_t}\left(\sqrt{\alpha_{t-1}}\,x_{t-2} + \sqrt{1-\alpha_{t-1}}\,\varepsilon_{t-1}\right) + \sqrt{1-\alpha_t}\,\varepsilon_t \\
        &= \sqrt{\alpha_t\alpha_{t-1}}\;x_{t-2} + \underbrace{\sqrt{\alpha_t(1-\alpha_{t-1})}\,\varepsilon_{t-1} + \sqrt{1-\alpha_t}\,\varepsilon_t}_{\text{two independent Gaussians}}.
    \end{aligned}
    $$

    A sum of independent zero-mean Gaussians is a zero-mean Gaussian whose variance is the sum of the
    variances: $\alpha_t(1-\alpha_{t-1}) + (1-\alpha_t) = 1 - \alpha_t\alpha_{t-1}$. So the two noise
    terms are *one* noise term $\sqrt{1-\alpha_t\alpha_{t-1}}\;\bar\varepsilon$. Repeating the argument
    all the way down to $x_0$:

    $$
    \boxed{\;x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\qquad
    \varepsilon \sim \mathcal N(0, I),\qquad \bar\alpha_t = \prod_{s \le t} \alpha_s = \prod_{s \le t}(1-\beta_s)\;}
    $$

    or $q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big)$, equation 4 of
    the DDPM paper. Read it as a mixing dial: $\bar\alpha_t$ is the share of the signal and
    $1 - \bar\alpha_t$ the share of the noise (the squared coefficients add up to 1). It falls from
    almost 1 at $t = 0$ to almost 0 at $t = T - 1$, and **the schedule is just the choice of how fast**.

    Written by hand:
    """),
    code(r'''
    def my_alphas_cumprod(betas):
        """alpha_bar_t = (1 - beta_0)(1 - beta_1)...(1 - beta_t), for every t at once."""
        return torch.cumprod(1 - betas, dim=0)


    def my_q_sample(x0, t, noise, alpha_bar):
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise, with one timestep per image in x0."""
        abar = alpha_bar[t].to(x0.dtype).reshape(-1, 1, 1, 1)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


    alpha_bar = my_alphas_cumprod(betas)
    '''),
    md(r"""
    The course's version, `course_utils.schedules.q_sample`, is the same formula with checks on its
    inputs. It is what notebooks 03 to 07 import, so let us make sure the two agree:
    """),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    t_batch = torch.tensor(CHECK_T)  # one timestep per image
    x0_batch = x0.repeat(len(CHECK_T), 1, 1, 1)
    noise = torch.randn_like(x0_batch)
    mine = my_q_sample(x0_batch, t_batch, noise, alpha_bar)
    course_alpha_bar = schedules.alphas_cumprod(betas)
    course = schedules.q_sample(x0_batch, t_batch, noise, course_alpha_bar)
    print(f"alpha_bar equals course_utils: {torch.allclose(alpha_bar, course_alpha_bar, rtol=0, atol=1e-12)}")
    print(f"q_sample equals course_utils: {torch.allclose(mine, course, rtol=0, atol=1e-6)}")
    '''),
    md(r"""
    The derivation claims that the slow chain of section 1 and the one-line formula produce the same
    distribution. Check it on the `NUM_CHAINS` chains: in every pixel, the mean over the chains should
    be $\sqrt{\bar\alpha_t}\,x_0$ and the standard deviation $\sqrt{1-\bar\alpha_t}$. We summarise the
    means by the factor $c$ that best fits "mean $= c \cdot x_0$" (least squares over the pixels), and
    the standard deviations by their average over the pixels.
    """),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    print("    t  alpha_bar | sqrt(alpha_bar): formula  chains | sqrt(1 - alpha_bar): formula  chains")
    for t in CHECK_T:
        mean, std = chain[t].mean(0), chain[t].std(0)  # per pixel, over the chains
        c = (mean * x0[0]).sum() / (x0[0] ** 2).sum()  # least-squares fit of mean = c * x0
        signal, spread = alpha_bar[t].sqrt().item(), (1 - alpha_bar[t]).sqrt().item()
        print(f"{t:5d} {alpha_bar[t]:10.4f} | {signal:24.3f} {c:7.3f} | {spread:28.3f} {std.mean():7.3f}")
    '''),
    md(r"""
    The chains agree with the formula to two or three decimals; the small differences are the sampling
    error of `NUM_CHAINS` random chains. From now on we never run the chain again: `q_sample` gives
    $x_t$ for any $t$ in one line.

    ## 3. Four noise schedules

    Only $\bar\alpha_t$ enters $q(x_t \mid x_0)$, and the schedule decides how it falls. These four are
    in `course_utils.schedules` under the names `diffusers` uses for `beta_schedule`:

    | name | $\beta_t$ | from | `diffusers` `beta_schedule` |
    |---|---|---|---|
    | `linear` | evenly spaced from $10^{-4}$ to $0.02$ | DDPM, Ho et al. 2020 | `"linear"` |
    | `scaled_linear` | $\sqrt{\beta_t}$ evenly spaced from $\sqrt{0.00085}$ to $\sqrt{0.012}$ | Stable Diffusion, Rombach et al. 2022 | `"scaled_linear"` (with `beta_start=0.00085, beta_end=0.012`) |
    | `cosine` | from $\bar\alpha$ below | improved DDPM, [Nichol & Dhariwal 2021](https://arxiv.org/abs/2102.09672) | `"squaredcos_cap_v2"` |
    | `sigmoid` | a sigmoid over $[-6, 6]$, from $10^{-4}$ to $0.02$ | GeoDiff, Xu et al. 2022 | `"sigmoid"` |

    The cosine schedule is designed the other way round: choose the curve $\bar\alpha$ first, then
    read off the $\beta$s. With $s = 0.008$,

    $$
    \bar\alpha(t) = \frac{f(t)}{f(0)},\qquad f(t) = \cos^2\!\left(\frac{t/T + s}{1 + s}\cdot\frac{\pi}{2}\right),\qquad
    \beta_t = \min\!\left(1 - \frac{\bar\alpha(t+1)}{\bar\alpha(t)},\ 0.999\right).
    $$

    $\cos^2$ falls slowly at both ends and steadily in the middle. The small offset $s$ keeps the
    first $\beta$s from being vanishingly small, and the cap at $0.999$ avoids $\beta = 1$ at the very
    end, where $f(T) = 0$. By hand, with the other three for comparison:
    """),
    code(r'''
    def my_linear_betas(T, beta_start=1e-4, beta_end=0.02):
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


    def my_cosine_betas(T, s=0.008, max_beta=0.999):
        f = lambda u: torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
        u = torch.arange(T + 1, dtype=torch.float64) / T  # t / T for t = 0..T
        return (1 - f(u[1:]) / f(u[:-1])).clamp(max=max_beta)  # f(0) cancels in the ratio


    by_hand = {"linear": my_linear_betas(T), "scaled_linear": my_linear_betas(T, 0.00085**0.5, 0.012**0.5) ** 2,
               "cosine": my_cosine_betas(T),
               "sigmoid": torch.sigmoid(torch.linspace(-6, 6, T, dtype=torch.float64)) * (0.02 - 1e-4) + 1e-4}
    '''),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    for name, betas_by_hand in by_hand.items():
        same = torch.allclose(betas_by_hand, schedules.make_betas(name, T), rtol=0, atol=1e-12)
        print(f"{name:>13} by hand equals course_utils: {same}")
    '''),
    md(r"""
    To compare schedules, look at $\bar\alpha_t$ and at the **signal-to-noise ratio**
    $\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)$
    ([Kingma et al. 2021](https://arxiv.org/abs/2107.00630)), the ratio of the signal's variance to the
    noise's. SNR spans many orders of magnitude, so it is plotted on a log scale. It must fall at every
    step: each step adds noise.
    """),
    code(r'''
    alpha_bars = {name: schedules.alphas_cumprod(schedules.make_betas(name, T)) for name in schedules.SCHEDULES}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for name, abar in alpha_bars.items():
        axes[0].plot(schedules.make_betas(name, T).numpy(), label=name)
        axes[1].plot(abar.numpy(), label=name)
        axes[2].semilogy(schedules.snr(abar).numpy(), label=name)
    axes[0].set(title=r"$\beta_t$ (noise added per step)", xlabel="t", ylim=(0, 0.05))
    axes[1].set(title=r"$\bar\alpha_t$ (share of the signal)", xlabel="t")
    axes[2].set(title=r"SNR$(t) = \bar\alpha_t / (1 - \bar\alpha_t)$", xlabel="t")
    axes[2].axhline(1, color="gray", lw=0.5)
    axes[1].legend()
    fig.tight_layout()
    plt.show()
    '''),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    print("alpha_bar at t =" + "".join(f"{t:>9d}" for t in CHECK_T))
    for name, abar in alpha_bars.items():
        print(f"{name:>15}" + "".join(f"{abar[t]:9.4f}" for t in CHECK_T))
    print("log10 SNR, first and last step:")
    for name, abar in alpha_bars.items():
        log_snr = schedules.snr(abar).log10()
        print(f"{name:>15} {log_snr[0]:+7.2f} {log_snr[-1]:+7.2f}")
    '''),
    md(r"""
    How to read these curves (with the default $T = 1000$):

    - **linear** destroys the image fast. $\bar\alpha$ is below one half by $t \approx 260$ and below
      0.01 from $t \approx 670$, so the last third of the steps all see almost pure noise. Nichol &
      Dhariwal noticed that these steps contribute little, which is why they proposed the cosine schedule.
    - **cosine** falls gently: $\bar\alpha$ is one half near the middle ($t \approx 500$) and its
      log-SNR falls at a nearly constant rate through the middle, spreading the steps evenly over noise
      levels. Its last $\beta$ is capped, so the final SNR is tiny ($10^{-8.6}$): pure noise.
    - **scaled_linear** is Stable Diffusion's schedule. It starts with more noise than linear
      ($\beta_0 = 0.00085$) but adds it more slowly, and it **never reaches pure noise**:
      $\bar\alpha_{T-1} \approx 0.0047$, so $\sqrt{0.0047} \approx 7\%$ of the image survives the last
      step. Samplers still start from pure noise, a small mismatch that
      [Lin et al. 2024](https://arxiv.org/abs/2305.08891) show is visible in generated images.
    - **sigmoid** adds almost no noise at first, then a lot in the middle, and levels off.

    ## 4. One digit under each schedule

    The same digit and *the same noise* under every schedule, at the same timesteps, so that the only
    difference between the rows is the schedule:
    """),
    code(r'''
    t_show = torch.tensor(SHOW_T)
    digits = x0.expand(len(SHOW_T), -1, -1, -1)  # the same digit for every timestep
    grid_noise = torch.randn_like(x0).expand(len(SHOW_T), -1, -1, -1)  # and the same noise
    fig, axes = plt.subplots(len(alpha_bars), 1, figsize=(1.1 * len(SHOW_T), 1.25 * len(alpha_bars)))
    for ax, (name, abar) in zip(axes, alpha_bars.items()):
        row = my_q_sample(digits, t_show, grid_noise, abar)
        ax.imshow(image_grid(row, nrow=len(SHOW_T)), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([14.5 + 29 * i for i in range(len(SHOW_T))], [f"t={t}" for t in SHOW_T], fontsize=8)
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        ax.tick_params(length=0)
    fig.tight_layout()
    plt.show()
    '''),
    md(r"""
    Look at the middle columns (with the default $T = 1000$): by $t = 428$ the linear row has nearly
    lost the digit, while the cosine row still shows it plainly and keeps a trace at $t = 571$. Sigmoid
    keeps the digit sharpest early on and then loses it within a couple of columns. In the last column the scaled linear row still carries 7%
    of the digit: too little to see here, but not nothing. (The display clips values to $[-1, 1]$,
    so heavy noise looks like black-and-white speckle.)

    ## 5. Explore: a slider over $t$

    Drag the slider to see $x_t$ and where $t$ sits on the $\bar\alpha$ curve of `SCHEDULE`. (Sliders
    need a live Jupyter kernel; in a static view of the notebook, the figure below the slider shows
    the same thing for five timesteps.)
    """),
    code(r'''
    slider_noise = torch.randn_like(x0)


    def draw_image(t, ax):
        x_t = my_q_sample(x0, torch.tensor([t]), slider_noise, alpha_bars[SCHEDULE])
        ax.imshow(image_grid(x_t, nrow=1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"t = {t}\nalpha_bar = {alpha_bars[SCHEDULE][t]:.3f}", fontsize=9)
        ax.set_axis_off()


    def draw_curve(timesteps, ax):
        ax.plot(alpha_bars[SCHEDULE].numpy(), "k-", lw=1)
        ax.plot(timesteps, [alpha_bars[SCHEDULE][t].item() for t in timesteps], "ro")
        ax.set(xlabel="t", ylabel=r"$\bar\alpha_t$", title=f"{SCHEDULE} schedule")
    '''),
    code(r'''
    def show_timestep(t):
        fig, axes = plt.subplots(1, 2, figsize=(6.5, 2.6), gridspec_kw={"width_ratios": [1, 2]})
        draw_image(t, axes[0])
        draw_curve([t], axes[1])
        plt.show()


    slider = ipywidgets.IntSlider(value=T // 2, min=0, max=T - 1, continuous_update=False, description="t")
    ipywidgets.interact(show_timestep, t=slider);
    '''),
    code(r'''
    # The same content as a static figure (for viewers without a live kernel).
    fig, axes = plt.subplots(1, len(CHECK_T) + 1, figsize=(1.6 * len(CHECK_T) + 4, 2.6),
                             gridspec_kw={"width_ratios": [1] * len(CHECK_T) + [2.5]})
    for t, ax in zip(CHECK_T, axes):
        draw_image(t, ax)
    draw_curve(CHECK_T, axes[-1])
    fig.tight_layout()
    plt.show()
    '''),
    md(r"""
    ## 6. Exercises

    ### Exercise (a): see the noise inside $x_t$

    $x_t$ is a signal part plus a noise part. Subtracting the signal part, $x_t - \sqrt{\bar\alpha_t}\,x_0$,
    leaves the noise part $\sqrt{1-\bar\alpha_t}\,\varepsilon$: exactly the thing the model of notebook 03
    will learn to predict (up to the known factor $\sqrt{1-\bar\alpha_t}$). Write
    `noise_part(x_t, x0, alpha_bar, t)` that returns $x_t - \sqrt{\bar\alpha_t}\,x_0$ for a batch with one
    timestep per image. The cells after the check show it next to $x_t$.
    """),
    code(r'''
    def noise_part(x_t, x0, alpha_bar, t):
        """x_t - sqrt(alpha_bar_t) * x0, with one timestep per image of x_t."""
        ### BEGIN SOLUTION
        abar = alpha_bar[t].to(x_t.dtype).reshape(-1, 1, 1, 1)
        return x_t - abar.sqrt() * x0
        ### END SOLUTION
    '''),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    t_many = t_show.repeat_interleave(16)  # 16 noisy copies per timestep, for steadier statistics
    abar, eps = alpha_bars[SCHEDULE], torch.randn(len(t_many), 1, 28, 28)
    x_t = my_q_sample(x0.expand(len(t_many), -1, -1, -1), t_many, eps, abar)
    parts = noise_part(x_t, x0, abar, t_many)
    expected = (1 - abar[t_many]).sqrt().float().reshape(-1, 1, 1, 1) * eps
    assert torch.allclose(parts, expected, atol=1e-5), "noise_part should equal sqrt(1 - alpha_bar_t) * eps"
    for t, part in zip(SHOW_T, parts.reshape(len(SHOW_T), -1)):
        print(f"t = {t:4d}: std of the noise part {part.std():.3f}, sqrt(1 - alpha_bar_t) {(1 - abar[t]).sqrt():.3f}")
    ### BEGIN HIDDEN TESTS
    assert torch.allclose(noise_part(x_t, torch.zeros_like(x0), abar, t_many), x_t)
    assert noise_part(my_q_sample(x0, torch.tensor([0]), eps[:1], abar), x0, abar, torch.tensor([0])).abs().max() < 0.1
    ### END HIDDEN TESTS
    '''),
    code(r'''
    fig, axes = plt.subplots(2, len(SHOW_T), figsize=(1.1 * len(SHOW_T), 2.6))
    for column, t in enumerate(SHOW_T):
        for row, image in enumerate([x_t[16 * column, 0], parts[16 * column, 0]]):  # the first copy of each t
            axes[row, column].imshow(image, cmap="gray", vmin=-3, vmax=3)  # one scale for all panels
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
        axes[0, column].set_title(f"t={t}", fontsize=8)
    axes[0, 0].set_ylabel("x_t", fontsize=8)
    axes[1, 0].set_ylabel("noise part", fontsize=8)
    plt.show()
    '''),
    md(r"""
    All panels share one grey scale ($-3$ to $3$, not clipped to the image range), so you see the size of
    the noise part grow: near $t = 0$ it is a faint haze on a clean digit, and at the end it is
    practically all of $x_t$. It is **the same** $\varepsilon$ in every column, only louder. So the
    network faces two different jobs: at small $t$, find a whisper of noise on a clear image; at large
    $t$, guess which part of the noise is not noise. Notebook 03 trains one network to do both, told
    which $t$ it is looking at.

    ### Exercise (b): change the number of timesteps

    Write `final_alpha_bar(schedule, num_timesteps)` that returns $\bar\alpha$ at the last step
    $t = T - 1$, using `schedules.make_betas` and `schedules.alphas_cumprod`. The check prints it for
    $T = 50$ and $T = 1000$ for every schedule. Before you look: which schedules will still be mostly
    signal at the end with $T = 50$?
    """),
    code(r'''
    def final_alpha_bar(schedule, num_timesteps):
        """alpha_bar at the last step t = num_timesteps - 1."""
        ### BEGIN SOLUTION
        return schedules.alphas_cumprod(schedules.make_betas(schedule, num_timesteps))[-1].item()
        ### END SOLUTION
    '''),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    print("final alpha_bar   T=50  T=1000")
    for name in schedules.SCHEDULES:
        print(f"{name:>15} {final_alpha_bar(name, 50):6.4f} {final_alpha_bar(name, 1000):7.4f}")
    assert abs(final_alpha_bar("linear", 50) - math.prod(1 - b for b in torch.linspace(1e-4, 0.02, 50).tolist())) < 1e-6
    ### BEGIN HIDDEN TESTS
    assert final_alpha_bar("cosine", 50) < 1e-6 and final_alpha_bar("cosine", 1000) < 1e-6
    assert abs(final_alpha_bar("linear", 2) - (1 - 1e-4) * (1 - 0.02)) < 1e-9
    ### END HIDDEN TESTS
    '''),
    code(r'''
    fig, ax = plt.subplots(figsize=(6, 3))
    for name, style in [("linear", "-"), ("cosine", "--")]:
        for steps, color in [(1000, "C0"), (50, "C1")]:
            abar = schedules.alphas_cumprod(schedules.make_betas(name, steps))
            ax.plot(torch.arange(1, steps + 1) / steps, abar.numpy(), style, color=color, label=f"{name}, T={steps}")
    rescaled = schedules.alphas_cumprod(schedules.linear_betas(50, 1e-4 * 1000 / 50, 0.02 * 1000 / 50))
    ax.plot(torch.arange(1, 51) / 50, rescaled.numpy(), ":", color="C2", label="linear, T=50, betas x 20")
    ax.set(xlabel="(t + 1) / T: the fraction of the steps taken", ylabel=r"$\bar\alpha_t$")
    ax.legend(fontsize=8)
    plt.show()
    '''),
    md(r"""
    The linear, scaled linear and sigmoid schedules fix $\beta$ **per step**, so with 50 steps the
    total noise is far smaller: $\bar\alpha_{T-1} \approx 0.60$ for linear, and the "noisiest" image
    is still 78% signal ($\sqrt{0.60}$). A model trained like that would be asked at sampling time to
    start from pure noise it has never seen. The cosine schedule is defined on the *fraction* of the
    steps taken, so its curve is the same for any $T$ (the two dashed curves coincide). The usual fix for the linear schedule (used in OpenAI's
    `guided-diffusion` code) is to scale $\beta_{\text{start}}$ and $\beta_{\text{end}}$ by $1000/T$: the
    dotted curve. (Sampling a model trained with $T = 1000$ in only 50 steps is a different question,
    answered by the samplers of notebook 04.)

    ### Exercise (c): design a schedule

    Write `quadratic_betas(num_timesteps, beta_start=1e-4, beta_end=0.02)` where $\beta$ grows with the
    *square* of $t/(T-1)$, from `beta_start` at $t = 0$ to `beta_end` at $t = T-1$, as float64 like
    `course_utils`, rejecting a bad `num_timesteps` with `schedules.check_num_timesteps`. Before you run
    the check: will its SNR lie above or below the linear schedule's, and will it end in pure noise?
    """),
    code(r'''
    def quadratic_betas(num_timesteps, beta_start=1e-4, beta_end=0.02):
        """beta_t = beta_start + (beta_end - beta_start) * (t / (T - 1))**2."""
        ### BEGIN SOLUTION
        schedules.check_num_timesteps(num_timesteps)
        fraction = torch.linspace(0, 1, num_timesteps, dtype=torch.float64)  # t / (T - 1)
        return beta_start + (beta_end - beta_start) * fraction**2
        ### END SOLUTION
    '''),
    code(r'''
    # NBVAL_CHECK_OUTPUT
    quadratic = quadratic_betas(T)
    assert quadratic.shape == (T,) and quadratic.dtype == torch.float64
    assert abs(quadratic[0] - 1e-4) < 1e-12 and abs(quadratic[-1] - 0.02) < 1e-12
    alpha_bar_quadratic = schedules.alphas_cumprod(quadratic)
    snr_quadratic, snr_linear = schedules.snr(alpha_bar_quadratic), schedules.snr(alpha_bars["linear"])
    assert (snr_quadratic.diff() < 0).all(), "SNR must fall at every step"
    assert (snr_quadratic >= snr_linear).all(), "smaller betas leave more signal"
    print(f"final alpha_bar: quadratic {alpha_bar_quadratic[-1]:.4f}, linear {alpha_bars['linear'][-1]:.4f}")
    print(f"steps with SNR > 1: quadratic {(snr_quadratic > 1).sum()}, linear {(snr_linear > 1).sum()}, of {T}")
    ### BEGIN HIDDEN TESTS
    assert abs(quadratic_betas(3)[1] - (1e-4 + (0.02 - 1e-4) / 4)) < 1e-12
    try:
        quadratic_betas(1)
        raise AssertionError("quadratic_betas(1) should raise ValueError")
    except ValueError:
        pass
    ### END HIDDEN TESTS
    '''),
    code(r'''
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.semilogy(snr_linear.numpy(), label="linear")
    ax.semilogy(snr_quadratic.numpy(), label="quadratic (exercise)")
    ax.semilogy(schedules.snr(alpha_bars["cosine"]).numpy(), label="cosine")
    ax.axhline(1, color="gray", lw=0.5)
    ax.set(xlabel="t", ylabel="SNR (log scale)")
    ax.legend(fontsize=8)
    plt.show()
    '''),
    md(r"""
    Each quadratic $\beta_t$ is at most the linear one, so every $\bar\alpha_t$ is at least as large and
    the SNR lies above linear's at every step: the digit survives much longer. The price is at the end:
    $\bar\alpha_{T-1} \approx 0.001$, so about 3% of the image survives the last step, the same kind
    of "not quite pure noise" as scaled linear. Designing a schedule is a trade between *which noise
    levels the steps are spent on* (the shape of the log-SNR curve) and *where it ends*, which should be
    (nearly) pure noise, because that is where sampling starts.

    """),
    *quick_check(2),
    md(r"""
    ## Summary

    - The forward step $x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon$ mixes in noise
      while keeping the variance at 1, so the end of the process is $\mathcal N(0, I)$.
    - The steps compose into one: $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$ with
      $\bar\alpha_t = \prod_{s \le t}(1-\beta_s)$; we checked it against `NUM_CHAINS` step-by-step chains.
    - A schedule is the curve $\bar\alpha_t$ (or SNR). Linear spends many steps on pure noise, cosine
      spreads them evenly, scaled linear (Stable Diffusion) stops short of pure noise, and schedules
      given per step change meaning when you change $T$.

    Later notebooks use `course_utils.schedules`: `make_betas`, `alphas_cumprod`, `snr` and
    `q_sample`, the functions you have just written by hand. **Next:** notebook 03 trains a small UNet
    to look at $x_t$ and $t$ and predict the $\varepsilon$ that `q_sample` put in, then runs the loop of
    notebook 01 with it.
    """),
]


if __name__ == "__main__":
    write(notebook(FILENAME, TITLE, PARAMETERS, CELLS), FILENAME)
