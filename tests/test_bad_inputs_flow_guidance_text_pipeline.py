"""Bad input to course_utils.flow, .guidance, .text, .part_folders and .pipeline: a ValueError or TypeError whose
message names the parameter, before any work is done (never a raw error from inside torch, diffusers or
transformers, never a silently wrong result). One table per kind of mistake: wrong types, out-of-range numbers,
wrong shapes, bad names and files. Each row: the call, the exception, and a pattern the message must match (the parameter's name)."""
import numpy as np
import pytest
import torch

from course_utils import flow, guidance, latents, part_folders, pipeline, text
from course_utils.samplers import make_scheduler
from course_utils.unet import TinyUNet

CORPUS = ["a thick seven", "the number one", "blurry"]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Tiny valid objects: images, a TinyUNet, a random course-shaped Stable Diffusion pipeline, an empty folder."""
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(0)
    tokenizer = text.make_tokenizer(CORPUS)
    pipe = StableDiffusionPipeline(vae=latents.make_vae(scaling_factor=0.5).eval(),
                                   text_encoder=text.make_text_encoder(tokenizer).eval(), tokenizer=tokenizer,
                                   unet=guidance.make_conditional_unet().eval(),
                                   scheduler=make_scheduler("ddim", clip=False, steps_offset=1), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    return {"images": images, "noise": torch.randn(2, 1, 28, 28), "model": TinyUNet((8, 16)).eval(), "pipe": pipe,
            "embeds": torch.randn(2, 16, 64), "eps": torch.randn(2, 4, 8, 8), "rng": np.random.default_rng(0),
            "folder": tmp_path_factory.mktemp("parts")}


def sample(p, **changes):
    settings = {"unet": p["pipe"].unet, "scheduler": guidance.latent_scheduler("ddim"), "prompt_embeds": p["embeds"],
                "negative_embeds": p["embeds"], "guidance_scale": 3.0, "num_inference_steps": 2, "progress": False}
    return guidance.sample_with_guidance(**(settings | changes))


def generate(p, **changes):
    return pipeline.generate_by_hand(**({"pipe": p["pipe"], "prompts": ["a seven", "one"], "num_inference_steps": 2}
                                        | changes))


WRONG_TYPES = [
    (lambda p: flow.flow_path(p["images"], p["noise"], "0.5"), TypeError, "sigma"),
    (lambda p: flow.velocity_at(p["model"], p["images"], "0.5"), TypeError, "sigma"),
    (lambda p: flow.euler_step(p["noise"], "1.0", 0.5, p["images"]), TypeError, "sigma"),
    (lambda p: flow.flow_velocity_target(p["images"], None), TypeError, "noise"),
    (lambda p: flow.flow_loss(None, p["images"]), TypeError, "model"),
    (lambda p: flow.flow_loss(p["model"], (p["images"] * 127 + 128).byte()), TypeError, "x0"),
    (lambda p: flow.shift_sigmas([1.0, 0.5, 0.0], 3.0), TypeError, "sigmas"),
    (lambda p: flow.straightness(None), TypeError, "trajectory"),
    (lambda p: flow.straightness([(999, p["noise"]), (0, p["images"])]), TypeError, "trajectory"),
    (lambda p: flow.flow_coordinates(p["images"], torch.tensor([500, 10])), TypeError, "abar_t"),
    (lambda p: flow.ddpm_sigma(torch.tensor(999)), TypeError, "abar_t"),
    (lambda p: flow.load_flow(None), TypeError, "name"),
    (lambda p: guidance.conditional_unet_config("64"), TypeError, "cross_attention_dim"),
    (lambda p: guidance.conditional_unet_config(True), TypeError, "cross_attention_dim"),
    (lambda p: guidance.drop_prompts("a seven", 0.1, p["rng"]), TypeError, "prompts"),
    (lambda p: guidance.drop_prompts(["a seven"], "0.1", p["rng"]), TypeError, "rate"),
    (lambda p: guidance.drop_prompts(["a seven"], True, p["rng"]), TypeError, "rate"),
    (lambda p: guidance.check_guidance_scale(True), TypeError, "guidance_scale"),
    (lambda p: guidance.classifier_free_guidance(p["eps"], p["eps"], "7.5"), TypeError, "guidance_scale"),
    (lambda p: guidance.guidance_scale_at(None, 7.5, (200, 800)), TypeError, "timestep"),
    (lambda p: text.pre_tokenize(None), TypeError, "text"),
    (lambda p: text.learn_bpe("a seven"), TypeError, "texts"),
    (lambda p: text.make_tokenizer([3, 7]), TypeError, r"texts\[0\]"),
    (lambda p: text.text_encoder_config(None), TypeError, "tokenizer"),
    (lambda p: text.tokenize(None, ["a seven"]), TypeError, "tokenizer"),
    (lambda p: text.check_prompts(p["pipe"].tokenizer, [None]), TypeError, r"prompts\[0\]"),
    (lambda p: part_folders.rebuild_command(None), TypeError, "part"),
    (lambda p: pipeline.build_course_pipeline("ddim"), TypeError, "scheduler"),
    (lambda p: pipeline.build_controlnet_pipeline(scheduler="ddim"), TypeError, "scheduler"),
    (lambda p: pipeline.build_controlnet_pipeline(controlnet=p["pipe"].unet), TypeError, "controlnet"),
    (lambda p: part_folders.verify_pipeline_folder(parts="vae"), TypeError, "parts"),
    (lambda p: part_folders.save_part(None, "vae", p["folder"]), TypeError, "part"),
    (lambda p: part_folders.save_part(p["pipe"].tokenizer, None, p["folder"]), TypeError, "name"),
    (lambda p: pipeline.hub_reachable(None), TypeError, "host"),
    (lambda p: pipeline.choose_model(None), TypeError, "model"),
    (lambda p: pipeline.model_source(None), TypeError, "model"),
    (lambda p: pipeline.pipeline_resolution(None), TypeError, "pipe"),
    (lambda p: pipeline.pipeline_resolution(p["pipe"].unet), TypeError, "pipe"),
    (lambda p: pipeline.pipeline_images_to_digits(None), TypeError, "images"),
    (lambda p: pipeline.digits_for_pipeline((p["images"] * 127 + 128).byte(), p["pipe"]), TypeError, "digits"),
    (lambda p: generate(p, negative_prompts="blurry"), TypeError, "negative_prompts"),
]

OUT_OF_RANGE = [
    (lambda p: flow.velocity_at(p["model"], p["images"], 1.5), "sigma"),
    (lambda p: flow.euler_step(p["noise"], 1.5, 0.5, p["images"]), "sigma"),
    (lambda p: flow.number_of_evaluations(0, "heun"), "num_steps"),
    (lambda p: flow.number_of_evaluations(-5, "euler"), "num_steps"),
    (lambda p: flow.flow_coordinates(p["images"], 1.5), "abar_t"),
    (lambda p: flow.ddpm_sigma(-0.5), "abar_t"),
    (lambda p: flow.ddpm_velocity(p["noise"], p["images"], 2.0), "abar_t"),
    (lambda p: flow.ddpm_velocity(p["noise"], p["images"], 0.0), "abar_t"),  # epsilon divides by sqrt(abar_t)
    (lambda p: guidance.conditional_unet_config(0), "cross_attention_dim"),
    (lambda p: guidance.classifier_free_guidance(p["eps"], p["eps"], -5), "guidance_scale"),
    (lambda p: guidance.guidance_scale_at(500, 7.5, (800, 200)), "interval"),
    (lambda p: guidance.latent_scheduler(num_train_timesteps=0), "num_train_timesteps"),
    (lambda p: sample(p, num_inference_steps=0), "num_inference_steps"),
    (lambda p: pipeline.hub_reachable(timeout=-1), "timeout"),
    (lambda p: generate(p, num_inference_steps=0), "num_inference_steps"),
]

WRONG_SHAPES = [
    (lambda p: flow.flow_path(p["images"], p["noise"], torch.tensor([0.1, 0.5, 0.9])), "sigma"),
    (lambda p: flow.flow_velocity_target(p["images"], p["noise"][:1]), "noise"),
    (lambda p: flow.flow_loss(p["model"], p["images"][:, 0]), "x0"),
    (lambda p: flow.euler_step(torch.randn(2, 1, 32, 32), 1.0, 0.5, p["images"]), "velocity"),
    (lambda p: flow.velocity_at(p["model"], p["images"], torch.tensor([0.5, 0.7])), "sigma"),
    (lambda p: flow.sample_flow(p["model"], 2, 2, image_shape=(28, 28), progress=False), "image_shape"),
    (lambda p: flow.straightness([torch.zeros(2, 4), torch.zeros(3, 4)]), r"trajectory\[1\]"),
    (lambda p: flow.ideal_velocity(torch.zeros(2, 2), 0.5, torch.zeros(3, 3)), "data"),
    (lambda p: guidance.classifier_free_guidance(p["eps"], p["eps"][:1], 3.0), "eps_cond"),
    (lambda p: guidance.rescale_guidance(p["eps"], p["eps"][:1], 0.7), "eps_cond"),
    (lambda p: guidance.guidance_scale_at(500, 7.5, (200,)), "interval"),
    (lambda p: sample(p, negative_embeds=p["embeds"][:1]), "negative_embeds"),
    (lambda p: generate(p, negative_prompts=["blurry"]), "negative_prompts"),
    (lambda p: pipeline.digits_for_pipeline(torch.zeros(2, 1, 32, 32), p["pipe"]), "digits"),
    (lambda p: pipeline.digits_for_pipeline(p["images"][:, 0], p["pipe"]), "digits"),
    (lambda p: pipeline.pipeline_images_to_digits(p["images"]), "images"),
]

BAD_NAMES = [
    (lambda p: flow.load_flow("ddpm_mnist"), ValueError, "name.*flow_mnist"),
    (lambda p: guidance.latent_scheduler(timestep_spacing="trailng"), ValueError, "timestep_spacing"),
    (lambda p: part_folders.verify_pipeline_folder(parts=("vea",)), ValueError, "parts"),
    (lambda p: pipeline.choose_model("Course"), ValueError, "model.*did you mean 'course'"),
    (lambda p: pipeline.model_source(""), ValueError, "model"),
    (lambda p: pipeline.load_pipeline("corse"), ValueError, "model.*'corse'"),
    (lambda p: pipeline.load_pipeline(device="gpu"), ValueError, "device"),
    pytest.param(lambda p: pipeline.load_pipeline(device="cuda"), ValueError, "device",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="'cuda' is a good device here")),
]


@pytest.mark.parametrize("call, error, pattern", WRONG_TYPES)
def test_wrong_types_are_refused_naming_the_parameter(parts, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(parts)


@pytest.mark.parametrize("call, pattern", OUT_OF_RANGE)
def test_out_of_range_numbers_are_refused_naming_the_parameter(parts, call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call(parts)


@pytest.mark.parametrize("call, pattern", WRONG_SHAPES)
def test_wrong_shapes_are_refused_naming_the_parameter(parts, call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call(parts)


@pytest.mark.parametrize("call, error, pattern", BAD_NAMES)
def test_bad_names_are_refused_naming_the_parameter(parts, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(parts)


def test_bad_folders_are_refused_naming_the_folder(parts, tmp_path):
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("not a folder")
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        part_folders.folder_checksums(tmp_path / "no_such_folder")
    with pytest.raises(ValueError, match="folder"):
        part_folders.folder_checksums(a_file)
    with pytest.raises(ValueError, match="folder"):
        part_folders.save_part(parts["pipe"].tokenizer, "tokenizer", a_file)
