"""Generate notebooks/07_stable_diffusion.ipynb (no outputs; run scripts/execute_notebooks.py after).

    python scripts/build_notebooks/nb07.py && python scripts/execute_notebooks.py notebooks/07_stable_diffusion.ipynb
"""
from common import code, md, notebook, quick_check, write

FILENAME = "07_stable_diffusion.ipynb"

TITLE = r"""
# 07 · A full Stable Diffusion run through the `diffusers` pipeline

{badge}

Notebooks 05 and 06 built every part of a text-to-image system: a VAE, a tokenizer, a text encoder, a
cross-attention UNet, a scheduler, classifier-free guidance. Production systems are exactly this structure,
larger. Here we put the course's parts into a real `diffusers.StableDiffusionPipeline`, save and reload it,
take it apart again into a hand-written loop that gives the same pixels, and use every knob a user of Stable
Diffusion turns: steps, guidance scale, seed, negative prompt, scheduler, image-to-image and inpainting.

**Which model runs.** With `MODEL = "auto"` the notebook runs the course's own pipeline, bundled in
`data/course_pipeline/` (about 4M parameters, offline, seconds on a CPU), unless you have both a CUDA GPU and
the Hugging Face hub, in which case it runs **Stable Diffusion v1.5** (`stable-diffusion-v1-5/stable-diffusion-v1-5`,
about 1.07 billion parameters: 2.1 GB of fp16 weights to download, and a GPU with several GB of memory). Set
`MODEL = "course"` to force the course model, or to a hub id or a local folder of any Stable Diffusion checkpoint.
The same cells run either way; the cell after the parameters says which one ran.

*Runs in about 1 minute on a 2-core CPU with the defaults below (course model).*
"""

PARAMETERS = """
SEED = 0  # seeds every random generator
THREADS = 2  # CPU threads; results depend on it
MODEL = "auto"  # "auto", "course", or a Stable Diffusion hub id / folder (needs the network and a GPU)
PROMPT = "a thick seven"  # try "a handwritten three, slanted left" (course) or anything (Stable Diffusion)
NEGATIVE_PROMPT = ""  # pushed away from, e.g. "thin"
GUIDANCE_SCALE = 4.0  # classifier-free guidance scale (0 to 50)
SAMPLING_STEPS = 25  # scheduler steps (5 to 1000)
NUM_IMAGES = 8  # images per prompt
"""

