"""Bad input to course_utils.checkpoints, .data, .metrics and .control: each is refused with ValueError or
TypeError naming the parameter, or for a file with the course's file error naming the file and the command
that restores it (docs/CONVENTIONS.md). One parametrized test per kind of mistake; the models are tiny
stand-ins, built in memory, since every check runs before a model computes anything."""
import gzip
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from course_utils import checkpoints, control, data, metrics
from course_utils.checkpoints import CheckpointError
from course_utils.data import DataFileError

NAN = float("nan")


@pytest.fixture(scope="module")
def models():
    """A small text-to-image UNet (4 x 8 x 8 latents, 16-d text embeddings), its ControlNet and an untrained
    MNIST classifier."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                norm_num_groups=8, attention_head_dim=2)
    return SimpleNamespace(unet=unet, controlnet=control.make_controlnet(unet), classifier=metrics.MnistClassifier())


@pytest.fixture
def env(models, tmp_path):
    generator = torch.Generator().manual_seed(0)
    digits = torch.rand(2, 1, 28, 28, generator=generator) * 2 - 1
    return SimpleNamespace(
        **vars(models), tmp=tmp_path, digits=digits, skeletons=control.skeletonize(digits),
        latents=torch.randn(2, 4, 8, 8, generator=generator), controls=torch.zeros(2, 1, 32, 32),
        embeddings=torch.randn(2, 16, 16, generator=generator), alpha_bar=torch.linspace(0.99, 0.01, 1000),
        probabilities=torch.rand(4, 10, generator=generator).softmax(dim=1),
        features=torch.randn(6, 8, generator=generator), write=lambda path: path.write_text("x"))


def residuals(e, **changes):
    arguments = dict(controlnet=e.controlnet, model_input=e.latents, timestep=500, embeddings=e.embeddings,
                     control=e.controls) | changes
    return control.controlnet_residuals(**arguments)


def loss(e, **changes):
    arguments = dict(unet=e.unet, controlnet=e.controlnet, latents=e.latents, controls=e.controls,
                     embeddings=e.embeddings, alpha_bar=e.alpha_bar) | changes
    return control.controlnet_loss(**arguments)


WRONG_TYPES = {
    "atomic_write path=None": (lambda e: checkpoints.atomic_write(None, e.write), "path"),
    "atomic_write write='text'": (lambda e: checkpoints.atomic_write(e.tmp / "a.txt", "text"), "write"),
    "write_json data holding a tensor": (lambda e: checkpoints.write_json(e.tmp / "a.json", {"x": torch.ones(1)}),
                                         "data"),
    "write_json data=None": (lambda e: checkpoints.write_json(e.tmp / "a.json", None), "data"),
    "write_json int and str keys": (lambda e: checkpoints.write_json(e.tmp / "a.json", {1: 1, "a": 2}), "data"),
    "save_weights a model": (lambda e: checkpoints.save_weights(e.classifier, e.tmp / "m.safetensors", {}),
                             "state_dict"),
    "save_weights a float value": (lambda e: checkpoints.save_weights({"w": 0.5}, e.tmp / "m.safetensors", {}),
                                   "state_dict"),
    "save_weights config holding a tensor": (
        lambda e: checkpoints.save_weights({"w": torch.zeros(2)}, e.tmp / "m.safetensors", {"x": torch.ones(1)}),
        "config"),
    "manifest_path None": (lambda e: checkpoints.manifest_path(None), "weights_path"),
    "load_weights name=None": (lambda e: checkpoints.load_weights(None), "name"),
    "stored_config name=None": (lambda e: checkpoints.stored_config(None), "name"),
    "sha256_of path=None": (lambda e: data.sha256_of(None), "path"),
    "read_idx path=None": (lambda e: data.read_idx(None), "path"),
    "to_model_range images=None": (lambda e: data.to_model_range(None), "images"),
    "to_pixel_range a numpy array": (lambda e: data.to_pixel_range(e.digits.numpy()), "images"),
    "classify classifier=None": (lambda e: metrics.classify(None, e.digits), "classifier"),
    "mnist_fid numpy arrays": (lambda e: metrics.mnist_fid(e.features.numpy(), e.features.numpy()), "real_features"),
    "confident_share threshold=True": (lambda e: metrics.confident_share(e.probabilities, True), "threshold"),
    "confident_share threshold='0.9'": (lambda e: metrics.confident_share(e.probabilities, "0.9"), "threshold"),
    "class_histogram a numpy array": (lambda e: metrics.class_histogram(e.probabilities.numpy()), "probabilities"),
    "evaluate_samples real_features=None": (lambda e: metrics.evaluate_samples(e.classifier, e.digits, None),
                                            "real_features"),
    "real_feature_sets classifier=None": (lambda e: metrics.real_feature_sets(None, 2), "classifier"),
    "skeletonize images=None": (lambda e: control.skeletonize(None), "images"),
    "skeletonize threshold='0.5'": (lambda e: control.skeletonize(e.digits, "0.5"), "threshold"),
    "pad_control skeletons=None": (lambda e: control.pad_control(None), "skeletons"),
    "draw_strokes strokes='L'": (lambda e: control.draw_strokes("L"), "strokes"),
    "draw_strokes points that are not numbers": (lambda e: control.draw_strokes([[("a", 1), (2, 3)]]), "strokes"),
    "skeleton_iou tolerance=True": (lambda e: control.skeleton_iou(e.digits, e.skeletons, True), "tolerance"),
    "make_controlnet unet=None": (lambda e: control.make_controlnet(None), "unet"),
    "make_controlnet a classifier": (lambda e: control.make_controlnet(e.classifier), "unet"),
    "zero_convolutions the UNet": (lambda e: control.zero_convolutions(e.unet), "controlnet"),
    "controlnet_residuals timestep=None": (lambda e: residuals(e, timestep=None), "timestep"),
    "controlnet_residuals conditioning_scale=True": (lambda e: residuals(e, conditioning_scale=True),
                                                     "conditioning_scale"),
    "controlnet_loss generator=0": (lambda e: loss(e, generator=0), "generator"),
    "controlnet_loss alpha_bar=None": (lambda e: loss(e, alpha_bar=None), "alpha_bar"),
    "check_controlnet the UNet": (lambda e: control.check_controlnet("controlnet", e.unet), "controlnet"),
}


@pytest.mark.parametrize("call, name", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_wrong_types_are_refused_naming_the_parameter(env, call, name):
    with pytest.raises(TypeError, match=rf"\b{name}\b"):
        call(env)


OUT_OF_RANGE = {
    "classify batch_size=0": (lambda e: metrics.classify(e.classifier, e.digits, 0), "batch_size"),
    "gaussian_statistics NaN features": (lambda e: metrics.gaussian_statistics(np.full((4, 8), NAN)), "features"),
    "frechet_distance NaN sigma1": (lambda e: metrics.frechet_distance(np.zeros(3), np.full((3, 3), NAN),
                                                                       np.zeros(3), np.eye(3)), "sigma1"),
    "frechet_distance negative-definite sigma2": (
        lambda e: metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), -np.eye(3)), "sigma2"),
    "mnist_fid NaN generated features": (
        lambda e: metrics.mnist_fid(e.features, torch.full((6, 8), NAN)), "generated_features"),
    "real_feature_sets seed=-1": (lambda e: metrics.real_feature_sets(e.classifier, 2, seed=-1), "seed"),
    "skeletonize threshold=NaN": (lambda e: control.skeletonize(e.digits, NAN), "threshold"),
    "draw_strokes size=0": (lambda e: control.draw_strokes([[(0, 0), (0, 0)]], size=0), "size"),
    "draw_strokes a point off the canvas": (lambda e: control.draw_strokes([[(15, 4), (30, 23)]]), "strokes"),
    "skeleton_iou controls in [-1, 1], not {0, 1}": (lambda e: control.skeleton_iou(e.digits, e.digits), "controls"),
    "chamfer_distance controls in [-1, 1], not {0, 1}": (lambda e: control.chamfer_distance(e.digits, e.digits),
                                                         "controls"),
}


@pytest.mark.parametrize("call, name", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_out_of_range_values_are_refused_naming_the_parameter(env, call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call(env)


WRONG_SHAPES = {
    "to_model_range float images": (lambda e: data.to_model_range(e.digits[:, 0]), TypeError, "images"),
    "to_model_range uint8 [N, 1, 28, 28]": (lambda e: data.to_model_range(np.zeros((2, 1, 28, 28), np.uint8)),
                                            ValueError, "images"),
    "to_pixel_range uint8 tensor": (lambda e: data.to_pixel_range(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)),
                                    TypeError, "images"),
    "classify uint8 images": (lambda e: metrics.classify(e.classifier, torch.zeros(2, 1, 28, 28, dtype=torch.uint8)),
                              TypeError, "images"),
    "classify [N, 28, 28]": (lambda e: metrics.classify(e.classifier, e.digits[:, 0]), ValueError, "images"),
    "classify 32x32 pipeline images": (lambda e: metrics.classify(e.classifier, torch.zeros(2, 1, 32, 32)),
                                       ValueError, "images"),
    "classify no images": (lambda e: metrics.classify(e.classifier, e.digits[:0]), ValueError, "images"),
    "frechet_distance mu2 of another dimension": (
        lambda e: metrics.frechet_distance(np.zeros(8), np.eye(8), np.zeros(4), np.eye(8)), ValueError, "mu2"),
    "frechet_distance sigma1 not [D, D]": (
        lambda e: metrics.frechet_distance(np.zeros(8), np.eye(4), np.zeros(8), np.eye(8)), ValueError, "sigma1"),
    "frechet_distance mu1 of strings": (
        lambda e: metrics.frechet_distance(np.array(["a"]), np.eye(1), np.zeros(1), np.eye(1)), TypeError, "mu1"),
    "mnist_fid one generated sample": (lambda e: metrics.mnist_fid(e.features, e.features[:1]), ValueError,
                                       "generated_features"),
    "mnist_fid widths 8 and 10": (lambda e: metrics.mnist_fid(e.features, torch.randn(6, 10)), ValueError,
                                  "generated_features"),
    "confident_share 1-D probabilities": (lambda e: metrics.confident_share(e.probabilities[0]), ValueError,
                                          "probabilities"),
    "class_histogram 1-D probabilities": (lambda e: metrics.class_histogram(e.probabilities[0]), ValueError,
                                          "probabilities"),
    "class_histogram no samples": (lambda e: metrics.class_histogram(torch.empty(0, 10)), ValueError,
                                   "probabilities"),
    "class_histogram 12 classes": (lambda e: metrics.class_histogram(torch.rand(4, 12)), ValueError,
                                   "probabilities"),
    "evaluate_samples one sample": (lambda e: metrics.evaluate_samples(e.classifier, e.digits[:1], e.features),
                                    ValueError, "samples"),
    "evaluate_samples uint8 samples": (
        lambda e: metrics.evaluate_samples(e.classifier, torch.zeros(2, 1, 28, 28, dtype=torch.uint8), e.features),
        TypeError, "samples"),
    "pad_control one skeleton [28, 28]": (lambda e: control.pad_control(e.skeletons[0, 0]), ValueError, "skeletons"),
    "digit_controls [N, 28, 28]": (lambda e: control.digit_controls(e.digits[:, 0]), ValueError, "digits"),
    "digit_controls padded to 32x32": (lambda e: control.digit_controls(torch.zeros(2, 1, 32, 32)), ValueError,
                                       "digits"),
    "chamfer_distance [N, 28, 28]": (lambda e: control.chamfer_distance(e.digits[:, 0], e.skeletons[:, 0]),
                                     ValueError, "generated"),
    "draw_strokes one polyline not wrapped in a list": (lambda e: control.draw_strokes([(15, 4), (12, 23)]),
                                                        ValueError, "strokes"),
    "controlnet_residuals control 28x28, not padded": (lambda e: residuals(e, control=e.skeletons), ValueError,
                                                       "control"),
    "controlnet_residuals 3 timesteps for 2 latents": (lambda e: residuals(e, timestep=torch.tensor([1, 2, 3])),
                                                       ValueError, "timestep"),
    "controlnet_loss pixel digits as latents": (lambda e: loss(e, latents=e.digits), ValueError, "latents"),
    "controlnet_loss 3 embeddings for 2 latents": (lambda e: loss(e, embeddings=e.embeddings[[0, 1, 0]]),
                                                   ValueError, "embeddings"),
    "controlnet_loss unpadded controls": (lambda e: loss(e, controls=e.skeletons), ValueError, "controls"),
}


@pytest.mark.parametrize("call, error, name", WRONG_SHAPES.values(), ids=WRONG_SHAPES.keys())
def test_wrong_shapes_and_dtypes_are_refused_naming_the_parameter(env, call, error, name):
    with pytest.raises(error, match=rf"\b{name}\b"):
        call(env)


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def _checkpoint(folder, name: str, manifest: str | None = None):
    """A small checkpoint NAME.safetensors with a manifest NAME.json (``manifest``, or a valid one)."""
    sha = checkpoints.save_weights({"w": torch.zeros(2)}, folder / f"{name}.safetensors", {"width": 2})
    text = manifest if manifest is not None else f'{{"sha256": "{sha}", "command": "python make_it.py"}}'
    (folder / f"{name}.json").write_text(text)
    return folder


BAD_FILES = {
    "load_manifest a manifest that is not JSON": (
        lambda tmp: checkpoints.load_manifest(_write(tmp / "broken.json", b"{ not json")),
        CheckpointError, r"broken\.json.*git checkout"),
    "load_manifest a manifest that is not UTF-8": (
        lambda tmp: checkpoints.load_manifest(_write(tmp / "binary.json", b"\xff\xfe\x00")),
        CheckpointError, r"binary\.json.*git checkout"),
    "load_manifest a JSON list, not an object": (
        lambda tmp: checkpoints.load_manifest(_write(tmp / "listed.json", b"[1, 2]")),
        CheckpointError, r"listed\.json.*git checkout"),
    "load_weights a manifest without its SHA-256": (
        lambda tmp: checkpoints.load_weights("model", _checkpoint(tmp, "model", '{"command": "python make_it.py"}')),
        CheckpointError, r"model\.json.*sha256.*git checkout"),
    "stored_config a missing checkpoint": (
        lambda tmp: checkpoints.stored_config("absent", tmp), CheckpointError, r"absent\.safetensors.*git checkout"),
    "stored_config a damaged checkpoint": (
        lambda tmp: checkpoints.stored_config("damaged", _write(tmp / "damaged.safetensors", b"\x10" * 40).parent),
        CheckpointError, r"damaged\.safetensors.*git checkout"),
    "atomic_write onto a folder": (
        lambda tmp: checkpoints.atomic_write(tmp / "folder", lambda path: path.write_text("x")),
        ValueError, r"path.*folder"),
    "save_weights onto a folder": (
        lambda tmp: checkpoints.save_weights({"w": torch.zeros(2)}, tmp / "folder", {}), ValueError, r"path.*folder"),
    "sha256_of a folder": (lambda tmp: data.sha256_of(tmp / "folder"), ValueError, r"path.*folder"),
    "read_idx a missing file": (lambda tmp: data.read_idx(tmp / "missing.gz"), DataFileError,
                                r"missing\.gz.*git checkout -- data/mnist"),
    "read_idx a folder": (lambda tmp: data.read_idx(tmp / "folder"), DataFileError, r"folder.*git checkout"),
    "read_idx a file that is not gzip": (
        lambda tmp: data.read_idx(_write(tmp / "notes.gz", b"my notes")), DataFileError, r"notes\.gz.*git checkout"),
    "read_idx a gzip file cut short": (
        lambda tmp: data.read_idx(_write(tmp / "cut.gz", gzip.compress(bytes(100))[:-12])), DataFileError,
        r"cut\.gz.*git checkout"),
}


@pytest.mark.parametrize("call, error, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_damaged_missing_or_misplaced_files_name_the_file_and_the_repair(tmp_path, call, error, message):
    (tmp_path / "folder").mkdir()
    with pytest.raises(error, match=message):
        call(tmp_path)


def test_checkpoint_folders_may_be_given_as_strings(tmp_path):
    state_dict, manifest = checkpoints.load_weights("model", str(_checkpoint(tmp_path, "model")))
    assert torch.equal(state_dict["w"], torch.zeros(2)) and manifest["command"] == "python make_it.py"
    assert checkpoints.stored_config("model", str(tmp_path)) == {"width": 2}
