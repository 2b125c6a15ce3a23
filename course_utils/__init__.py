"""Helpers for the diffusion course, one module per concept, in course order.

- ``runtime``: the setup cell (seeds, threads, device)
- ``data``: MNIST from the bundled idx files, checksummed
- ``schedules``: noise schedules and the forward process q(x_t | x_0) (notebook 02)
- ``unet``: the course's small UNet noise predictor (notebook 03)
- ``ddpm``: the epsilon loss, EMA and the DDPM ancestral sampler (notebook 03)
- ``metrics``: the MNIST classifier, "MNIST FID" and confident-classification share (notebook 03)
- ``samplers``: DDIM by hand, any ``diffusers`` scheduler in one loop that counts network evaluations (notebook 04)
- ``latents``: the course VAE (``diffusers.AutoencoderKL``), its loss, PSNR and the latent scaling factor (notebook 05)
- ``captions``: captions for MNIST from the label and measured thickness, slant and size (notebook 06)
- ``text``: a BPE tokenizer learned from the captions and a small CLIP text encoder (notebook 06)
- ``guidance``: the cross-attention UNet, conditioning dropout and classifier-free guidance (notebook 06)
- ``attention_maps``: cross-attention maps per prompt token, recorded during sampling (notebook 06)
- ``pipeline``: the course's parts as a ``diffusers.StableDiffusionPipeline``, or a real one (notebook 07), and
  with notebook 09's ControlNet as a ``StableDiffusionControlNetPipeline``
- ``flow``: flow matching and rectified flow with the same UNet (notebook 08)
- ``reflow``: reflow pairs, the rectified-flow loss on them and the x0-hat drift: few-step generation (notebook 10)
- ``control``: ControlNet at MNIST scale, steering the text-to-image model with a sketch (notebook 09)
- ``validation``: the checks behind every clear error for a bad parameter (all notebooks and modules)
- ``checkpoints``: safetensors weights with manifests, written atomically
- ``part_folders``: the bundled folders of diffusers parts (``data/course_pipeline``, ``data/course_controlnet``),
  checked against their ``checksums.json`` and training records
- ``viz``: image grids and denoising animations
- ``homework``: self-checks for exercises and review quizzes (all notebooks)
"""

__version__ = "0.1.0"
