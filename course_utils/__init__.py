"""Helpers for the diffusion course, one module per concept, in course order.

- ``runtime``: the setup cell (seeds, threads, device)
- ``data``: MNIST from the bundled idx files, checksummed
- ``schedules``: noise schedules and the forward process q(x_t | x_0) (notebook 02)
- ``unet``: the course's small UNet noise predictor (notebook 03)
- ``ddpm``: the epsilon loss, EMA and the DDPM ancestral sampler (notebook 03)
- ``metrics``: the MNIST classifier, "MNIST FID" and confident-classification share (notebook 03)
- ``samplers``: DDIM by hand, any ``diffusers`` scheduler in one loop that counts network evaluations (notebook 04)
- ``checkpoints``: safetensors weights with manifests, written atomically
- ``viz``: image grids and denoising animations
- ``homework``: self-checks for exercises and review quizzes (all notebooks)
"""

__version__ = "0.1.0"
