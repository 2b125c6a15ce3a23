"""Fixtures shared by the unit tests.

The test environment itself (offline Hugging Face settings inherited by every kernel, the Agg backend,
nbval's hooks) is set up by the repository's root conftest.py, which pytest loads before this file and
which also covers notebooks/. The assertion below makes sure it is in force.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"

for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    assert os.environ.get(_name) == "1", f"{_name} is not set: is the root conftest.py missing?"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def require_notebook():
    """``require_notebook("01_noise_to_image.ipynb")``: the notebook's path, or skip if it is not written yet."""

    def find(name: str) -> Path:
        path = NOTEBOOK_DIR / name
        if not path.is_file():
            pytest.skip(f"notebooks/{name} does not exist yet")
        return path

    return find


@pytest.fixture(scope="session")
def tiny_stable_diffusion(tmp_path_factory) -> Path:
    """A random checkpoint with Stable Diffusion v1's architecture and files, saved like a hub checkpoint (safetensors):
    3-channel VAE downsampling 8x with v1's scaling factor, CLIP tokenizer with a 77-token context, 4-channel UNet with
    cross-attention, and v1.5's own scheduler, ``PNDMScheduler`` with its configuration (whose ``step`` takes no
    ``generator``). Small enough to run notebook 07's real-model branch on a CPU in CI."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from course_utils import text

    torch.manual_seed(0)
    tokenizer = text.make_tokenizer(["a photograph of an astronaut riding a horse"])
    tokenizer.model_max_length = 77
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37,
                                                num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                                pad_token_id=tokenizer.pad_token_id))
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=32)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32, 32, 32),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        norm_num_groups=32, scaling_factor=0.18215)
    # stable-diffusion-v1-5's scheduler/scheduler_config.json
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                              set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    folder = tmp_path_factory.mktemp("tiny-sd")
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
