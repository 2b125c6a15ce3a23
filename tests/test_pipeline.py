"""The course pipeline: manual loop == pipeline, offline loading and checks, and the real-model branch on a tiny
random Stable-Diffusion-v1.5-architecture checkpoint (tests/conftest.py::tiny_stable_diffusion)."""
import json
import shutil

import pytest
import torch

from course_utils import part_folders, pipeline


@pytest.fixture(scope="module")
def course_pipe():
    return pipeline.load_pipeline("course")


def pipe_images(pipe, prompts, negative, guidance_scale, steps, seed):
    images = pipe(prompts, negative_prompt=negative, guidance_scale=guidance_scale, num_inference_steps=steps,
                  generator=torch.Generator().manual_seed(seed), output_type="pt").images
    return images * 2 - 1  # the pipeline returns [0, 1]


def test_bundled_pipeline_loads_offline_with_course_parts(course_pipe):
    assert type(course_pipe).__name__ == "StableDiffusionPipeline"
    assert course_pipe.safety_checker is None
    assert course_pipe.unet.config.sample_size == 8 and course_pipe.vae.config.latent_channels == 4
    assert course_pipe.vae.config.scaling_factor == pytest.approx(1.162, abs=0.01)
    # the UNet is stored in float16 (half the tree) and computed in float32, like every other part on a CPU
    stored = (part_folders.COURSE_PIPELINE_DIR / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size
    assert stored < 2.1 * sum(p.numel() for p in course_pipe.unet.parameters())
    assert {part.dtype for part in (course_pipe.unet, course_pipe.vae, course_pipe.text_encoder)} == {torch.float32}


def test_manual_loop_equals_the_pipeline(course_pipe):
    prompts, negative = ["a thick seven", "the number one"], ["thin", ""]
    expected = pipe_images(course_pipe, prompts, negative, 4.0, 10, seed=3)
    ours = pipeline.generate_by_hand(course_pipe, prompts, negative, 4.0, 10, torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_corrupt_pipeline_folder_names_the_rebuild_command(tmp_path, monkeypatch):
    copy = tmp_path / "course_pipeline"
    shutil.copytree(part_folders.COURSE_PIPELINE_DIR, copy)
    part_folders.verify_pipeline_folder(copy)
    with open(copy / "unet" / "diffusion_pytorch_model.safetensors", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    # the shipped text-to-image model was trained in two stages: the message names both commands, in order
    stages = r"scripts/train_text2image.py --steps .*`, then `python scripts/train_text2image.py --init-from"
    with pytest.raises(part_folders.PipelineFilesError, match=stages):
        part_folders.verify_pipeline_folder(copy)
    (copy / part_folders.CHECKSUMS_FILE).unlink()
    with pytest.raises(part_folders.PipelineFilesError, match="missing"):
        part_folders.verify_pipeline_folder(copy)


def test_choose_model_stays_offline_when_told(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not pipeline.hub_reachable()
    assert pipeline.choose_model("auto") == "course"
    assert pipeline.choose_model("some/checkpoint") == "some/checkpoint"
    with pytest.raises(ValueError, match="model"):
        pipeline.choose_model("")


def test_real_model_branch_loads_any_stable_diffusion_folder(tiny_stable_diffusion):
    assert not list(tiny_stable_diffusion.rglob("*.bin"))  # safetensors only
    pipe = pipeline.load_pipeline(str(tiny_stable_diffusion))
    assert json.loads((tiny_stable_diffusion / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    assert type(pipe.scheduler).__name__ == "PNDMScheduler"  # Stable Diffusion v1.5's: its step takes no generator
    expected = pipe_images(pipe, ["an astronaut riding a horse"], None, 7.5, 3, seed=0)
    assert expected.shape == (1, 3, 64, 64)  # 8x8 latents, VAE factor 8
    ours = pipeline.generate_by_hand(pipe, ["an astronaut riding a horse"], None, 7.5, 3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_model_source_says_where_the_pipeline_comes_from(tiny_stable_diffusion):
    assert pipeline.model_source("course").startswith("the course's own pipeline")
    assert pipeline.model_source(str(tiny_stable_diffusion)).endswith("from a local folder")
    assert pipeline.model_source("stable-diffusion-v1-5/stable-diffusion-v1-5").endswith("from the hub")


def test_hub_loading_refuses_pickled_weights(tmp_path, tiny_stable_diffusion):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_stable_diffusion, folder)
    for weights in folder.rglob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    with pytest.raises((OSError, EnvironmentError, ValueError)):
        pipeline.load_pipeline(str(folder))


def test_vae_round_trip_is_notebook_05s_encode_and_decode(course_pipe):
    from course_utils import latents
    from course_utils.data import mnist_tensors

    digits = mnist_tensors("test")[0][:16]
    images = pipeline.digits_for_pipeline(digits, course_pipe)
    round_trip = pipeline.vae_round_trip(course_pipe, images)
    assert round_trip.shape == images.shape and 0 <= round_trip.min() and round_trip.max() <= 1
    expected = latents.decode(course_pipe.vae, latents.encode(course_pipe.vae, digits))  # [-1, 1], 28x28
    torch.testing.assert_close(pipeline.pipeline_images_to_digits(round_trip), expected, atol=1e-5, rtol=1e-5)
    assert 0 < (round_trip - images).abs().mean() < 0.03  # close to the input, not equal: the VAE's floor


def test_vae_round_trip_refuses_images_outside_the_pipelines_range(course_pipe, tiny_stable_diffusion):
    images = torch.rand(2, 1, 32, 32)
    with pytest.raises(ValueError, match=r"images must have values in \[0, 1\]"):
        pipeline.vae_round_trip(course_pipe, images * 2 - 1)  # [-1, 1] passed by mistake
    with pytest.raises(ValueError, match="images must have values"):
        pipeline.vae_round_trip(course_pipe, torch.full((1, 1, 32, 32), float("nan")))
    with pytest.raises(ValueError, match="images must have shape"):
        pipeline.vae_round_trip(course_pipe, torch.rand(2, 3, 32, 32))  # RGB into the 1-channel VAE
    with pytest.raises(ValueError, match="divisible by the VAE's downsampling factor 4"):
        pipeline.vae_round_trip(course_pipe, torch.rand(2, 1, 30, 30))
    with pytest.raises(TypeError, match="pipe must be"):
        pipeline.vae_round_trip(object(), images)
    tiny = pipeline.load_pipeline(str(tiny_stable_diffusion))
    assert pipeline.vae_round_trip(tiny, torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
