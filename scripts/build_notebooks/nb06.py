"""Generate notebooks/06_text_conditioning.ipynb (no outputs; run scripts/execute_notebooks.py after).

    python scripts/build_notebooks/nb06.py && python scripts/execute_notebooks.py notebooks/06_text_conditioning.ipynb
"""
from common import code, md, notebook, quick_check, write

FILENAME = "06_text_conditioning.ipynb"

TITLE = r"""
# 06 · Text conditioning and classifier-free guidance, from scratch

{badge}

Notebook 05's latent DDPM draws *some* digit. Now the prompt decides which one, and how it looks. Every piece
is the one Stable Diffusion uses, at toy scale and trained from scratch on a CPU:

1. **captions**: MNIST has labels, not text, so we measure each digit (stroke thickness, slant, size) and write
   captions that are true of it, "a thick, slanted right seven";
2. a **tokenizer** whose vocabulary is learned from those captions by byte-pair encoding, and a small
   **transformer text encoder** (`transformers.CLIPTokenizer` and `CLIPTextModel`, the classes of Stable Diffusion v1);
3. **cross-attention**, through which every latent pixel of the UNet (`diffusers.UNet2DConditionModel`) reads
   the prompt's tokens;
4. **conditioning dropout** and **classifier-free guidance** (CFG), written by hand, and what the guidance scale
   does, measured: prompt adherence, variety and over-saturation from scale 0 to 15; negative prompts; attributes.

*Runs in about 2 minutes on a 2-core CPU with the defaults below.*
"""

PARAMETERS = """
SEED = 0  # seeds every random generator
THREADS = 2  # CPU threads; results depend on it
GUIDANCE_SCALE = 4.0  # classifier-free guidance scale w (0 to 50)
SAMPLING_STEPS = 25  # DDPM sampler steps (1 to 1000)
SAMPLES_PER_DIGIT = 10  # samples per prompt, for each of the ten digits
LIVE_TRAIN_STEPS = 30  # optimizer steps of the live demo run (the shipped model had thousands)
LIVE_BATCH_SIZE = 64  # captioned latents per step in the live run
"""