CELLS = [
code("""
import time

import matplotlib.pyplot as plt
import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler,
                       StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline)
from diffusers.utils import logging as diffusers_logging

from course_utils import metrics, pipeline, viz
from course_utils.data import mnist_tensors
from course_utils.homework import check_close
from course_utils.runtime import setup
from course_utils.unet import count_parameters

# at least 5 steps: image-to-image at strength 0.2 runs int(0.2 * SAMPLING_STEPS) of them
for name, value, low, high in [("SAMPLING_STEPS", SAMPLING_STEPS, 5, 1000), ("NUM_IMAGES", NUM_IMAGES, 1, 64)]:
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
if not isinstance(GUIDANCE_SCALE, (int, float)) or not 0 <= GUIDANCE_SCALE <= 50:
    raise ValueError(f"GUIDANCE_SCALE must be a number in [0, 50], got {GUIDANCE_SCALE!r}")
if not isinstance(MODEL, str) or not MODEL.strip():
    raise ValueError(f"MODEL must be 'auto', 'course', a hub id or a folder, got {MODEL!r}")
diffusers_logging.set_verbosity_error()  # the "safety checker disabled" notice: this course's model draws only digits
device = setup(seed=SEED, threads=THREADS)
"""),
code("""
# NBVAL_CHECK_OUTPUT
model_name = pipeline.choose_model(MODEL)
pipe = pipeline.load_pipeline(model_name, device)
is_course = model_name == "course"
print("running:", "the course's own pipeline, data/course_pipeline (offline)" if is_course else f"{model_name} from the hub")
print(type(pipe).__name__, "with", ", ".join(name for name, part in pipe.components.items() if part is not None))
"""),
md(r"""
## 1. The parts, and what they cost

A pipeline is a bag of components. Their classes are the same whichever checkpoint you load; only their sizes
differ. For reference, Stable Diffusion v1 has an 860M-parameter UNet, a 123M text encoder (CLIP ViT-L/14's) and
an 84M VAE.
"""),
code("""
# NBVAL_CHECK_OUTPUT
reference = {"text_encoder": "123M", "unet": "860M", "vae": "84M"}
for name in ["tokenizer", "text_encoder", "unet", "vae", "scheduler"]:
    part = pipe.components[name]
    size = f"{count_parameters(part):>11,} parameters (SD v1: {reference[name]})" if name in reference else ""
    print(f"{name:>12}: {type(part).__name__:<28} {size}")
side = pipeline.pipeline_resolution(pipe)
print(f"images {side}x{side}x{pipe.vae.config.in_channels} <-> latents {pipe.unet.config.sample_size}x"
      f"{pipe.unet.config.sample_size}x{pipe.unet.config.in_channels}; context {pipe.tokenizer.model_max_length} tokens; "
      f"latent scaling factor {pipe.vae.config.scaling_factor:.4g}")
"""),
md(r"""
## 2. One call

`pipe(prompt, ...)` tokenizes and encodes the prompt, draws seeded noise latents, runs the scheduler's loop with
guidance, and decodes. `output_type="pt"` returns tensors in $[0, 1]$.
"""),
code("""
def run(prompt=PROMPT, negative_prompt=NEGATIVE_PROMPT, guidance_scale=GUIDANCE_SCALE, steps=SAMPLING_STEPS, seed=SEED, n=NUM_IMAGES):
    return pipe([prompt] * n, negative_prompt=[negative_prompt] * n, guidance_scale=guidance_scale,
                num_inference_steps=steps, generator=torch.Generator().manual_seed(seed), output_type="pt").images.cpu()

started = time.perf_counter()
images = run()
print(f"{NUM_IMAGES} images in {time.perf_counter() - started:.1f} s")
viz.show_images(images * 2 - 1, nrow=8, title=f'"{PROMPT}", {SAMPLING_STEPS} steps, guidance {GUIDANCE_SCALE}')
plt.show()
"""),
md(r"""
## 3. The same, by hand

Nothing in the pipeline is hidden. Below is its whole computation, written with its own components: encode
the prompt and the negative (or empty) prompt; start from seeded noise of the UNet's latent shape; at each of
the scheduler's timesteps, predict the noise for both prompts in one batch, combine them with classifier-free
guidance and step; finally undo the latent scaling and decode.
"""),
code("""
@torch.no_grad()
def generate_by_hand(prompt, negative_prompt, guidance_scale, steps, seed, n):
    def embed(text):
        ids = pipe.tokenizer([text] * n, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(pipe.device)
        return pipe.text_encoder(ids).last_hidden_state
    c, c_negative = embed(prompt), embed(negative_prompt)
    generator, size = torch.Generator().manual_seed(seed), pipe.unet.config.sample_size
    pipe.scheduler.set_timesteps(steps, device=pipe.device)
    z = torch.randn((n, pipe.unet.config.in_channels, size, size), generator=generator).to(pipe.device, c.dtype)
    z = z * pipe.scheduler.init_noise_sigma
    for t in pipe.scheduler.timesteps:
        z_in = pipe.scheduler.scale_model_input(torch.cat([z, z]), t)
        eps_negative, eps = pipe.unet(z_in, t, encoder_hidden_states=torch.cat([c_negative, c])).sample.chunk(2)
        z = pipe.scheduler.step(eps_negative + guidance_scale * (eps - eps_negative), t, z, generator=generator).prev_sample
    return (pipe.vae.decode(z / pipe.vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1).cpu()
"""),
code("""
# NBVAL_CHECK_OUTPUT
by_hand = generate_by_hand(PROMPT, NEGATIVE_PROMPT, GUIDANCE_SCALE, SAMPLING_STEPS, SEED, NUM_IMAGES)
difference = (by_hand - images).abs().max().item()
print(f"hand-written loop vs pipeline: largest pixel difference below 1e-4: {difference < 1e-4}")
"""),
md(r"""
(`course_utils.pipeline.generate_by_hand` is the same loop; `tests/test_pipeline.py` checks it against the pipeline
for the course model and for a small random checkpoint with Stable Diffusion v1's architecture, so the online branch
of this notebook is tested too. The pipeline only runs the unconditional half when `guidance_scale > 1`; at or below
1 it uses the prompt alone.)

## 4. The knobs

**Steps.** Each step is one (batched, doubled for guidance) UNet call, so run time grows linearly. Too few steps
leave blurry or broken shapes; beyond some number nothing improves.
"""),
code("""
classifier = metrics.load_classifier() if is_course else None

def digit_shares(images, digit):
    # share of images the course classifier reads as `digit` (course model only: 1-channel digits)
    predicted = metrics.classify(classifier, pipeline.pipeline_images_to_digits(images))[1].argmax(dim=1)
    return (predicted == digit).float().mean().item()

step_counts = [2, 5, 10, 25, 50]
by_steps = {steps: run(steps=steps, n=8) for steps in step_counts}
viz.show_images(torch.cat(list(by_steps.values())) * 2 - 1, nrow=8, title="rows: " + ", ".join(map(str, step_counts)) + " steps")
plt.show()
"""),
md(r"""
**Guidance scale.** Notebook 06 measured it: more guidance, more adherence, less variety, and at high values
over-saturated, "burnt" images (the latents are pushed outside the range the decoder knows). Below, the share of
each row read as a 7, and the ink share (pixels brighter than mid-grey; real MNIST digits padded to 32×32: about 0.10).
"""),
code("""
scales = [1, 2, 4, 7.5, 15, 30]
by_scale = {w: run(guidance_scale=w, n=8) for w in scales}
viz.show_images(torch.cat(list(by_scale.values())) * 2 - 1, nrow=8, title="rows: guidance " + ", ".join(map(str, scales)))
plt.show()
"""),
code("""
# NBVAL_CHECK_OUTPUT
if is_course:
    for w, images_w in by_scale.items():
        print(f"guidance {w:>4}: {digit_shares(images_w, 7):.2f} read as 7, ink share {(images_w > 0.5).float().mean():.3f}")
"""),
md(r"""
**Seed and negative prompt.** The seed fixes the starting noise, so the same seed with the same settings gives the
same image, and changing only the prompt or a knob shows that knob's effect. The negative prompt takes the place
of the empty prompt in the guidance formula.
"""),
code("""
rows = [run(seed=SEED, n=8), run(seed=SEED + 1, n=8), run(negative_prompt="thin", n=8)]
viz.show_images(torch.cat(rows) * 2 - 1, nrow=8, title=f"seed {SEED} / seed {SEED + 1} / seed {SEED} with negative prompt 'thin'")
plt.show()
"""),
md(r"""
## 5. Swapping the scheduler

The scheduler is the sampler of notebook 04, and any `diffusers` scheduler can take the pipeline's configuration
(the training schedule) with `from_config`. Same seed, same steps:
"""),
code("""
schedulers = {"DDPM (shipped)": pipe.scheduler, "DDIM": DDIMScheduler.from_config(pipe.scheduler.config),
              "DPM-Solver++": DPMSolverMultistepScheduler.from_config(pipe.scheduler.config),
              "Euler": EulerDiscreteScheduler.from_config(pipe.scheduler.config)}
by_scheduler, seconds = {}, {}
for label, scheduler in schedulers.items():
    pipe.scheduler = scheduler
    started = time.perf_counter()
    by_scheduler[label] = run(n=8)
    seconds[label] = time.perf_counter() - started
pipe.scheduler = schedulers["DDPM (shipped)"]
viz.show_images(torch.cat(list(by_scheduler.values())) * 2 - 1, nrow=8, title="rows: " + ", ".join(schedulers))
plt.show()
print("  ".join(f"{label}: {s:.2f} s" for label, s in seconds.items()))
"""),
code("""
# NBVAL_CHECK_OUTPUT
if is_course:
    for label, images_s in by_scheduler.items():
        print(f"{label:>15}: {digit_shares(images_s, 7) * len(images_s):.0f} of {len(images_s)} read as 7")
"""),
md(r"""
## 6. Image-to-image and inpainting

The same components drive other pipelines. **Image-to-image** (SDEdit, [Meng et al. 2022](https://arxiv.org/abs/2108.01073))
encodes a starting image, noises its latent to an intermediate time set by `strength` (0: untouched, 1: pure noise),
and denoises from there under the new prompt. We start from real threes and ask for an eight:
"""),
code("""
img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
img2img.set_progress_bar_config(disable=True)
test_digits, test_labels = mnist_tensors("test")
threes = pipeline.digits_for_pipeline(test_digits[test_labels == 3][:8], pipe)
strengths = [0.2, 0.4, 0.6, 0.8, 1.0]
by_strength = {s: img2img(["a handwritten eight"] * 8, image=threes, strength=s, guidance_scale=GUIDANCE_SCALE,
                          num_inference_steps=SAMPLING_STEPS, generator=torch.Generator().manual_seed(SEED),
                          output_type="pt").images.cpu() for s in strengths}
viz.show_images(torch.cat([threes.cpu(), *by_strength.values()]) * 2 - 1, nrow=8,
                title="input threes, then strength " + ", ".join(map(str, strengths)) + ': "a handwritten eight"')
plt.show()
"""),
code("""
# NBVAL_CHECK_OUTPUT
if is_course:
    for s, images_s in by_strength.items():
        print(f"strength {s}: {digit_shares(images_s, 3):.2f} still read as 3, {digit_shares(images_s, 8):.2f} read as 8")
"""),
md(r"""
**Inpainting** regenerates only a masked region. With a UNet trained for plain text-to-image (like ours, or
Stable Diffusion v1.5 itself), `StableDiffusionInpaintPipeline` keeps the unmasked latents equal to the original,
noised to the current time, at every step, and lets the model fill in the rest so that it fits. Here the top half of
each seven is masked and regenerated under the prompt "a handwritten nine":
"""),
code("""
inpaint = StableDiffusionInpaintPipeline(**pipe.components)
inpaint.set_progress_bar_config(disable=True)
sevens = pipeline.digits_for_pipeline(test_digits[test_labels == 7][:8], pipe)
mask = torch.zeros(8, 1, side, side)
mask[:, :, : side // 2] = 1.0  # 1 = regenerate
inpainted = inpaint(["a handwritten nine"] * 8, image=sevens, mask_image=mask, height=side, width=side,
                    guidance_scale=GUIDANCE_SCALE, num_inference_steps=SAMPLING_STEPS,
                    generator=torch.Generator().manual_seed(SEED), output_type="pt").images.cpu()
viz.show_images(torch.cat([sevens.cpu(), (sevens.cpu() * (1 - mask)), inpainted]) * 2 - 1, nrow=8,
                title="sevens / top half masked / inpainted as 'a handwritten nine'")
plt.show()
"""),
md(r"""
## 7. What these models cannot do

Some limits of Stable Diffusion are famous: it **miscounts** ("three cats" gives two or four), it **cannot write
text** that reads correctly, it gets **spatial relations** wrong ("a red cube on a blue sphere"), and it drops parts
of **long, complex prompts**. The course model shows the same failures in miniature, and the reasons are visible:

- its captions never contained counts, positions or text, so those words are unknown; the tokenizer splits
  them into characters the model never learned to associate with anything;
- the text encoder is small and the UNet reads the prompt only through attention over token vectors: nothing
  forces it to bind "thick" to one digit and "thin" to another;
- a 32×32 canvas holds one digit: "two sevens" has nowhere to go.

Each row below is a prompt outside the training captions; the classifier says what was drawn.
"""),
code("""
limit_prompts = ["two sevens", "the digit 12", "a seven to the left of a one", "the word seven written in letters",
                 "a thick seven and a thin one"]
limit_images = {prompt: run(prompt=prompt, negative_prompt="", n=8) for prompt in limit_prompts}
viz.show_images(torch.cat(list(limit_images.values())) * 2 - 1, nrow=8, title="rows: " + " / ".join(limit_prompts))
plt.show()
"""),
code("""
# NBVAL_CHECK_OUTPUT
if is_course:
    for prompt, images_p in limit_images.items():
        predicted = metrics.classify(classifier, pipeline.pipeline_images_to_digits(images_p))[1].argmax(dim=1)
        print(f"{prompt!r:38} -> classifier reads {sorted(predicted.tolist())}  tokens: {len(pipe.tokenizer.tokenize(prompt))}")
"""),
md(r"""
Larger models push these limits back with scale and better text encoders (Imagen's T5, SDXL's two CLIP encoders,
SD3's transformer with T5), but the structure stays the one you built: tokens → embeddings → cross-attention →
guided denoising of latents → decoder.

## 8. Running a real Stable Diffusion

Everything above runs unchanged with a real checkpoint: on a machine with a CUDA GPU and the hub, `MODEL = "auto"`
picks `stable-diffusion-v1-5/stable-diffusion-v1-5`, or name another Stable-Diffusion-architecture checkpoint:

```python
pipe = pipeline.load_pipeline("stable-diffusion-v1-5/stable-diffusion-v1-5", device="cuda")  # fp16, safetensors only
```

`load_pipeline` accepts only safetensors weights and runs no remote code. The cost is set by the part sizes
printed in section 1: 1.07B parameters are 2.1 GB of fp16 weights, and each of the 25 steps runs the 860M-parameter
UNet twice on 64×64×4 latents. (The course's CI and development machines have no GPU, so this branch is exercised
in `tests/test_pipeline.py` on a tiny random checkpoint of the same architecture, not on the real weights.)

## Exercises

### Exercise 1: what a run costs

How many UNet evaluations does one pipeline call with `num_inference_steps=25` and `guidance_scale=7.5` make for
**one** image? (A batched call for the conditional and the unconditional halves counts as two evaluations.) Store it in
`unet_evaluations`.
"""),
code("""
### BEGIN SOLUTION
unet_evaluations = 2 * 25
### END SOLUTION
print(unet_evaluations)
"""),
code("""
assert isinstance(unet_evaluations, int), "an integer number of evaluations"
### BEGIN HIDDEN TESTS
assert unet_evaluations == 50
### END HIDDEN TESTS
"""),
md(r"""
### Exercise 2: a guidance rescale

At high guidance the images burn because the guided prediction's scale grows. Lin et al. 2024
([arXiv:2305.08891](https://arxiv.org/abs/2305.08891), eq. 15–16) rescale it back to the standard deviation of the
conditional prediction: $\hat\epsilon_\text{rescaled} = \hat\epsilon \cdot \mathrm{std}(\epsilon_c) / \mathrm{std}(\hat\epsilon)$
(per image), then mix $\phi\,\hat\epsilon_\text{rescaled} + (1-\phi)\,\hat\epsilon$. Write `rescale(guided, eps_cond, phi)`;
the pipeline does the same with its `guidance_rescale` argument.
"""),
code("""
def rescale(guided, eps_cond, phi):
    ### BEGIN SOLUTION
    dims = list(range(1, guided.ndim))
    rescaled = guided * eps_cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True)
    return phi * rescaled + (1 - phi) * guided
    ### END SOLUTION
"""),
code("""
guided, eps_cond = torch.randn(2, 4, 8, 8) * 3, torch.randn(2, 4, 8, 8)
check_close("rescale(guided, eps_cond, 0.0)", rescale(guided, eps_cond, 0.0), guided, hint="phi = 0 leaves the prediction alone")
### BEGIN HIDDEN TESTS
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg
check_close("rescale(guided, eps_cond, 0.7)", rescale(guided, eps_cond, 0.7), rescale_noise_cfg(guided, eps_cond, 0.7))
### END HIDDEN TESTS
"""),
md(r"""
### Exercise 3 (open): burn, then repair

Run `pipe(..., guidance_scale=30, guidance_rescale=0.7)` against `guidance_rescale=0.0` with the same seed. Does the
rescale remove the burn in the course model? Measure the ink share as in section 4.
"""),
*quick_check(7),
md(r"""
## Summary

- `StableDiffusionPipeline` is tokenizer → text encoder → scheduler-driven, guided UNet on latents → VAE decoder; the
  course's parts fit it unchanged, and the whole thing is a dozen lines by hand, pixel for pixel.
- Steps, guidance scale, seed, negative prompt and scheduler are the user's knobs; image-to-image and inpainting are
  the same parts started from a noised image or with part of the latent held fixed.
- The famous failures (counting, text, spatial relations, complex prompts) follow from what the captions and the text
  encoder can express.

This is the end of the course's path from `torch.randn` to Stable Diffusion. `README.md` lists further reading and
the measured costs of every notebook.
"""),
]

if __name__ == "__main__":
    write(notebook(FILENAME, TITLE, PARAMETERS, CELLS), FILENAME)