CELLS = [
code("""
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display
from torch.nn import functional as F
from tqdm.auto import tqdm

from course_utils import captions, guidance, latents, metrics, text, viz
from course_utils.data import DATA_DIR, mnist_tensors
from course_utils.homework import check_close, check_range
from course_utils.runtime import setup
from course_utils.unet import count_parameters

for name, value, low, high in [("SAMPLING_STEPS", SAMPLING_STEPS, 1, 1000), ("SAMPLES_PER_DIGIT", SAMPLES_PER_DIGIT, 1, 1000),
                               ("LIVE_TRAIN_STEPS", LIVE_TRAIN_STEPS, 1, 100_000), ("LIVE_BATCH_SIZE", LIVE_BATCH_SIZE, 1, 4096)]:
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
if not isinstance(GUIDANCE_SCALE, (int, float)) or not 0 <= GUIDANCE_SCALE <= 50:
    raise ValueError(f"GUIDANCE_SCALE must be a number in [0, 50], got {GUIDANCE_SCALE!r}")
device = setup(seed=SEED, threads=THREADS)
images, labels = mnist_tensors("train")
"""),
md(r"""
## 1. Captions from measurements

Text-to-image models learn from image–caption pairs. MNIST has only labels, so we *measure* three things
about each digit and describe the unusual ones:

- **thickness**: a stroke of width $w$ and length $L$ covers $wL$ pixels and has a boundary of about $2L$
  pixels, so the mean stroke width is $2\,\text{area} / \text{boundary}$;
- **slant**: how much the ink shifts right as it goes up, $-\mathrm{cov}(x, y) / \mathrm{var}(y)$ over the ink
  pixels (the moment used to deskew MNIST; image rows grow downwards, hence the minus);
- **size**: the area of the ink's bounding box.

Here is the thickness, written out; `course_utils.captions` holds all three.
"""),
code("""
def stroke_thickness(images):
    ink = (images[:, 0] + 1) / 2 > 0.5  # [N, 28, 28] booleans
    padded = F.pad(ink, (1, 1, 1, 1), value=False)
    interior = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    boundary = (ink & ~interior).flatten(1).sum(1)  # ink pixels with a background neighbour
    return 2.0 * ink.flatten(1).sum(1) / boundary.clamp_min(1)

torch.testing.assert_close(stroke_thickness(images[:1000]), captions.stroke_thickness(images[:1000]))
attributes = captions.measure_attributes(images[:1000])
order = {name: values.argsort() for name, values in attributes.items()}
fig, axes = plt.subplots(3, 1, figsize=(9, 3.6))
for ax, name in zip(axes, captions.ATTRIBUTES):
    picks = order[name][torch.linspace(0, 999, 12).long()]  # from lowest to highest
    viz.show_images(images[:1000][picks], nrow=12, ax=ax, title=f"{name}: lowest to highest")
plt.tight_layout(); plt.show()
"""),
md(r"""
A thin 8 is thicker than a thick 1, so each attribute is judged **within its class**: a digit in the top third
of its class gets the "high" word (thick or bold, slanted or leaning right, large or big), the bottom third the
"low" word, the middle third nothing. Templates vary the wording, and numerals alternate with words:
"""),
code("""
# NBVAL_CHECK_OUTPUT
example_captions = captions.caption_dataset(images[:1000], labels[:1000], seed=SEED)
for index in range(8):
    print(f"{labels[index].item()}: {example_captions[index]}")
"""),
md(r"""
## 2. From words to token embeddings

A text encoder reads integers, one per **token**. Stable Diffusion's CLIP tokenizer uses **byte-pair encoding**
(BPE, [Sennrich et al. 2016](https://arxiv.org/abs/1508.07909)): start from single characters (with `</w>` marking
the end of a word), and repeatedly merge the most frequent adjacent pair into a new symbol. Frequent words become
one token; rare words stay split into known pieces, so no word is ever out of vocabulary. One merge step, by hand:
"""),
code("""
from collections import Counter

words = Counter(tuple(word[:-1]) + (word[-1] + "</w>",) for caption in example_captions for word in text.pre_tokenize(caption))
pairs = Counter()
for symbols, count in words.items():
    for pair in zip(symbols, symbols[1:]):
        pairs[pair] += count
print("most frequent pairs:", pairs.most_common(4))
print("first merges learned by text.learn_bpe:", text.learn_bpe(example_captions)[:4])
"""),
md(r"""
`text.learn_bpe` repeats that until every caption word is a single symbol; `text.make_tokenizer` turns the merges
into a real `transformers.CLIPTokenizer`. The shipped model's tokenizer was learned from the captions of all
60,000 training digits and is saved next to its weights:
"""),
code("""
# NBVAL_CHECK_OUTPUT
tokenizer, text_encoder, unet, manifest = guidance.load_text2image()
print(f"vocabulary: {len(tokenizer)} tokens (CLIP: 49,408); context: {tokenizer.model_max_length} tokens (CLIP: 77)")
for prompt in ["a thick seven", "the digit 7, slanted left", "a zebra"]:
    print(f"{prompt!r:30} -> {tokenizer.tokenize(prompt)}")
print(text.tokenize(tokenizer, ["a thick seven"])[0].tolist())
"""),
md(r"""
The ids go through a **transformer text encoder**, `CLIPTextModel`: token and position embeddings, then layers of
causal self-attention, so each output vector describes its token *in context* ("thick" next to "seven"). The UNet
reads all of them, one 64-wide vector per token, padding included.
"""),
code("""
# NBVAL_CHECK_OUTPUT
vae = latents.load_vae()
embeddings = guidance.embed_prompts(tokenizer, text_encoder, ["a thick seven", ""])
print(f"prompt embeddings: {tuple(embeddings.shape)}  (Stable Diffusion v1: (2, 77, 768))")
for label, model, sd_size in [("text encoder", text_encoder, "123M"), ("UNet", unet, "860M"), ("VAE", vae, "84M")]:
    print(f"{label:>12}: {count_parameters(model):>9,} parameters (Stable Diffusion v1: {sd_size})")
"""),
md(r"""
## 3. Cross-attention: how the image reads the prompt

Inside the UNet, after each residual block at the 8×8 and 4×4 levels, a transformer block lets every latent
pixel look at every token. Self-attention among pixels comes first; then **cross-attention**: queries from the
pixels, keys and values from the text,

$$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\Big(\frac{Q K^\top}{\sqrt d}\Big) V,\qquad Q = W_Q h_\text{pixels},\ K = W_K c_\text{tokens},\ V = W_V c_\text{tokens}.$$

Each pixel gets a weighted mix of token values: the prompt can write different things into different places.
Here it is by hand, against the shipped UNet's own first cross-attention layer:
"""),
code("""
def cross_attention(attn, pixels, tokens):
    batch, heads = pixels.shape[0], attn.heads
    split = lambda x: x.reshape(batch, x.shape[1], heads, -1).transpose(1, 2)  # [B, heads, n, d]
    q, k, v = split(attn.to_q(pixels)), split(attn.to_k(tokens)), split(attn.to_v(tokens))
    weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)  # [B, heads, pixels, tokens]
    mixed = (weights @ v).transpose(1, 2).reshape(batch, pixels.shape[1], -1)
    return attn.to_out[0](mixed), weights

attn = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2
pixels = torch.randn(2, 64, attn.to_q.in_features)  # 8x8 = 64 latent pixels
ours, weights = cross_attention(attn, pixels, embeddings)
torch.testing.assert_close(ours, attn(pixels, encoder_hidden_states=embeddings))
print("hand-written cross-attention equals diffusers'; weights per pixel sum to", weights.sum(-1).mean().item())
"""),
md(r"""
## 4. One model, conditional and unconditional

Training is notebook 03's epsilon loss with one more input: $\|\epsilon - \epsilon_\theta(z_t, t, c)\|^2$, where $c$ is the
caption's token embeddings, and the text encoder learns together with the UNet. One change makes guidance possible
later: **conditioning dropout**. For 10% of the examples the caption is replaced by the empty prompt "", so the same
network also learns $\epsilon_\theta(z_t, t, \varnothing)$, the unconditional model of notebook 05.
"""),
code("""
rng = np.random.default_rng(SEED)
print(guidance.drop_prompts(example_captions[:10], 0.1, rng))
"""),
md(r"""
A few live training steps of a fresh model, exactly as `scripts/train_text2image.py` does them (the shipped model was
trained for many thousands of steps; the loss starts near 1, the variance of the noise it must predict):
"""),
code("""
torch.manual_seed(SEED)
fresh_text_encoder, fresh_unet = text.make_text_encoder(tokenizer), guidance.make_conditional_unet()
parameters = [*fresh_text_encoder.parameters(), *fresh_unet.parameters()]
optimizer = torch.optim.AdamW(parameters, lr=5e-4)
train_latents = latents.encode(vae, images[:2000])
train_captions = captions.caption_dataset(images[:2000], labels[:2000], seed=SEED)
alpha_bar = guidance.latent_scheduler().alphas_cumprod
generator, losses = torch.Generator().manual_seed(SEED), []
for step in tqdm(range(LIVE_TRAIN_STEPS), desc="live training"):
    index = torch.randint(0, 2000, (LIVE_BATCH_SIZE,), generator=generator)
    prompts = guidance.drop_prompts([train_captions[i] for i in index], 0.1, rng)
    t = torch.randint(0, 1000, (LIVE_BATCH_SIZE,), generator=generator)
    noise = torch.randn(train_latents[index].shape, generator=generator)
    z_t = alpha_bar[t].sqrt()[:, None, None, None] * train_latents[index] + (1 - alpha_bar[t]).sqrt()[:, None, None, None] * noise
    c = fresh_text_encoder(text.tokenize(tokenizer, prompts)).last_hidden_state
    loss = F.mse_loss(fresh_unet(z_t, t, encoder_hidden_states=c).sample, noise)
    optimizer.zero_grad(); loss.backward(); optimizer.step(); losses.append(loss.item())
plt.figure(figsize=(5, 2.2)); plt.plot(losses); plt.xlabel("step"); plt.ylabel("epsilon loss"); plt.show()
"""),
md(r"""
## 5. Classifier-free guidance, by hand

With one network we can ask two questions at every step: *what noise do you see, knowing the prompt?* and
*what noise do you see, knowing nothing?* Their difference points from "any digit" towards "this prompt".
Classifier-free guidance ([Ho & Salimans 2022](https://arxiv.org/abs/2207.12598)) walks $w$ times that difference:

$$\hat\epsilon = \epsilon_\theta(z_t, t, \varnothing) + w\,\big(\epsilon_\theta(z_t, t, c) - \epsilon_\theta(z_t, t, \varnothing)\big).$$

$w = 0$ ignores the prompt, $w = 1$ is the plain conditional model, $w > 1$ exaggerates the prompt. The two
predictions come from one batched UNet call, the latents stacked twice. The sampler is a `diffusers` DDPM
scheduler on the cosine schedule (notebook 04's `make_scheduler`, via `guidance.latent_scheduler`) with Stable
Diffusion's "leading" timesteps: for 25 steps it starts at $t = 961$ rather than 999, where $\sqrt{\bar\alpha_t}$ is
0.06 instead of $5\cdot10^{-5}$, so the estimate of $z_0$ needs no clipping (the pipeline of notebook 07 turns
clipping off).
"""),
code("""
def sample(prompts, guidance_scale, negative_prompts=None, steps=SAMPLING_STEPS, seed=SEED):
    scheduler, generator = guidance.latent_scheduler("ddpm"), torch.Generator().manual_seed(seed)
    c = guidance.embed_prompts(tokenizer, text_encoder, prompts)
    c_empty = guidance.embed_prompts(tokenizer, text_encoder, negative_prompts or [""] * len(prompts))
    scheduler.set_timesteps(steps)
    z = torch.randn((len(prompts), 4, 8, 8), generator=generator) * scheduler.init_noise_sigma
    with torch.no_grad():
        for t in tqdm(scheduler.timesteps, desc=f"w = {guidance_scale}", leave=False):
            eps_uncond, eps_cond = unet(torch.cat([z, z]), t, encoder_hidden_states=torch.cat([c_empty, c])).sample.chunk(2)
            eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
            z = scheduler.step(eps, t, z, generator=generator).prev_sample
    return z

digit_prompts = [f"a handwritten {captions.NUMBER_WORDS[d]}" for d in range(10) for _ in range(SAMPLES_PER_DIGIT)]
requested = torch.arange(10).repeat_interleave(SAMPLES_PER_DIGIT)
z = sample(digit_prompts, GUIDANCE_SCALE)
viz.show_images(latents.decode(vae, z), nrow=SAMPLES_PER_DIGIT, title=f'"a handwritten zero" ... "nine", w = {GUIDANCE_SCALE}')
plt.show()
"""),
md(r"""
`course_utils.guidance.sample_with_guidance` is this loop (the formula is `classifier_free_guidance`), and
`tests/test_guidance.py` shows that it gives the same latents as `diffusers.StableDiffusionPipeline` built from these
components, negative prompts included. One difference: the pipeline skips the unconditional half when $w \le 1$, so
its $w = 0$ means "conditional"; ours follows the formula.
"""),
code("""
# NBVAL_CHECK_OUTPUT
again = guidance.sample_with_guidance(unet, guidance.latent_scheduler("ddpm"), guidance.embed_prompts(tokenizer, text_encoder, digit_prompts),
                                      guidance.embed_prompts(tokenizer, text_encoder, [""] * len(digit_prompts)), GUIDANCE_SCALE,
                                      SAMPLING_STEPS, torch.Generator().manual_seed(SEED), progress=False)
print(f"course_utils.guidance gives the same latents: {torch.allclose(again, z, atol=1e-5)}")
classifier = metrics.load_classifier()
predicted = metrics.classify(classifier, latents.decode(vae, z))[1].argmax(dim=1)
print(f"adherence at w = {GUIDANCE_SCALE}: {(predicted == requested).float().mean():.2f} of {len(requested)} samples "
      f"are the digit the prompt asked for")
"""),
md(r"""
## 6. What the guidance scale does

Same prompts, same starting noise, six scales. **Adherence** is the share of samples the course classifier reads as
the requested digit. **Variety** is the spread of the classifier's features within each digit, relative to real
digits (1.0 = as varied as real handwriting). **Saturation** shows in the latents: guidance extrapolates, so at high
$w$ the final latents grow beyond the range the decoder saw in training (real latents: std 1.0), and strokes turn
blotchy: the "burn" familiar from Stable Diffusion at high CFG.
"""),
code("""
scales = [0, 1, 2, 4, 7.5, 15]
real_features = metrics.classify(classifier, images[:1000])[0]
real_spread = np.mean([torch.cov(real_features[labels[:1000] == d].T).trace().item() for d in range(10)])
sweep = {}
for w in tqdm(scales, desc="guidance sweep"):
    z_w = sample(digit_prompts, w)
    decoded = latents.decode(vae, z_w)
    features, probabilities = metrics.classify(classifier, decoded)
    predicted = probabilities.argmax(dim=1)
    spread = np.mean([torch.cov(features[requested == d].T).trace().item() for d in range(10)]) / real_spread
    sweep[w] = {"adherence": (predicted == requested).float().mean().item(), "spread": spread,
                "latent std": z_w.std().item(), "images": decoded}
"""),
code("""
# NBVAL_CHECK_OUTPUT
print("   w  adherence  spread  latent std")
for w, row in sweep.items():
    print(f"{w:>4}  {row['adherence']:9.2f}  {row['spread']:6.2f}  {row['latent std']:10.2f}")
"""),
code("""
fig, axes = plt.subplots(1, 3, figsize=(11, 2.6))
for ax, key in zip(axes, ["adherence", "spread", "latent std"]):
    ax.plot(scales, [sweep[w][key] for w in scales], "o-"); ax.set_xlabel("guidance scale w"); ax.set_title(key)
plt.tight_layout(); plt.show()
columns = torch.arange(0, 10 * SAMPLES_PER_DIGIT, SAMPLES_PER_DIGIT)  # the first sample of each digit
viz.show_images(torch.cat([sweep[w]["images"][columns] for w in scales]), nrow=10,
                title="rows: w = " + ", ".join(map(str, scales)) + " (same noise)")
plt.show()
"""),
md(r"""
`scripts/evaluate_text2image.py` runs the same sweep with 100 samples per digit (1,000 per scale), adds MNIST FID
against real digits and the ink share (fraction of bright pixels), and measures attribute control. Its table (also in the README):
"""),
code("""
display(Markdown((DATA_DIR.parent / "docs" / "guidance_sweep.md").read_text()))
"""),
md(r"""
## 7. Steering the look: attributes and negative prompts

The captions also named thickness, slant and size, so those words should move the measured attributes. We ask for
every digit "thin" and then "thick" (same noise) and measure the results with the functions that wrote the captions.
"""),
code("""
# NBVAL_CHECK_OUTPUT
for name, ((low_word, _), (high_word, _)) in captions.ATTRIBUTE_WORDS.items():
    measured = []
    for word in (low_word, high_word):
        prompts = [f"a {word} {captions.NUMBER_WORDS[d]}" for d in range(10) for _ in range(SAMPLES_PER_DIGIT)]
        measured.append(captions.measure_attributes(latents.decode(vae, sample(prompts, GUIDANCE_SCALE)))[name].mean().item())
    print(f"{name:>9}: '{low_word}' {measured[0]:7.2f}   '{high_word}' {measured[1]:7.2f}   effect {measured[1] - measured[0]:+.2f}")
"""),
md(r"""
A **negative prompt** replaces the empty prompt in the guidance formula: the sampler is pushed *away* from it as well
as towards the prompt. Left: "a handwritten eight"; right: the same, with the negative prompt "thin".
"""),
code("""
# NBVAL_CHECK_OUTPUT
eights = ["a handwritten eight"] * 16
plain = latents.decode(vae, sample(eights, GUIDANCE_SCALE))
not_thin = latents.decode(vae, sample(eights, GUIDANCE_SCALE, negative_prompts=["thin"] * 16))
print(f"mean stroke thickness: {captions.stroke_thickness(plain).mean():.2f} px without, "
      f"{captions.stroke_thickness(not_thin).mean():.2f} px with the negative prompt 'thin'")
"""),
code("""
fig, axes = plt.subplots(1, 2, figsize=(8, 2.4))
viz.show_images(plain, nrow=8, ax=axes[0], title="a handwritten eight")
viz.show_images(not_thin, nrow=8, ax=axes[1], title="... negative prompt: thin")
plt.show()
"""),
md(r"""
## Exercises

### Exercise 1: guidance in one line

Write `guide(eps_uncond, eps_cond, w)`, the classifier-free guidance combination, without looking at section 5.
"""),
code("""
def guide(eps_uncond, eps_cond, w):
    ### BEGIN SOLUTION
    return eps_uncond + w * (eps_cond - eps_uncond)
    ### END SOLUTION
"""),
code("""
a, b = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
check_close("guide(a, b, 1.0)", guide(a, b, 1.0), b, hint="w = 1 must give the conditional prediction")
### BEGIN HIDDEN TESTS
check_close("guide(a, b, 7.5)", guide(a, b, 7.5), guidance.classifier_free_guidance(a, b, 7.5))
check_close("guide(a, b, 0.0)", guide(a, b, 0.0), a)
### END HIDDEN TESTS
"""),
md(r"""
### Exercise 2: the cheapest scale that works

Guidance costs two UNet calls per step whatever $w$ is, but a larger $w$ costs variety. From the live sweep of section 6
(`sweep`), find the **smallest** scale whose adherence is at least 0.9, and store it in `smallest_good_scale`
(`None` if there is none).
"""),
code("""
### BEGIN SOLUTION
smallest_good_scale = min((w for w in scales if sweep[w]["adherence"] >= 0.9), default=None)
### END SOLUTION
print(smallest_good_scale)
"""),
code("""
assert smallest_good_scale is None or smallest_good_scale in scales, "pick one of the swept scales"
### BEGIN HIDDEN TESTS
good = [w for w in scales if sweep[w]["adherence"] >= 0.9]
assert smallest_good_scale == (min(good) if good else None)
### END HIDDEN TESTS
"""),
md(r"""
### Exercise 3 (open): outside the training captions

Try prompts the model never saw: "a seven and a one", "a zebra", "the digit 12", "an eight that is thick and thin".
What does the model do with words it has no meaning for (the tokenizer splits "zebra" into characters; see
section 2)? Notebook 07 returns to these limits with the full pipeline.
"""),
*quick_check(6),
md(r"""
## Summary

- Captions can be *measured* into existence: label plus attributes, worded many ways, always true of the image.
- A BPE tokenizer and a small CLIP text encoder turn a prompt into per-token vectors; the UNet reads them with
  cross-attention, which we wrote by hand and matched to `diffusers`.
- Dropping 10% of the captions gives one network that is both conditional and unconditional; classifier-free guidance
  combines the two predictions, trading variety for adherence as $w$ grows, and over-saturates at large $w$.
  A negative prompt takes the place of the empty one.

## What's next

Tokenizer, text encoder, UNet, scheduler, VAE: these are exactly the parts of a `diffusers.StableDiffusionPipeline`.
Notebook 07 assembles them into one, runs it, swaps its scheduler, uses it for image-to-image and inpainting, and
runs a real Stable Diffusion checkpoint when you have a GPU.
"""),
]

if __name__ == "__main__":
    write(notebook(FILENAME, TITLE, PARAMETERS, CELLS), FILENAME)
