#!/usr/bin/env python
"""Call every public function of ``course_utils`` with bad inputs, as a careless learner or a hurried
instructor would, and sort what happens into four classes.

    python scripts/probe_bad_inputs.py                             # 800 cases, about 10 s on one CPU core
    python scripts/probe_bad_inputs.py --module schedules --module flow

It sets ``HF_HUB_OFFLINE=1`` itself (unless already set), so no case reaches the network, and runs torch on
one thread. Each case has a 30 s time limit; a case stopped there counts as silent (the input was accepted).

Each case is one row of a table (``<module>_cases`` below): the function, a short description of the bad
input, a zero-argument callable that makes the call, and the name the error message should contain (the
offending parameter, or for a missing file the file's name). Bad inputs are wrong types (a string or None
for a tensor or an int, a bool for a number: booleans are not numbers in this course), out-of-range
numbers (negative, zero, huge, NaN, inf), wrong shapes and dtypes, empty lists and tensors, misspelled
choices, a single string for a list of prompts, characters the course tokenizer does not know, and paths
that do not exist. Only inputs that are wrong by the function's signature and docstring are listed.

``first_day_cases`` adds the mistakes a learner makes on the first day that a signature does not show (issue
32), each with its kind: images in the wrong value range (floats in 0..255, [0, 1] where [-1, 1] is expected),
models and tensors of the wrong kind (float64, float16 or meta models, None or a state dict for a model, numpy
arrays, a shape the network cannot read, bad TinyUNet widths and timesteps), and damaged or unlisted pipeline
files. The report counts the outcomes per kind as well as per module.

Outcomes (the convention of ``docs/CONVENTIONS.md``: bad input raises ``ValueError`` or ``TypeError``
naming the parameter):

- ``clear``:   ``ValueError``, ``TypeError``, ``FileNotFoundError`` or a course-defined exception
  (``CheckpointError``, ``DataFileError``, ...), raised in ``course_utils`` code, whose message names the
  offending parameter (or file). A name counts when it stands alone: not inside a longer word, though
  ``guidance_rescale`` names ``rescale``.
- ``unclear``: one of those, raised in ``course_utils``, whose message does not name it.
- ``raw``:     any other exception type, or any exception raised outside ``course_utils``: its traceback
  ends in torch, numpy, diffusers, transformers, safetensors, the standard library ..., or it ends in
  ``course_utils`` on a call of a library function written in C (``torch.randint``, ``numpy.asarray``),
  which leaves no Python frame; a profile hook sees those calls. (It does not see calls of classes written
  in C, such as ``safetensors.safe_open``: what they raise counts as raised in ``course_utils``.)
- ``silent``:  no exception: the bad input was accepted (warnings, if any, are recorded).

Implicit calls are not seen either: ``"7.5" * tensor`` fails inside torch's ``Tensor.__index__`` but counts as
a TypeError raised in ``course_utils``.

It prints the counts per class, overall and per module, then every case that is not ``clear``, and writes
all results to ``/tmp/probe_bad_inputs.json``. Inputs are tiny (2 images, 2 sampling steps, a
``TinyUNet((8, 16))``); the shipped models are loaded once, lazily. Files are only written under a
temporary folder, which is removed at the end. It changes nothing in the repository.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network, whatever a case asks for
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gzip  # noqa: E402
import importlib  # noqa: E402
import inspect  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils import (  # noqa: E402
    attention_maps, captions, checkpoints, control, data, ddpm, flow, guidance, homework, latents, metrics,
    part_folders, pipeline, reflow, runtime, samplers, schedules, text, unet, validation, viz,
)

MODULES = ("attention_maps", "captions", "checkpoints", "control", "data", "ddpm", "flow", "guidance", "homework",
           "latents", "metrics", "part_folders", "pipeline", "reflow", "runtime", "samplers", "schedules", "text",
           "unet", "validation", "viz")
COURSE_DIR = Path(captions.__file__).resolve().parent
RESULTS_PATH = Path("/tmp/probe_bad_inputs.json")
CASE_TIMEOUT_S = 30
ACCEPTED_TYPES = (ValueError, TypeError, FileNotFoundError)
# C functions of Python itself (len, open, os.replace, math.log): what they raise counts as raised where they are called
PYTHON_ITSELF = ("builtins", "io", "_io", "posix", "nt", "math", "course_utils")
NAN, INF = float("nan"), float("inf")


# --------------------------------------------------------------------------------------------------
# cases and fixtures
# --------------------------------------------------------------------------------------------------

@dataclass
class Case:
    module: str
    function: str
    bad: str                 # what is wrong with the input, in a few words
    call: Callable[[], Any]  # makes the call
    names: tuple[str, ...]   # what a clear message names: the parameter, or the missing file
    kind: str = "signature"  # which kind of mistake: see KINDS


# The kinds of mistake, as the report groups them: wrong by the signature (types, ranges, shapes, names), and the
# first-day mistakes of issue 32 that the signature does not show.
KINDS = {"signature": "wrong by the signature", "range": "images in the wrong value range",
         "model": "models and tensors of the wrong kind", "file": "files edited or damaged"}


def case(function: Callable, bad: str, call: Callable[[], Any], *names: str, kind: str = "signature") -> Case:
    """A row of the table; ``function`` is the course function itself, so a renamed one fails loudly."""
    return Case(function.__module__.rsplit(".", 1)[-1], function.__name__, bad, call, names, kind)


class ProbeSetupError(Exception):
    """Building a valid object for the cases failed: a bug in this probe, not a finding."""


class ProbeTimeout(BaseException):
    """A case ran longer than CASE_TIMEOUT_S (BaseException, so no ``except Exception`` swallows it)."""


def fixture(build):
    """A lazily built, cached valid object (a tiny model, a tokenizer, alpha_bar ...)."""
    name = build.__name__

    def get(self):
        if name not in self._cache:
            try:
                self._cache[name] = build(self)
            except Exception as error:
                raise ProbeSetupError(f"building the fixture {name!r} failed: {error!r}") from error
        return self._cache[name]

    return property(get)


class Fixtures:
    """Valid objects, each built on first use and then shared by every case that needs it."""

    def __init__(self, tmp: Path):
        self._cache: dict[str, Any] = {}
        self.tmp = tmp

    # images and tensors ------------------------------------------------------------------------
    @fixture
    def mnist_uint8(self) -> np.ndarray:  # two real test digits, as load_mnist returns them
        return data.load_mnist("test")[0][:2].copy()

    @fixture
    def digits(self) -> torch.Tensor:  # [2, 1, 28, 28] in [-1, 1]
        return data.to_model_range(self.mnist_uint8)

    @fixture
    def digits_uint8(self) -> torch.Tensor:  # [2, 1, 28, 28] in 0..255
        return torch.from_numpy(self.mnist_uint8).unsqueeze(1)

    @fixture
    def digits_255(self) -> torch.Tensor:  # [2, 1, 28, 28] floats in 0..255: converted without scaling
        return self.digits_uint8.float()

    @fixture
    def digits_01(self) -> torch.Tensor:  # [2, 1, 28, 28] in [0, 1]: scaled for display, not for the model
        return self.digits_uint8.float() / 255

    @fixture
    def labels(self) -> torch.Tensor:
        return torch.from_numpy(data.load_mnist("test")[1][:2].astype(np.int64))

    @fixture
    def noise(self) -> torch.Tensor:
        return torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))

    @fixture
    def alpha_bar(self) -> torch.Tensor:
        return schedules.alphas_cumprod(schedules.make_betas("cosine", 1000)).float()

    @fixture
    def attributes(self) -> dict:
        return captions.measure_attributes(self.digits)

    @fixture
    def terciles(self) -> dict:
        return captions.class_terciles(self.attributes, self.labels)

    @fixture
    def latents(self) -> torch.Tensor:  # [2, 4, 8, 8]
        return torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2))

    @fixture
    def controls(self) -> torch.Tensor:  # [2, 1, 32, 32] in {0, 1}
        return control.digit_controls(self.digits)

    @fixture
    def probabilities(self) -> torch.Tensor:  # [4, 10]
        return torch.randn(4, 10, generator=torch.Generator().manual_seed(3)).softmax(dim=1)

    @fixture
    def features(self) -> torch.Tensor:  # [6, 8] stand-ins for classifier features
        return torch.randn(6, 8, generator=torch.Generator().manual_seed(4))

    @fixture
    def frames(self) -> list:  # a trajectory as sample_ddpm returns it: [(t, x_t)]
        return [(999, self.noise), (0, self.digits)]

    # models ------------------------------------------------------------------------------------
    @fixture
    def tiny(self) -> torch.nn.Module:
        return unet.TinyUNet((8, 16)).eval()

    @fixture
    def tokenizer(self):  # learnt from a few course captions with course_utils.text
        rng = np.random.default_rng(0)
        texts = [captions.caption(d, {"thickness": 1, "slant": -1, "size": 0}, rng) for d in range(10)]
        return text.make_tokenizer(texts + [f"a handwritten {w}" for w in captions.NUMBER_WORDS])

    @fixture
    def text2image(self):  # the shipped (tokenizer, text_encoder, unet, manifest)
        return guidance.load_text2image()

    @fixture
    def cond_unet(self):
        return self.text2image[2]

    @fixture
    def embeds(self) -> torch.Tensor:  # [2, 16, 64]
        tokenizer, encoder = self.text2image[:2]
        return guidance.embed_prompts(tokenizer, encoder, ["a seven", "a two"])

    @fixture
    def empty_embeds(self) -> torch.Tensor:
        tokenizer, encoder = self.text2image[:2]
        return guidance.embed_prompts(tokenizer, encoder, ["", ""])

    @fixture
    def controlnet(self):
        return control.load_controlnet()

    @fixture
    def vae(self):
        return latents.load_vae()

    @fixture
    def pipe(self):
        return pipeline.build_course_pipeline()

    @fixture
    def classifier(self):
        return metrics.load_classifier()

    def scheduler(self, name: str = "ddim"):  # fresh each time: set_timesteps changes a scheduler
        return samplers.make_scheduler(name)

    # files -------------------------------------------------------------------------------------
    @fixture
    def broken_manifest(self) -> Path:  # a weights path whose manifest is not JSON
        (self.tmp / "broken.json").write_text("{ not json")
        return self.tmp / "broken.safetensors"

    @fixture
    def not_idx(self) -> Path:  # a valid gzip file that is not an MNIST idx file
        path = self.tmp / "notes.gz"
        with gzip.open(path, "wb") as handle:
            handle.write(b"these are my notes, not digits")
        return path

    @fixture
    def a_file(self) -> Path:
        path = self.tmp / "a_file.txt"
        path.write_text("not a folder")
        return path

    @fixture
    def empty_dir(self) -> Path:
        path = self.tmp / "empty_folder"
        path.mkdir(exist_ok=True)
        return path

    def pipeline_copy(self, name: str) -> Path:  # a fresh copy of the shipped pipeline folder, to damage
        path = self.tmp / name
        shutil.copytree(part_folders.COURSE_PIPELINE_DIR, path)
        return path

    @fixture
    def part_dir(self) -> Path:  # where save_part cases may write
        path = self.tmp / "pipeline_parts"
        path.mkdir(exist_ok=True)
        return path


# --------------------------------------------------------------------------------------------------
# the table of cases, one function per module
# --------------------------------------------------------------------------------------------------

def attention_maps_cases(f: Fixtures) -> list[Case]:
    am = attention_maps
    # one layer's recorded call: [batch, heads, pixels, tokens]
    recorded = lambda pixels=4: {"block.attn2": [torch.rand(2, 1, pixels, 3)]}  # noqa: E731
    return [
        case(am.cross_attention_layers, "unet=None", lambda: am.cross_attention_layers(None), "unet"),
        case(am.cross_attention_layers, "a TinyUNet (no attention processors)",
             lambda: am.cross_attention_layers(f.tiny), "unet"),
        case(am.record_cross_attention, "unet=None", lambda: am.record_cross_attention(None).__enter__(), "unet"),
        case(am.record_cross_attention, "a TinyUNet", lambda: am.record_cross_attention(f.tiny).__enter__(), "unet"),
        case(am.token_maps, "maps=None", lambda: am.token_maps(None), "maps"),
        case(am.token_maps, "maps={} (nothing recorded)", lambda: am.token_maps({}), "maps"),
        case(am.token_maps, "a layer with no calls", lambda: am.token_maps({"block.attn2": []}), "maps"),
        case(am.token_maps, "pixels that are not a square", lambda: am.token_maps(recorded(5)), "maps"),
        case(am.token_maps, "batch_half='second'", lambda: am.token_maps(recorded(), batch_half="second"), "batch_half"),
        case(am.token_maps, "size=3, not a recorded side", lambda: am.token_maps(recorded(), size=3), "size"),
        case(am.ink_share, "token_maps=None", lambda: am.ink_share(None, f.digits), "token_maps"),
        case(am.ink_share, "28x28 images for 8x8 maps", lambda: am.ink_share(torch.rand(2, 3, 8, 8), f.digits),
             "images"),
        case(am.ink_share, "3 maps for 2 images", lambda: am.ink_share(torch.rand(3, 3, 4, 4), f.digits), "images"),
        case(am.token_groups, "prompt=None", lambda: am.token_groups(f.tokenizer, None), "prompt"),
        case(am.token_groups, "a list of prompts", lambda: am.token_groups(f.tokenizer, ["a 7"]), "prompt"),
        case(am.token_groups, "tokenizer=None", lambda: am.token_groups(None, "a 7"), "tokenizer"),
        case(am.token_groups, "a character the tokenizer does not know",
             lambda: am.token_groups(f.tokenizer, "a 7 \u2603"), "prompt"),
    ]


def captions_cases(f: Fixtures) -> list[Case]:
    c = captions
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    levels = {"thickness": 1, "slant": 0, "size": -1}
    return [
        case(c.ink_masks, "images=None", lambda: c.ink_masks(None), "images"),
        case(c.ink_masks, "uint8 images in 0..255, not [-1, 1]", lambda: c.ink_masks(f.digits_uint8), "images"),
        case(c.ink_masks, "images [N, 28, 28], no channel dim", lambda: c.ink_masks(f.digits[:, 0]), "images"),
        case(c.stroke_thickness, "images=None", lambda: c.stroke_thickness(None), "images"),
        case(c.stroke_thickness, "images [N, 28, 28], no channel dim", lambda: c.stroke_thickness(f.digits[:, 0]), "images"),
        case(c.stroke_thickness, "images full of NaN", lambda: c.stroke_thickness(torch.full((2, 1, 28, 28), NAN)), "images"),
        case(c.slant, "images=None", lambda: c.slant(None), "images"),
        case(c.slant, "images [N, 28, 28], no channel dim", lambda: c.slant(f.digits[:, 0]), "images"),
        case(c.slant, "uint8 images in 0..255", lambda: c.slant(f.digits_uint8), "images"),
        case(c.ink_size, "images=None", lambda: c.ink_size(None), "images"),
        case(c.ink_size, "images [N, 28, 28], no channel dim", lambda: c.ink_size(f.digits[:, 0]), "images"),
        case(c.measure_attributes, "images=None", lambda: c.measure_attributes(None), "images"),
        case(c.measure_attributes, "images [N, 28, 28], no channel dim",
             lambda: c.measure_attributes(f.digits[:, 0]), "images"),
        case(c.class_terciles, "labels=None", lambda: c.class_terciles(f.attributes, None), "labels"),
        case(c.class_terciles, "3 labels for 2 images",
             lambda: c.class_terciles(f.attributes, torch.tensor([7, 2, 1])), "labels"),
        case(c.class_terciles, "labels outside 0..9",
             lambda: c.class_terciles(f.attributes, torch.tensor([12, 15])), "labels"),
        case(c.attribute_levels, "labels outside 0..9",
             lambda: c.attribute_levels(f.attributes, torch.tensor([12, 15]), f.terciles), "labels"),
        case(c.attribute_levels, "terciles without 'size'",
             lambda: c.attribute_levels(f.attributes, f.labels, {k: v for k, v in f.terciles.items() if k != "size"}),
             "terciles"),
        case(c.attribute_levels, "float labels",
             lambda: c.attribute_levels(f.attributes, f.labels.float(), f.terciles), "labels"),
        case(c.caption, "label=10", lambda: c.caption(10, levels, rng()), "label"),
        case(c.caption, "label='7' (a string)", lambda: c.caption("7", levels, rng()), "label"),
        case(c.caption, "label=True", lambda: c.caption(True, levels, rng()), "label"),
        case(c.caption, "attribute_rate=1.5", lambda: c.caption(7, levels, rng(), attribute_rate=1.5), "attribute_rate"),
        case(c.caption, "rng=0 (a seed, not a Generator)", lambda: c.caption(7, levels, 0), "rng"),
        case(c.caption_dataset, "3 labels for 2 images",
             lambda: c.caption_dataset(f.digits, torch.tensor([7, 2, 1])), "labels"),
        case(c.caption_dataset, "seed=-1", lambda: c.caption_dataset(f.digits, f.labels, seed=-1), "seed"),
        case(c.caption_dataset, "labels as a Python list", lambda: c.caption_dataset(f.digits, [7, 2]), "labels"),
        case(c.caption_dataset, "uint8 images in 0..255", lambda: c.caption_dataset(f.digits_uint8, f.labels), "images"),
    ]


def checkpoints_cases(f: Fixtures) -> list[Case]:
    c = checkpoints
    write_text = lambda p: p.write_text("x")  # noqa: E731
    tensors = lambda: {"w": torch.zeros(2)}  # noqa: E731
    return [
        case(c.atomic_write, "path=None", lambda: c.atomic_write(None, write_text), "path"),
        case(c.images_seen, "manifest=None", lambda: c.images_seen(None), "manifest"),
        case(c.images_seen, "a manifest without steps", lambda: c.images_seen({"batch_size": 64}), "manifest"),
        case(c.atomic_write, "write='text' (not a callable)", lambda: c.atomic_write(f.tmp / "a.txt", "text"), "write"),
        case(c.atomic_write, "path is an existing folder", lambda: c.atomic_write(f.empty_dir, write_text), "path",
             "empty_folder"),
        case(c.write_json, "data holding a tensor", lambda: c.write_json(f.tmp / "c.json", {"x": torch.ones(1)}), "data"),
        case(c.write_json, "data=None (not a dict)", lambda: c.write_json(f.tmp / "d.json", None), "data"),
        case(c.write_json, "data with int and str keys", lambda: c.write_json(f.tmp / "e.json", {1: 1, "a": 2}), "data"),
        case(c.save_weights, "a model instead of its state_dict",
             lambda: c.save_weights(f.tiny, f.tmp / "m.safetensors", {}), "state_dict"),
        case(c.save_weights, "state_dict with a float value",
             lambda: c.save_weights({"w": 0.5}, f.tmp / "m.safetensors", {}), "state_dict"),
        case(c.save_weights, "config holding a tensor",
             lambda: c.save_weights(tensors(), f.tmp / "m.safetensors", {"x": torch.ones(1)}), "config"),
        case(c.save_weights, "path is an existing folder", lambda: c.save_weights(tensors(), f.empty_dir, {}), "path",
             "empty_folder"),
        case(c.manifest_path, "weights_path=None", lambda: c.manifest_path(None), "weights_path"),
        case(c.manifest_path, "weights_path='' (empty)", lambda: c.manifest_path(""), "weights_path"),
        case(c.load_manifest, "a weights path with no manifest",
             lambda: c.load_manifest(f.tmp / "missing.safetensors"), "missing.json"),
        case(c.load_manifest, "weights_path=None", lambda: c.load_manifest(None), "weights_path"),
        case(c.load_manifest, "a manifest that is not JSON", lambda: c.load_manifest(f.broken_manifest), "broken.json"),
        case(c.load_weights, "misspelled name 'ddpm_mnsit'", lambda: c.load_weights("ddpm_mnsit"), "ddpm_mnsit.json"),
        case(c.load_weights, "name with the extension 'ddpm_mnist.safetensors'",
             lambda: c.load_weights("ddpm_mnist.safetensors"), "ddpm_mnist.safetensors.json"),
        case(c.load_weights, "name=None", lambda: c.load_weights(None), "name"),
        case(c.load_weights, "data_dir as a number", lambda: c.load_weights("ddpm_mnist", 3), "data_dir"),
        case(c.load_weights, "data_dir that does not exist",
             lambda: c.load_weights("ddpm_mnist", f.tmp / "no_such_data"), "no_such_data"),
        case(c.stored_config, "misspelled name 'ddpm_mnsit'", lambda: c.stored_config("ddpm_mnsit"),
             "ddpm_mnsit.safetensors"),
        case(c.stored_config, "name=None", lambda: c.stored_config(None), "name"),
        case(c.stored_config, "a name with only a manifest, no weights", lambda: c.stored_config("text2image_mnist"),
             "text2image_mnist.safetensors"),
        case(c.stored_config, "data_dir that does not exist",
             lambda: c.stored_config("ddpm_mnist", f.tmp / "no_such_data"), "no_such_data"),
        case(c.with_overwrite_flag, "command=None", lambda: c.with_overwrite_flag(None), "command"),
        case(c.with_overwrite_flag, "the command as a list of arguments",
             lambda: c.with_overwrite_flag(["python", "scripts/train_ddpm.py"]), "command"),
        case(c.shipped_output_problem, "path=None", lambda: c.shipped_output_problem("--out", None, False), "--out"),
        case(c.shipped_output_problem, "overwrite_shipped='no' (a string)",
             lambda: c.shipped_output_problem("--out", data.DATA_DIR / "ddpm_mnist.safetensors", "no"),
             "overwrite_shipped"),
        case(c.training_commands, "manifest=None", lambda: c.training_commands(None), "manifest"),
        case(c.training_commands, "a continued run recorded without its command",
             lambda: c.training_commands({"command": "b", "continued_from": {"steps": 3}}), "manifest"),
        case(c.lineage, "manifest=None", lambda: c.lineage(None), "manifest"),
        case(c.lineage, "a start recorded without its command",
             lambda: c.lineage({"command": "b", "init_from": {"steps": 3}}), "manifest"),
    ]


def control_cases(f: Fixtures) -> list[Case]:
    c = control
    residuals = lambda scale=1.0, ctl=None, t=500: c.controlnet_residuals(  # noqa: E731
        f.controlnet, f.latents, t, f.embeds, f.controls if ctl is None else ctl, scale)
    loss = lambda **kw: c.controlnet_loss(**{"unet": f.cond_unet, "controlnet": f.controlnet,  # noqa: E731
                                             "latents": f.latents, "controls": f.controls, "embeddings": f.embeds,
                                             "alpha_bar": f.alpha_bar, **kw})
    return [
        case(c.skeletonize, "images=None", lambda: c.skeletonize(None), "images"),
        case(c.skeletonize, "images [N, 28, 28], no channel dim", lambda: c.skeletonize(f.digits[:, 0]), "images"),
        case(c.skeletonize, "threshold='0.5' (a string)", lambda: c.skeletonize(f.digits, "0.5"), "threshold"),
        case(c.skeletonize, "threshold=NaN", lambda: c.skeletonize(f.digits, NAN), "threshold"),
        case(c.pad_control, "skeletons=None", lambda: c.pad_control(None), "skeletons"),
        case(c.pad_control, "one skeleton [28, 28], no batch or channel dims",
             lambda: c.pad_control(f.controls[0, 0, 2:30, 2:30]), "skeletons"),
        case(c.digit_controls, "digits [N, 28, 28], no channel dim", lambda: c.digit_controls(f.digits[:, 0]), "digits"),
        case(c.digit_controls, "digits already padded to 32x32",
             lambda: c.digit_controls(latents.pad_to_32(f.digits)), "digits"),
        case(c.draw_strokes, "strokes=[] (empty)", lambda: c.draw_strokes([]), "strokes"),
        case(c.draw_strokes, "one polyline not wrapped in a list", lambda: c.draw_strokes([(15, 4), (12, 23)]), "strokes"),
        case(c.draw_strokes, "a point outside the 28x28 canvas", lambda: c.draw_strokes([[(15, 4), (30, 23)]]), "strokes"),
        case(c.draw_strokes, "strokes='L' (a string)", lambda: c.draw_strokes("L"), "strokes"),
        case(c.draw_strokes, "size=0", lambda: c.draw_strokes([[(0, 0), (0, 0)]], size=0), "size"),
        case(c.skeleton_iou, "generated and controls of different shapes",
             lambda: c.skeleton_iou(f.digits, f.controls), "generated", "controls"),
        case(c.skeleton_iou, "tolerance=True", lambda: c.skeleton_iou(f.digits, f.digits, True), "tolerance"),
        case(c.skeleton_iou, "tolerance=-1", lambda: c.skeleton_iou(f.digits, f.digits, -1), "tolerance"),
        case(c.skeleton_iou, "controls in [-1, 1] (digits), not {0, 1} skeletons",
             lambda: c.skeleton_iou(f.digits, f.digits), "controls"),
        case(c.chamfer_distance, "generated and controls of different shapes",
             lambda: c.chamfer_distance(f.digits, f.controls), "generated", "controls"),
        case(c.chamfer_distance, "both [N, 28, 28], no channel dim",
             lambda: c.chamfer_distance(f.digits[:, 0], f.digits[:, 0]), "generated"),
        case(c.make_controlnet, "unet=None", lambda: c.make_controlnet(None), "unet"),
        case(c.make_controlnet, "a TinyUNet, not a UNet2DConditionModel", lambda: c.make_controlnet(f.tiny), "unet"),
        case(c.zero_convolutions, "controlnet=None", lambda: c.zero_convolutions(None), "controlnet"),
        case(c.zero_convolutions, "the UNet instead of the ControlNet", lambda: c.zero_convolutions(f.cond_unet),
             "controlnet"),
        case(c.controlnet_residuals, "conditioning_scale=True", lambda: residuals(True), "conditioning_scale"),
        case(c.controlnet_residuals, "conditioning_scale=-1", lambda: residuals(-1), "conditioning_scale"),
        case(c.controlnet_residuals, "control 28x28, not padded to 32x32", lambda: residuals(ctl=f.digits), "control"),
        case(c.controlnet_residuals, "timestep=None", lambda: residuals(t=None), "timestep"),
        case(c.controlnet_loss, "pixel digits [N, 1, 28, 28] for latents", lambda: loss(latents=f.digits), "latents"),
        case(c.controlnet_loss, "alpha_bar=None", lambda: loss(alpha_bar=None), "alpha_bar"),
        case(c.controlnet_loss, "generator=0 (a seed)", lambda: loss(generator=0), "generator"),
        case(c.controlnet_loss, "3 embeddings for 2 latents",
             lambda: loss(embeddings=torch.cat([f.embeds, f.embeds[:1]])), "embeddings"),
        case(c.check_controlnet, "controlnet=None", lambda: c.check_controlnet("controlnet", None), "controlnet"),
        case(c.check_controlnet, "the UNet instead of the ControlNet",
             lambda: c.check_controlnet("controlnet", f.cond_unet), "controlnet"),
    ]


def data_cases(f: Fixtures) -> list[Case]:
    d = data
    return [
        case(d.sha256_of, "a file that does not exist", lambda: d.sha256_of(f.tmp / "missing.bin"), "missing.bin"),
        case(d.sha256_of, "path=None", lambda: d.sha256_of(None), "path"),
        case(d.sha256_of, "a folder", lambda: d.sha256_of(f.empty_dir), "path", "empty_folder"),
        case(d.verified_path, "name 'train-images.gz'", lambda: d.verified_path("train-images.gz"), "name"),
        case(d.verified_path, "name=None", lambda: d.verified_path(None), "name"),
        case(d.verified_path, "directory that does not exist",
             lambda: d.verified_path("t10k-labels-idx1-ubyte.gz", f.tmp / "no_mnist"), "no_mnist"),
        case(d.read_idx, "a file that does not exist", lambda: d.read_idx(f.tmp / "missing.gz"), "missing.gz"),
        case(d.read_idx, "a file that is not gzip", lambda: d.read_idx(ROOT / "data" / "README.md"), "README.md"),
        case(d.read_idx, "a gzip file that is not idx", lambda: d.read_idx(f.not_idx), "notes.gz"),
        case(d.load_mnist, "split='validation'", lambda: d.load_mnist("validation"), "split"),
        case(d.load_mnist, "split='Train'", lambda: d.load_mnist("Train"), "split"),
        case(d.load_mnist, "split=None", lambda: d.load_mnist(None), "split"),
        case(d.load_mnist, "directory that does not exist", lambda: d.load_mnist("test", f.tmp / "no_mnist"), "no_mnist"),
        case(d.to_model_range, "float images already in [-1, 1]", lambda: d.to_model_range(f.digits[:, 0]), "images"),
        case(d.to_model_range, "images=None", lambda: d.to_model_range(None), "images"),
        case(d.to_model_range, "uint8 images [N, 1, 28, 28] with a channel dim",
             lambda: d.to_model_range(f.mnist_uint8[:, None]), "images"),
        case(d.to_pixel_range, "numpy array", lambda: d.to_pixel_range(f.digits.numpy()), "images"),
        case(d.to_pixel_range, "uint8 tensor in 0..255", lambda: d.to_pixel_range(f.digits_uint8), "images"),
        case(d.to_pixel_range, "images=None", lambda: d.to_pixel_range(None), "images"),
        case(d.mnist_tensors, "split='validation'", lambda: d.mnist_tensors("validation"), "split"),
        case(d.mnist_bytes, "split='validation'", lambda: d.mnist_bytes("validation"), "split"),
        case(d.mnist_tensors, "split=None", lambda: d.mnist_tensors(None), "split"),
        case(d.mnist_tensors, "split='TEST'", lambda: d.mnist_tensors("TEST"), "split"),
    ]


def ddpm_cases(f: Fixtures) -> list[Case]:
    d = ddpm
    timesteps = torch.tensor([500, 10])
    step = lambda **kw: d.ddpm_step(**{"model_output": f.noise, "t": 500, "prev_t": 400, "x_t": f.digits,  # noqa: E731
                                       "alpha_bar": f.alpha_bar, "noise": f.noise, **kw})
    sample = lambda **kw: d.sample_ddpm(**{"model": f.tiny, "num_images": 2, "alpha_bar": f.alpha_bar,  # noqa: E731
                                           "num_inference_steps": 2, "progress": False, **kw})
    loss = lambda **kw: d.ddpm_loss(**{"model": f.tiny, "x0": f.digits, "alpha_bar": f.alpha_bar, **kw})  # noqa: E731
    return [
        case(d.check_prediction_type, "'eps'", lambda: d.check_prediction_type("eps"), "prediction_type"),
        case(d.check_prediction_type, "'v'", lambda: d.check_prediction_type("v"), "prediction_type"),
        case(d.check_prediction_type, "None", lambda: d.check_prediction_type(None), "prediction_type"),
        case(d.training_target, "prediction_type='x0'",
             lambda: d.training_target(f.digits, f.noise, 0.5, "x0"), "prediction_type"),
        case(d.training_target, "integer timesteps for abar_t (v_prediction)",
             lambda: d.training_target(f.digits, f.noise, timesteps, "v_prediction"), "abar_t"),
        case(d.training_target, "abar_t=1.5 (v_prediction)",
             lambda: d.training_target(f.digits, f.noise, 1.5, "v_prediction"), "abar_t"),
        case(d.training_target, "noise of another shape (epsilon)",
             lambda: d.training_target(f.digits, torch.randn(2, 1, 32, 32), 0.5), "noise"),
        case(d.predicted_x0_and_eps, "prediction_type='epsilon ' (trailing space)",
             lambda: d.predicted_x0_and_eps(f.noise, f.digits, 0.5, "epsilon "), "prediction_type"),
        case(d.predicted_x0_and_eps, "abar_t=0 (epsilon)",
             lambda: d.predicted_x0_and_eps(f.noise, f.digits, 0.0), "abar_t"),
        case(d.predicted_x0_and_eps, "integer timesteps for abar_t",
             lambda: d.predicted_x0_and_eps(f.noise, f.digits, timesteps), "abar_t"),
        case(d.predicted_x0_and_eps, "model_output for 1 image, x_t for 2",
             lambda: d.predicted_x0_and_eps(f.noise[:1], f.digits, 0.5), "model_output"),
        case(d.ddpm_loss, "uint8 x0 in 0..255", lambda: loss(x0=f.digits_uint8), "x0"),
        case(d.ddpm_loss, "time_sampling='log-normal'", lambda: loss(time_sampling="log-normal"), "time_sampling"),
        case(d.ddpm_loss, "snr_gamma=0", lambda: loss(snr_gamma=0.0), "gamma"),
        case(d.training_timesteps, "size='64'", lambda: d.training_timesteps(f.alpha_bar, "64"), "size"),
        case(d.training_timesteps, "time_sampling='logit-normal' (the flow's)",
             lambda: d.training_timesteps(f.alpha_bar, 4, time_sampling="logit-normal"), "time_sampling"),
        case(d.min_snr_weight, "abar_t as a Python list", lambda: d.min_snr_weight([0.5], "epsilon", 5.0), "abar_t"),
        case(d.min_snr_weight, "gamma=-1", lambda: d.min_snr_weight(f.alpha_bar[:4], "epsilon", -1.0), "gamma"),
        case(d.min_snr_weight, "prediction_type and gamma swapped",
             lambda: d.min_snr_weight(f.alpha_bar[:4], 5.0, "epsilon"), "prediction_type"),
        case(d.ddpm_loss, "x0 [N, 28, 28], no channel dim", lambda: loss(x0=f.digits[:, 0]), "x0"),
        case(d.ddpm_loss, "alpha_bar=None", lambda: loss(alpha_bar=None), "alpha_bar"),
        case(d.ddpm_loss, "prediction_type='v'", lambda: loss(prediction_type="v"), "prediction_type"),
        case(d.inference_timesteps, "num_inference_steps=0", lambda: d.inference_timesteps(1000, 0), "num_inference_steps"),
        case(d.inference_timesteps, "num_inference_steps=2.5", lambda: d.inference_timesteps(1000, 2.5),
             "num_inference_steps"),
        case(d.inference_timesteps, "num_train_timesteps='1000'", lambda: d.inference_timesteps("1000", 10),
             "num_train_timesteps"),
        case(d.inference_timesteps, "num_train_timesteps=0", lambda: d.inference_timesteps(0, 10), "num_train_timesteps"),
        case(d.ddpm_step, "t=1000", lambda: step(t=1000), "t"),
        case(d.ddpm_step, "t as a 0-d tensor", lambda: step(t=torch.tensor(500)), "t"),
        case(d.ddpm_step, "prev_t == t (not earlier)", lambda: step(prev_t=500), "prev_t"),
        case(d.ddpm_step, "noise=None on a middle step", lambda: step(noise=None), "noise"),
        case(d.ddpm_step, "alpha_bar=None", lambda: step(alpha_bar=None), "alpha_bar"),
        case(d.sample_ddpm, "num_images=0", lambda: sample(num_images=0), "num_images"),
        case(d.sample_ddpm, "num_inference_steps=0", lambda: sample(num_inference_steps=0), "num_inference_steps"),
        case(d.sample_ddpm, "image_shape=(28, 28), no channel", lambda: sample(image_shape=(28, 28)), "image_shape"),
        case(d.sample_ddpm, "trajectory_every=-1", lambda: sample(trajectory_every=-1), "trajectory_every"),
        case(d.sample_ddpm, "alpha_bar=None", lambda: sample(alpha_bar=None), "alpha_bar"),
        case(d.load_ddpm, "name 'ddpm' (no such checkpoint)", lambda: d.load_ddpm("ddpm"), "ddpm.json"),
        case(d.load_ddpm, "data_dir=3 (not a path)", lambda: d.load_ddpm("ddpm_mnist", 3), "data_dir"),
        case(d.load_ddpm, "data_dir a folder without it", lambda: d.load_ddpm("ddpm_mnist", f.empty_dir),
             "ddpm_mnist"),
        case(d.load_ddpm, "the flow model 'flow_mnist'", lambda: d.load_ddpm("flow_mnist"), "name", "flow_mnist"),
        case(d.load_ddpm, "the classifier 'mnist_classifier'", lambda: d.load_ddpm("mnist_classifier"), "name",
             "mnist_classifier"),
    ]


def flow_cases(f: Fixtures) -> list[Case]:
    fl = flow
    sample = lambda **kw: fl.sample_flow(**{"model": f.tiny, "num_images": 2, "num_steps": 2,  # noqa: E731
                                            "progress": False, **kw})
    points = lambda: torch.randn(3, 2, generator=torch.Generator().manual_seed(5))  # noqa: E731
    return [
        case(fl.flow_path, "sigma=1.5", lambda: fl.flow_path(f.digits, f.noise, 1.5), "sigma"),
        case(fl.flow_path, "sigma='0.5' (a string)", lambda: fl.flow_path(f.digits, f.noise, "0.5"), "sigma"),
        case(fl.flow_path, "3 sigmas for 2 images",
             lambda: fl.flow_path(f.digits, f.noise, torch.tensor([0.1, 0.5, 0.9])), "sigma"),
        case(fl.flow_path, "noise of another shape",
             lambda: fl.flow_path(f.digits, torch.randn(2, 1, 32, 32), 0.5), "noise"),
        case(fl.flow_velocity_target, "noise=None", lambda: fl.flow_velocity_target(f.digits, None), "noise"),
        case(fl.flow_velocity_target, "noise for 1 image, x0 for 2",
             lambda: fl.flow_velocity_target(f.digits, f.noise[:1]), "noise"),
        case(fl.flow_loss, "uint8 x0 in 0..255", lambda: fl.flow_loss(f.tiny, f.digits_uint8), "x0"),
        case(fl.flow_loss, "x0 [N, 28, 28], no channel dim", lambda: fl.flow_loss(f.tiny, f.digits[:, 0]), "x0"),
        case(fl.flow_loss, "model=None", lambda: fl.flow_loss(None, f.digits), "model"),
        case(fl.flow_loss, "time_sampling='lognormal' (the DDPM's)",
             lambda: fl.flow_loss(f.tiny, f.digits, time_sampling="lognormal"), "time_sampling"),
        case(fl.training_sigmas, "size=2.5", lambda: fl.training_sigmas(2.5), "size"),
        case(fl.training_sigmas, "time_sampling='logit_normal'",
             lambda: fl.training_sigmas(4, time_sampling="logit_normal"), "time_sampling"),
        case(fl.velocity_straightness, "one point", lambda: fl.velocity_straightness([f.digits], [1.0]), "trajectory"),
        case(fl.velocity_straightness, "trajectory=None", lambda: fl.velocity_straightness(None, [1.0]), "trajectory"),
        case(fl.velocity_straightness, "2 sigmas for 3 points",
             lambda: fl.velocity_straightness([f.noise, f.noise, f.digits], [1.0, 0.0]), "sigmas"),
        case(fl.shift_sigmas, "shift=0", lambda: fl.shift_sigmas(fl.flow_sigmas(4), 0), "shift"),
        case(fl.shift_sigmas, "shift=True", lambda: fl.shift_sigmas(fl.flow_sigmas(4), True), "shift"),
        case(fl.shift_sigmas, "sigmas as a Python list", lambda: fl.shift_sigmas([1.0, 0.5, 0.0], 3.0), "sigmas"),
        case(fl.flow_sigmas, "num_steps=0", lambda: fl.flow_sigmas(0), "num_steps"),
        case(fl.flow_sigmas, "num_steps=2.5", lambda: fl.flow_sigmas(2.5), "num_steps"),
        case(fl.flow_sigmas, "num_steps='20'", lambda: fl.flow_sigmas("20"), "num_steps"),
        case(fl.euler_step, "sigma='1.0' (a string)", lambda: fl.euler_step(f.noise, "1.0", 0.5, f.digits), "sigma"),
        case(fl.ancestral_step, "sigma=0 (no noise left to remove)",
             lambda: fl.ancestral_step(f.noise, 0.0, 0.0, f.digits, None), "sigma"),
        case(fl.ancestral_step, "sigma_next above sigma",
             lambda: fl.ancestral_step(f.noise, 0.3, 0.6, f.digits, f.noise), "sigma_next"),
        case(fl.ancestral_step, "noise=None before the last step",
             lambda: fl.ancestral_step(f.noise, 0.6, 0.3, f.digits, None), "noise"),
        case(fl.ancestral_step, "noise 32x32 for x 28x28",
             lambda: fl.ancestral_step(f.noise, 0.6, 0.3, f.digits, torch.randn(2, 1, 32, 32)), "noise"),
        case(fl.ancestral_step, "clip_range=0", lambda: fl.ancestral_step(f.noise, 0.6, 0.3, f.digits, f.noise, 0),
             "clip_range"),
        case(fl.euler_step, "velocity 32x32 for x 28x28",
             lambda: fl.euler_step(torch.randn(2, 1, 32, 32), 1.0, 0.5, f.digits), "velocity"),
        case(fl.velocity_at, "sigma='0.5' (a string)", lambda: fl.velocity_at(f.tiny, f.digits, "0.5"), "sigma"),
        case(fl.velocity_at, "sigma=1.5", lambda: fl.velocity_at(f.tiny, f.digits, 1.5), "sigma"),
        case(fl.number_of_evaluations, "sampler='Euler'", lambda: fl.number_of_evaluations(10, "Euler"), "sampler"),
        case(fl.number_of_evaluations, "num_steps=0 (heun)", lambda: fl.number_of_evaluations(0, "heun"), "num_steps"),
        case(fl.number_of_evaluations, "num_steps=-5", lambda: fl.number_of_evaluations(-5, "euler"), "num_steps"),
        case(fl.sample_flow, "sampler='rk4'", lambda: sample(sampler="rk4"), "sampler"),
        case(fl.sample_flow, "num_steps=0", lambda: sample(num_steps=0), "num_steps"),
        case(fl.sample_flow, "shift=0", lambda: sample(shift=0), "shift"),
        case(fl.sample_flow, "image_shape=(28, 28), no channel", lambda: sample(image_shape=(28, 28)), "image_shape"),
        case(fl.straightness, "trajectory=[] (empty)", lambda: fl.straightness([]), "trajectory"),
        case(fl.straightness, "a trajectory of (t, x) pairs", lambda: fl.straightness(f.frames), "trajectory"),
        case(fl.straightness, "trajectory=None", lambda: fl.straightness(None), "trajectory"),
        case(fl.ideal_velocity, "sigma=0", lambda: fl.ideal_velocity(points()[:2], 0.0, points()), "sigma"),
        case(fl.ideal_velocity, "sigma=1.5", lambda: fl.ideal_velocity(points()[:2], 1.5, points()), "sigma"),
        case(fl.ideal_velocity, "data of another dimension [N, 3]",
             lambda: fl.ideal_velocity(points()[:2], 0.5, torch.randn(3, 3)), "data"),
        case(fl.flow_coordinates, "abar_t=1.5", lambda: fl.flow_coordinates(f.digits, 1.5), "abar_t"),
        case(fl.flow_coordinates, "integer timesteps for abar_t",
             lambda: fl.flow_coordinates(f.digits, torch.tensor([500, 10])), "abar_t"),
        case(fl.flow_coordinates, "abar_t='0.5' (a string)", lambda: fl.flow_coordinates(f.digits, "0.5"), "abar_t"),
        case(fl.ddpm_velocity, "prediction_type='velocity'",
             lambda: fl.ddpm_velocity(f.noise, f.digits, 0.5, "velocity"), "prediction_type"),
        case(fl.ddpm_velocity, "abar_t=2.0", lambda: fl.ddpm_velocity(f.noise, f.digits, 2.0), "abar_t"),
        case(fl.ddpm_velocity, "abar_t=0 (epsilon)", lambda: fl.ddpm_velocity(f.noise, f.digits, 0.0), "abar_t"),
        case(fl.load_flow, "name 'flow' (no such checkpoint)", lambda: fl.load_flow("flow"), "flow.json"),
        case(fl.load_flow, "the DDPM 'ddpm_mnist'", lambda: fl.load_flow("ddpm_mnist"), "name", "ddpm_mnist"),
        case(fl.load_flow, "name=None", lambda: fl.load_flow(None), "name"),
        case(fl.ancestral_step, "one sigma per image (a tensor of 2)",
             lambda: fl.ancestral_step(f.noise, torch.tensor([0.5, 0.6]), 0.2, f.noise, f.noise), "sigma"),
        case(fl.ddpm_sigma, "abar_t='0.5' (a string)", lambda: fl.ddpm_sigma("0.5"), "abar_t"),
        case(fl.ddpm_sigma, "abar_t=1.5", lambda: fl.ddpm_sigma(1.5), "abar_t"),
        case(fl.ddpm_sigma, "integer timesteps for abar_t", lambda: fl.ddpm_sigma(torch.tensor([10, 20])), "abar_t"),
        case(fl.integrate, "model=None", lambda: fl.integrate(None, f.noise, [1.0, 0.0]), "model"),
        case(fl.integrate, "integer x", lambda: fl.integrate(f.tiny, f.noise.long(), [1.0, 0.0]), "x"),
        case(fl.integrate, "sigmas increasing [0, 1]", lambda: fl.integrate(f.tiny, f.noise, [0.0, 1.0]), "sigmas"),
        case(fl.integrate, "sigmas=None", lambda: fl.integrate(f.tiny, f.noise, None), "sigmas"),
        case(fl.integrate, "one level", lambda: fl.integrate(f.tiny, f.noise, [1.0]), "sigmas"),
        case(fl.integrate, "sigmas [1.5, 0]", lambda: fl.integrate(f.tiny, f.noise, [1.5, 0.0]), "sigmas"),
        case(fl.integrate, "sampler='rk4'", lambda: fl.integrate(f.tiny, f.noise, [1.0, 0.0], "rk4"), "sampler"),
        case(fl.integrate, "generator=0 (a seed)",
             lambda: fl.integrate(f.tiny, f.noise, [1.0, 0.0], "ancestral", 0), "generator"),
        case(fl.integrate, "progress='yes'", lambda: fl.integrate(f.tiny, f.noise, [1.0, 0.0], progress="yes"),
             "progress"),
        case(fl.steps_for_evaluations, "nfe=0", lambda: fl.steps_for_evaluations(0, "euler"), "nfe"),
        case(fl.steps_for_evaluations, "nfe=2.5", lambda: fl.steps_for_evaluations(2.5, "euler"), "nfe"),
        case(fl.steps_for_evaluations, "sampler='Heun' (capitalised)", lambda: fl.steps_for_evaluations(3, "Heun"),
             "sampler"),
    ]


def guidance_cases(f: Fixtures) -> list[Case]:
    g = guidance
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    tok_enc = lambda: f.text2image[:2]  # noqa: E731
    embed = lambda prompts: g.embed_prompts(*tok_enc(), prompts)  # noqa: E731
    eps = lambda n=2: torch.randn(n, 4, 8, 8, generator=torch.Generator().manual_seed(n))  # noqa: E731

    def sample(**kw):
        args = {"unet": f.cond_unet, "scheduler": g.latent_scheduler("ddim"), "prompt_embeds": f.embeds,
                "negative_embeds": f.empty_embeds, "guidance_scale": 3.0, "num_inference_steps": 2,
                "progress": False, **kw}
        return g.sample_with_guidance(**args)

    return [
        case(g.conditional_unet_config, "cross_attention_dim=0", lambda: g.conditional_unet_config(0),
             "cross_attention_dim"),
        case(g.conditional_unet_config, "cross_attention_dim='64'", lambda: g.conditional_unet_config("64"),
             "cross_attention_dim"),
        case(g.conditional_unet_config, "cross_attention_dim=True", lambda: g.conditional_unet_config(True),
             "cross_attention_dim"),
        case(g.make_conditional_unet, "cross_attention_dim=0", lambda: g.make_conditional_unet(0), "cross_attention_dim"),
        case(g.make_conditional_unet, "cross_attention_dim='64'", lambda: g.make_conditional_unet("64"),
             "cross_attention_dim"),
        case(g.latent_scheduler, "name='dpm_solver++'", lambda: g.latent_scheduler("dpm_solver++"), "name"),
        case(g.latent_scheduler, "override num_train_timesteps=0",
             lambda: g.latent_scheduler(num_train_timesteps=0), "num_train_timesteps"),
        case(g.latent_scheduler, "override timestep_spacing='trailng' (misspelled value)",
             lambda: g.latent_scheduler(timestep_spacing="trailng"), "timestep_spacing"),
        case(g.latent_scheduler, "override with a misspelled key 'steps_ofset'",
             lambda: g.latent_scheduler(steps_ofset=1), "steps_ofset"),
        case(g.drop_prompts, "rate=1.5", lambda: g.drop_prompts(["a one", "a two"], 1.5, rng()), "rate"),
        case(g.drop_prompts, "rate='0.1' (a string)", lambda: g.drop_prompts(["a one"], "0.1", rng()), "rate"),
        case(g.drop_prompts, "rate=True", lambda: g.drop_prompts(["a one"], True, rng()), "rate"),
        case(g.drop_prompts, "prompts as a single string", lambda: g.drop_prompts("a seven", 0.1, rng()), "prompts"),
        case(g.within_class_spread, "features as a numpy array",
             lambda: g.within_class_spread(np.zeros((4, 3)), [0, 0, 1, 1]), "features"),
        case(g.within_class_spread, "one label fewer than features",
             lambda: g.within_class_spread(torch.zeros(4, 3), [0, 0, 1]), "labels"),
        case(g.within_class_spread, "every class a single image",
             lambda: g.within_class_spread(torch.zeros(3, 3), [0, 1, 2]), "labels"),
        case(g.check_guidance_scale, "-1", lambda: g.check_guidance_scale(-1), "guidance_scale"),
        case(g.check_guidance_scale, "True", lambda: g.check_guidance_scale(True), "guidance_scale"),
        case(g.check_guidance_scale, "NaN", lambda: g.check_guidance_scale(NAN), "guidance_scale"),
        case(g.classifier_free_guidance, "guidance_scale='7.5' (a string)",
             lambda: g.classifier_free_guidance(eps(), eps(), "7.5"), "guidance_scale"),
        case(g.classifier_free_guidance, "guidance_scale=-5",
             lambda: g.classifier_free_guidance(eps(), eps(), -5), "guidance_scale"),
        case(g.classifier_free_guidance, "eps_cond for 3 images, eps_uncond for 2",
             lambda: g.classifier_free_guidance(eps(), eps(3), 3.0), "eps_cond", "eps_uncond"),
        case(g.check_guidance_rescale, "1.5", lambda: g.check_guidance_rescale(1.5), "rescale"),
        case(g.check_guidance_rescale, "True", lambda: g.check_guidance_rescale(True), "rescale"),
        case(g.check_guidance_rescale, "'0.7' (a string)", lambda: g.check_guidance_rescale("0.7"), "rescale"),
        case(g.rescale_guidance, "rescale=1.5", lambda: g.rescale_guidance(eps(), eps(), 1.5), "rescale"),
        case(g.rescale_guidance, "rescale=True", lambda: g.rescale_guidance(eps(), eps(), True), "rescale"),
        case(g.rescale_guidance, "eps_cond for 3 images, eps_guided for 2",
             lambda: g.rescale_guidance(eps(), eps(3), 0.7), "eps_cond", "eps_guided"),
        case(g.guidance_scale_at, "interval=(800, 200), reversed", lambda: g.guidance_scale_at(500, 7.5, (800, 200)),
             "interval"),
        case(g.guidance_scale_at, "interval=(200,), one number", lambda: g.guidance_scale_at(500, 7.5, (200,)),
             "interval"),
        case(g.guidance_scale_at, "interval='200-800' (a string)", lambda: g.guidance_scale_at(500, 7.5, "200-800"),
             "interval"),
        case(g.guidance_scale_at, "timestep=None", lambda: g.guidance_scale_at(None, 7.5, (200, 800)), "timestep"),
        case(g.check_interval, "(800, 200), reversed", lambda: g.check_interval((800, 200)), "interval"),
        case(g.check_interval, "(200.0, 800.0), floats", lambda: g.check_interval((200.0, 800.0)), "interval"),
        case(g.check_interval, "(200, 800, 1000), three numbers", lambda: g.check_interval((200, 800, 1000)), "interval"),
        case(g.check_interval, "'200,800' (a string)", lambda: g.check_interval("200,800"), "interval"),
        case(g.embed_prompts, "prompts as a single string", lambda: embed("a seven"), "prompts"),
        case(g.embed_prompts, "a prompt with '七'", lambda: embed(["七"]), "prompts"),
        case(g.embed_prompts, "prompts=[] (empty)", lambda: embed([]), "prompts"),
        case(g.embed_prompts, "prompts=[7] (an int)", lambda: embed([7]), "prompts"),
        case(g.sample_with_guidance, "guidance_scale=-1", lambda: sample(guidance_scale=-1), "guidance_scale"),
        case(g.sample_with_guidance, "num_inference_steps=0", lambda: sample(num_inference_steps=0),
             "num_inference_steps"),
        case(g.sample_with_guidance, "negative_embeds for 1 prompt, prompt_embeds for 2",
             lambda: sample(negative_embeds=f.empty_embeds[:1]), "negative_embeds"),
        case(g.sample_with_guidance, "controlnet without control", lambda: sample(controlnet=f.controlnet),
             "controlnet", "control"),
        case(g.sample_with_guidance, "conditioning_scale=-1 with a ControlNet",
             lambda: sample(controlnet=f.controlnet, control=f.controls, conditioning_scale=-1), "conditioning_scale"),
        case(g.load_text2image, "folder=7", lambda: g.load_text2image(7), "folder"),
        case(g.load_text2image, "manifest=7", lambda: g.load_text2image(manifest=7), "manifest"),
    ]


def homework_cases(f: Fixtures) -> list[Case]:
    h = homework
    options = ["noise", "image", "label", "timestep"]
    quiet = lambda call: lambda: _quietly(call)  # noqa: E731  quiz and review print
    return [
        case(h.check_close, "atol=-1", lambda: h.check_close("x", 1.0, 1.0, atol=-1), "atol"),
        case(h.check_close, "atol=True", lambda: h.check_close("x", 1.0, 1.0, atol=True), "atol"),
        case(h.check_close, "rtol=NaN", lambda: h.check_close("x", 1.0, 1.0, rtol=NAN), "rtol"),
        case(h.check_close, "expected=None", lambda: h.check_close("x", 1.0, None), "expected"),
        case(h.check_close, "name=None", lambda: h.check_close(None, 1.0, 1.0), "name"),
        case(h.check_shape, "shape=28 (an int)", lambda: h.check_shape("x", f.digits, 28), "shape"),
        case(h.check_shape, "shape='28x28' (a string)", lambda: h.check_shape("x", f.digits[0, 0], "28x28"), "shape"),
        case(h.check_shape, "shape=(28.0, 28)", lambda: h.check_shape("x", f.digits[0, 0], (28.0, 28)), "shape"),
        case(h.check_shape, "shape=(True, 28)", lambda: h.check_shape("x", f.digits[0, :1, 0], (True, 28)), "shape"),
        case(h.check_range, "low > high", lambda: h.check_range("x", 0.5, 1, 0), "low", "high"),
        case(h.check_range, "low=NaN", lambda: h.check_range("x", 0.5, NAN, 1), "low"),
        case(h.check_range, "low='0' (a string)", lambda: h.check_range("x", 0.5, "0", 1), "low"),
        case(h.quiz_text, "answer_index=4 with 4 options", lambda: h.quiz_text("Q?", options, 4), "answer_index"),
        case(h.quiz_text, "options='abcd' (a string)", lambda: h.quiz_text("Q?", "abcd", 0), "options"),
        case(h.quiz_text, "question='' (empty)", lambda: h.quiz_text("", options, 0), "question"),
        case(h.quiz_text, "the same option twice", lambda: h.quiz_text("Q?", ["a", "a"], 0), "options"),
        case(h.quiz_widget, "answer_index=-1", lambda: h.quiz_widget("Q?", options, -1), "answer_index"),
        case(h.quiz_widget, "a single option", lambda: h.quiz_widget("Q?", ["only one"], 0), "options"),
        case(h.quiz, "answer_index=True", quiet(lambda: h.quiz("Q?", options, True, static=True)), "answer_index"),
        case(h.quiz, "static='yes' (a string)", quiet(lambda: h.quiz("Q?", options, 0, static="yes")), "static"),
        case(h.quiz, "options=[] (empty)", quiet(lambda: h.quiz("Q?", [], 0, static=True)), "options"),
        case(h.review, "notebook=0", quiet(lambda: h.review(0, static=True)), "notebook"),
        case(h.review, "notebook='3' (a string)", quiet(lambda: h.review("3", static=True)), "notebook"),
        case(h.review, "notebook=3.0", quiet(lambda: h.review(3.0, static=True)), "notebook"),
        case(h.review, "notebook=True", quiet(lambda: h.review(True, static=True)), "notebook"),
    ]


def latents_cases(f: Fixtures) -> list[Case]:
    la = latents
    mean = lambda: torch.zeros(2, 4, 8, 8)  # noqa: E731
    return [
        case(la.pad_to_32, "images already 32x32", lambda: la.pad_to_32(la.pad_to_32(f.digits)), "images"),
        case(la.pad_to_32, "uint8 images in 0..255", lambda: la.pad_to_32(f.digits_uint8), "images"),
        case(la.crop_to_28, "images already 28x28", lambda: la.crop_to_28(f.digits), "images"),
        case(la.crop_to_28, "images=None", lambda: la.crop_to_28(None), "images"),
        case(la.make_vae, "scaling_factor=0", lambda: la.make_vae(0), "scaling_factor"),
        case(la.make_vae, "scaling_factor='0.18' (a string)", lambda: la.make_vae("0.18"), "scaling_factor"),
        case(la.make_vae, "scaling_factor=NaN", lambda: la.make_vae(NAN), "scaling_factor"),
        case(la.make_vae, "widths=(16, 32) (two levels)", lambda: la.make_vae(widths=(16, 32)), "widths"),
        case(la.vae_config, "widths=(16, 32, 60) (not multiples of 8)", lambda: la.vae_config((16, 32, 60)), "widths"),
        case(la.vae_config, "widths=64 (one number)", lambda: la.vae_config(64), "widths"),
        case(la.vae_config, "widths=(16, 32, True)", lambda: la.vae_config((16, 32, True)), "widths"),
        case(la.reparameterise, "logvar for 3 images, mean for 2",
             lambda: la.reparameterise(mean(), torch.zeros(3, 4, 8, 8)), "logvar"),
        case(la.reparameterise, "logvar=None", lambda: la.reparameterise(mean(), None), "logvar"),
        case(la.reparameterise, "generator=0 (a seed)", lambda: la.reparameterise(mean(), mean(), 0), "generator"),
        case(la.kl_to_standard_normal, "mean [N, D], 2-D",
             lambda: la.kl_to_standard_normal(torch.zeros(2, 256), torch.zeros(2, 256)), "mean"),
        case(la.kl_to_standard_normal, "logvar for 3 images, mean for 2",
             lambda: la.kl_to_standard_normal(mean(), torch.zeros(3, 4, 8, 8)), "logvar"),
        case(la.vae_loss, "kl_weight=-1", lambda: la.vae_loss(f.vae, la.pad_to_32(f.digits), -1), "kl_weight"),
        case(la.vae_loss, "kl_weight='0.1' (a string)", lambda: la.vae_loss(f.vae, la.pad_to_32(f.digits), "0.1"),
             "kl_weight"),
        case(la.vae_loss, "images 28x28, not padded to 32", lambda: la.vae_loss(f.vae, f.digits, 1e-3), "images"),
        case(la.vae_loss, "uint8 images", lambda: la.vae_loss(f.vae, la.pad_to_32(f.digits_uint8.float()).byte(), 1e-3),
             "images"),
        case(la.psnr, "data_range=0", lambda: la.psnr(f.digits, f.noise, 0), "data_range"),
        case(la.psnr, "data_range=-2", lambda: la.psnr(f.digits, f.noise, -2), "data_range"),
        case(la.psnr, "target of another size", lambda: la.psnr(f.digits, la.pad_to_32(f.digits)), "target"),
        case(la.psnr, "uint8 images", lambda: la.psnr(f.digits_uint8, f.digits_uint8.flip(0)), "reconstruction"),
        case(la.latent_scaling_factor, "constant latents (std 0)",
             lambda: la.latent_scaling_factor(torch.zeros(2, 4, 8, 8)), "latents"),
        case(la.latent_scaling_factor, "a Python list", lambda: la.latent_scaling_factor([0.1, 0.2]), "latents"),
        case(la.latent_scaling_factor, "an empty tensor", lambda: la.latent_scaling_factor(torch.empty(0)), "latents"),
        case(la.encode, "batch_size=0", lambda: la.encode(f.vae, f.digits, 0), "batch_size"),
        case(la.encode, "batch_size=2.5", lambda: la.encode(f.vae, f.digits, 2.5), "batch_size"),
        case(la.encode, "images already padded to 32x32", lambda: la.encode(f.vae, la.pad_to_32(f.digits)), "images28"),
        case(la.encode, "uint8 images", lambda: la.encode(f.vae, f.digits_uint8), "images28"),
        case(la.decode, "batch_size=0", lambda: la.decode(f.vae, f.latents, 0), "batch_size"),
        case(la.decode, "latents [4, 8, 8], no batch dim", lambda: la.decode(f.vae, f.latents[0]), "latents"),
        case(la.decode, "images [N, 1, 28, 28] for latents", lambda: la.decode(f.vae, f.digits), "latents"),
        case(la.latent_shape, "num_images=-1", lambda: la.latent_shape(-1), "num_images"),
        case(la.latent_shape, "num_images=2.5", lambda: la.latent_shape(2.5), "num_images"),
        case(la.latent_shape, "num_images=True", lambda: la.latent_shape(True), "num_images"),
        case(la.load_vae, "a folder that does not exist", lambda: la.load_vae(f.tmp / "no_such_pipeline"),
             "no_such_pipeline"),
        case(la.load_vae, "folder=3 (a number)", lambda: la.load_vae(3), "folder"),
        case(la.channel_images, "z=None", lambda: la.channel_images(None), "z"),
        case(la.channel_images, "z of 4x4 cells", lambda: la.channel_images(torch.zeros(2, 4, 4, 4)), "z"),
        case(la.channel_images, "integer z", lambda: la.channel_images(mean().long()), "z"),
        case(la.reconstruction_floor, "reconstructions of 100 digits",
             lambda: la.reconstruction_floor(f.classifier, torch.zeros(10_000, 1, 28, 28), torch.zeros(100, 1, 28, 28)),
             "reconstructions"),
        case(la.reconstruction_floor, "test_images of 100 digits",
             lambda: la.reconstruction_floor(f.classifier, torch.zeros(100, 1, 28, 28), torch.zeros(100, 1, 28, 28)),
             "test_images"),
    ]


def metrics_cases(f: Fixtures) -> list[Case]:
    m = metrics
    cov = lambda: np.eye(8)  # noqa: E731
    mu = lambda n=8: np.zeros(n)  # noqa: E731
    return [
        case(m.classify, "batch_size=0", lambda: m.classify(f.classifier, f.digits, 0), "batch_size"),
        case(m.read_digits, "classifier=None", lambda: m.read_digits(None, f.digits), "classifier"),
        case(m.read_digits, "images in 0..255", lambda: m.read_digits(f.classifier, f.digits_255), "images"),
        case(m.adherence, "digit 10 requested", lambda: m.adherence(f.classifier, f.digits, [1, 10]), "requested"),
        case(m.adherence, "3 digits for 2 images", lambda: m.adherence(f.classifier, f.digits, [1, 2, 3]), "requested"),
        case(m.adherence, "digits as floats", lambda: m.adherence(f.classifier, f.digits, [1.0, 2.0]), "requested"),
        case(m.classify, "uint8 images", lambda: m.classify(f.classifier, f.digits_uint8), "images"),
        case(m.classify, "images [N, 28, 28], no channel dim", lambda: m.classify(f.classifier, f.digits[:, 0]), "images"),
        case(m.classify, "images padded to 32x32", lambda: m.classify(f.classifier, latents.pad_to_32(f.digits)),
             "images"),
        case(m.gaussian_statistics, "a single feature row", lambda: m.gaussian_statistics(np.zeros((1, 8))), "features"),
        case(m.gaussian_statistics, "1-D features", lambda: m.gaussian_statistics(np.zeros(8)), "features"),
        case(m.gaussian_statistics, "features=None", lambda: m.gaussian_statistics(None), "features"),
        case(m.gaussian_statistics, "features with NaN", lambda: m.gaussian_statistics(np.full((4, 8), NAN)), "features"),
        case(m.frechet_distance, "mu2 of another dimension", lambda: m.frechet_distance(mu(), cov(), mu(4), cov()),
             "mu2"),
        case(m.frechet_distance, "sigma1 not [D, D]", lambda: m.frechet_distance(mu(), np.eye(4), mu(), cov()),
             "sigma1"),
        case(m.frechet_distance, "sigma1 with NaN",
             lambda: m.frechet_distance(mu(), np.full((8, 8), NAN), mu(), cov()), "sigma1"),
        case(m.frechet_distance, "negative-definite sigma1", lambda: m.frechet_distance(mu(), -cov(), mu(), cov()),
             "sigma1"),
        case(m.mnist_fid, "numpy arrays, not tensors",
             lambda: m.mnist_fid(f.features.numpy(), f.features.numpy()), "real_features"),
        case(m.mnist_fid, "one generated sample", lambda: m.mnist_fid(f.features, f.features[:1]), "generated_features"),
        case(m.mnist_fid, "feature widths 8 and 10", lambda: m.mnist_fid(f.features, torch.randn(6, 10)),
             "generated_features", "real_features"),
        case(m.confident_share, "threshold=0", lambda: m.confident_share(f.probabilities, 0), "threshold"),
        case(m.confident_share, "threshold='0.9' (a string)", lambda: m.confident_share(f.probabilities, "0.9"),
             "threshold"),
        case(m.confident_share, "threshold=True", lambda: m.confident_share(f.probabilities, True), "threshold"),
        case(m.confident_share, "probabilities 1-D", lambda: m.confident_share(f.probabilities[0]), "probabilities"),
        case(m.class_histogram, "probabilities 1-D", lambda: m.class_histogram(f.probabilities[0]), "probabilities"),
        case(m.class_histogram, "numpy array", lambda: m.class_histogram(f.probabilities.numpy()), "probabilities"),
        case(m.class_histogram, "no samples [0, 10]", lambda: m.class_histogram(torch.empty(0, 10)), "probabilities"),
        case(m.class_histogram, "12 classes", lambda: m.class_histogram(torch.rand(4, 12)), "probabilities"),
        case(m.evaluate_samples, "a single sample", lambda: m.evaluate_samples(f.classifier, f.digits[:1],
                                                                                torch.randn(6, 128)), "samples"),
        case(m.evaluate_samples, "uint8 samples",
             lambda: m.evaluate_samples(f.classifier, f.digits_uint8, torch.randn(6, 128)), "samples"),
        case(m.evaluate_samples, "real_features=None", lambda: m.evaluate_samples(f.classifier, f.digits, None),
             "real_features"),
        case(m.real_feature_sets, "size=1", lambda: m.real_feature_sets(f.classifier, 1), "size"),
        case(m.real_feature_sets, "size=True", lambda: m.real_feature_sets(f.classifier, True), "size"),
        case(m.real_feature_sets, "classifier=None", lambda: m.real_feature_sets(None, 2), "classifier"),
        case(m.real_feature_sets, "seed=-1", lambda: m.real_feature_sets(f.classifier, 2, seed=-1), "seed"),
        case(m.fid_noise, "features=None", lambda: m.fid_noise(None, 2), "features"),
        case(m.fid_noise, "too few features for three sets", lambda: m.fid_noise(f.features, 3), "features"),
        case(m.fid_noise, "size=1", lambda: m.fid_noise(torch.randn(12, 8), 1), "size"),
        case(m.fid_noise, "draws=1", lambda: m.fid_noise(torch.randn(12, 8), 2, draws=1), "draws"),
        case(m.test_digit_sets, "size=1", lambda: m.test_digit_sets(1), "size"),
        case(m.test_digit_sets, "size=6000 (two sets of the 10,000)", lambda: m.test_digit_sets(6000), "size"),
        case(m.test_digit_sets, "seed=-1", lambda: m.test_digit_sets(2, -1), "seed"),
        case(m.test_digit_indices, "size=6000 (two sets of the 10,000)", lambda: m.test_digit_indices(6000), "size"),
        case(m.test_digit_indices, "seed=1.5", lambda: m.test_digit_indices(2, 1.5), "seed"),
    ]


def part_folders_cases(f: Fixtures) -> list[Case]:
    p = part_folders
    return [
        case(p.rebuild_command, "part=None", lambda: p.rebuild_command(None), "part"),
        case(p.rebuild_command, "part=['vae'] (a list)", lambda: p.rebuild_command(["vae"]), "part"),
        case(p.folder_checksums, "a folder that does not exist",
             lambda: p.folder_checksums(f.tmp / "no_such_folder"), "no_such_folder"),
        case(p.folder_checksums, "a file, not a folder", lambda: p.folder_checksums(f.a_file), "folder", "a_file.txt"),
        case(p.verify_pipeline_folder, "a folder that does not exist",
             lambda: p.verify_pipeline_folder(f.tmp / "no_such_folder"), "no_such_folder"),
        case(p.verify_pipeline_folder, "an empty folder", lambda: p.verify_pipeline_folder(f.empty_dir), "empty_folder"),
        case(p.verify_pipeline_folder, "parts='vae' (a string)", lambda: p.verify_pipeline_folder(parts="vae"), "parts"),
        case(p.verify_pipeline_folder, "parts=('vea',) (misspelled)",
             lambda: p.verify_pipeline_folder(parts=("vea",)), "parts"),
        case(p.save_part, "part=None", lambda: p.save_part(None, "vae", f.part_dir), "part"),
        case(p.save_part, "name=None", lambda: p.save_part(f.tokenizer, None, f.part_dir), "name"),
        case(p.save_part, "folder is a file", lambda: p.save_part(f.tokenizer, "tokenizer", f.a_file), "folder",
             "a_file.txt"),
    ]


def pipeline_cases(f: Fixtures) -> list[Case]:
    p = pipeline
    generate = lambda **kw: p.generate_by_hand(**{"pipe": f.pipe, "prompts": ["a seven", "a two"],  # noqa: E731
                                                  "num_inference_steps": 2, **kw})
    cases = [
        case(p.build_course_pipeline, "scheduler='ddim' (a name)", lambda: p.build_course_pipeline("ddim"), "scheduler"),
        case(p.build_course_pipeline, "a TinyUNet as scheduler", lambda: p.build_course_pipeline(f.tiny), "scheduler"),
        case(p.build_controlnet_pipeline, "scheduler='ddim' (a name, not a scheduler)",
             lambda: p.build_controlnet_pipeline(scheduler="ddim"), "scheduler"),
        case(p.build_controlnet_pipeline, "the UNet as controlnet",
             lambda: p.build_controlnet_pipeline(controlnet=f.cond_unet), "controlnet"),
        case(p.hub_reachable, "host=None (offline here: never used)", lambda: p.hub_reachable(None), "host"),
        case(p.hub_reachable, "timeout=-1 (offline here: never used)", lambda: p.hub_reachable(timeout=-1), "timeout"),
        case(p.choose_model, "model='' (empty)", lambda: p.choose_model(""), "model"),
        case(p.choose_model, "model=None", lambda: p.choose_model(None), "model"),
        case(p.choose_model, "model='Course' (capitalised)", lambda: p.choose_model("Course"), "model"),
        case(p.model_source, "model=None", lambda: p.model_source(None), "model"),
        case(p.model_source, "model='' (empty)", lambda: p.model_source(""), "model"),
        case(p.load_pipeline, "model='corse' (misspelled)", lambda: p.load_pipeline("corse"), "model", "corse"),
        case(p.load_pipeline, "device='gpu'", lambda: p.load_pipeline(device="gpu"), "device"),
        case(p.generate_by_hand, "prompts as a single string", lambda: generate(prompts="a seven"), "prompts"),
        case(p.generate_by_hand, "1 negative prompt for 2 prompts", lambda: generate(negative_prompts=["blurry"]),
             "negative_prompts"),
        case(p.generate_by_hand, "negative_prompts as a single string", lambda: generate(negative_prompts="blurry"),
             "negative_prompts"),
        case(p.generate_by_hand, "num_inference_steps=0", lambda: generate(num_inference_steps=0),
             "num_inference_steps"),
        case(p.pipeline_resolution, "pipe=None", lambda: p.pipeline_resolution(None), "pipe"),
        case(p.pipeline_resolution, "the UNet, not the pipeline", lambda: p.pipeline_resolution(f.cond_unet), "pipe"),
        case(p.digits_for_pipeline, "digits already padded to 32x32",
             lambda: p.digits_for_pipeline(latents.pad_to_32(f.digits), f.pipe), "digits"),
        case(p.digits_for_pipeline, "digits [N, 28, 28], no channel dim",
             lambda: p.digits_for_pipeline(f.digits[:, 0], f.pipe), "digits"),
        case(p.digits_for_pipeline, "uint8 digits", lambda: p.digits_for_pipeline(f.digits_uint8, f.pipe), "digits"),
        case(p.vae_round_trip, "images in [-1, 1] (model range, not the pipeline's [0, 1])",
             lambda: p.vae_round_trip(f.pipe, latents.pad_to_32(f.digits)), "images"),
        case(p.vae_round_trip, "30x30 images (not a multiple of the VAE's 4)",
             lambda: p.vae_round_trip(f.pipe, torch.nn.functional.pad((f.digits + 1) / 2, (1, 1, 1, 1))), "images"),
        case(p.vae_round_trip, "pipe=None", lambda: p.vae_round_trip(None, (latents.pad_to_32(f.digits) + 1) / 2), "pipe"),
        case(p.pipeline_images_to_digits, "28x28 digits, not 32x32 pipeline images",
             lambda: p.pipeline_images_to_digits(f.digits), "images"),
        case(p.pipeline_images_to_digits, "images=None", lambda: p.pipeline_images_to_digits(None), "images"),
        case(p.pipeline_images_to_digits, "uint8 images",
             lambda: p.pipeline_images_to_digits(latents.pad_to_32(f.digits_uint8.float()).byte()), "images"),
    ]
    if not torch.cuda.is_available():  # on a machine with a GPU "cuda" is a good value
        cases.append(case(p.load_pipeline, "device='cuda' without a GPU", lambda: p.load_pipeline(device="cuda"),
                          "device", "cuda"))
    return cases


def reflow_cases(f: Fixtures) -> list[Case]:
    rf = reflow
    points = lambda: torch.randn(3, 2, generator=torch.Generator().manual_seed(5))  # noqa: E731  the 2-D toy
    levels = lambda: torch.tensor([0.0, 0.5, 1.0])  # noqa: E731
    loss = lambda **kw: rf.reflow_loss(**{"model": f.tiny, "noise": f.noise, "images": f.digits, **kw})  # noqa: E731
    pairs = lambda **kw: rf.reflow_pairs(**{"model": f.tiny, "noise": f.noise, "num_steps": 2, **kw})  # noqa: E731
    path = lambda: [f.noise, (f.noise + f.digits) / 2, f.digits]  # noqa: E731  2 steps: levels 1, 0.5, 0
    ideal = lambda: rf.IdealVelocity(points())  # noqa: E731
    toy = lambda: rf.ToyVelocity()  # noqa: E731

    def weights_only() -> Path:  # a .safetensors file with no manifest beside it
        from safetensors.torch import save_file
        save_file({"w": torch.zeros(1)}, str(f.tmp / "lonely.safetensors"))
        return f.tmp / "lonely.safetensors"

    cases = [
        case(rf.u_shaped_density, "sigma=0.5 (a Python float)", lambda: rf.u_shaped_density(0.5), "sigma"),
        case(rf.u_shaped_density, "sigma=None", lambda: rf.u_shaped_density(None), "sigma"),
        case(rf.u_shaped_density, "sigma=1.5", lambda: rf.u_shaped_density(torch.tensor([1.5])), "sigma"),
        case(rf.u_shaped_density, "sigma holding NaN", lambda: rf.u_shaped_density(torch.tensor([0.5, NAN])), "sigma"),
        case(rf.u_shaped_density, "integer sigma tensor([0, 1])", lambda: rf.u_shaped_density(torch.tensor([0, 1])),
             "sigma"),
        case(rf.u_shaped_density, "u_shape=0", lambda: rf.u_shaped_density(levels(), 0), "u_shape"),
        case(rf.u_shaped_density, "u_shape=True", lambda: rf.u_shaped_density(levels(), True), "u_shape"),
        case(rf.u_shaped_density, "u_shape=NaN", lambda: rf.u_shaped_density(levels(), NAN), "u_shape"),
        case(rf.u_shaped_density, "u_shape='4' (a string)", lambda: rf.u_shaped_density(levels(), "4"), "u_shape"),
        case(rf.reflow_sigmas, "size=2.5", lambda: rf.reflow_sigmas(2.5), "size"),
        case(rf.reflow_sigmas, "size=True", lambda: rf.reflow_sigmas(True), "size"),
        case(rf.reflow_sigmas, "size=-1", lambda: rf.reflow_sigmas(-1), "size"),
        case(rf.reflow_sigmas, "generator=0 (a seed)", lambda: rf.reflow_sigmas(4, 0), "generator"),
        case(rf.reflow_sigmas, "generator=0 (a seed), one-step",
             lambda: rf.reflow_sigmas(4, 0, time_sampling="one-step"), "generator"),
        case(rf.reflow_sigmas, "device='gpu'", lambda: rf.reflow_sigmas(4, device="gpu"), "device"),
        case(rf.reflow_sigmas, "device='gpu', one-step",
             lambda: rf.reflow_sigmas(4, device="gpu", time_sampling="one-step"), "device"),
        case(rf.reflow_sigmas, "time_sampling='U-shaped' (capitalised)",
             lambda: rf.reflow_sigmas(4, time_sampling="U-shaped"), "time_sampling"),
        case(rf.reflow_sigmas, "time_sampling='logit-normal' (flow_loss's)",
             lambda: rf.reflow_sigmas(4, time_sampling="logit-normal"), "time_sampling"),
        case(rf.reflow_sigmas, "time_sampling=None", lambda: rf.reflow_sigmas(4, time_sampling=None), "time_sampling"),
        case(rf.reflow_sigmas, "u_shape=-1", lambda: rf.reflow_sigmas(4, time_sampling="u-shaped", u_shape=-1),
             "u_shape"),
        case(rf.reflow_sigmas, "u_shape=NaN", lambda: rf.reflow_sigmas(4, time_sampling="u-shaped", u_shape=NAN),
             "u_shape"),
        case(rf.reflow_sigmas, "u_shape=True", lambda: rf.reflow_sigmas(4, time_sampling="u-shaped", u_shape=True),
             "u_shape"),
        case(rf.reflow_loss, "model=None", lambda: loss(model=None), "model"),
        case(rf.reflow_loss, "loss='huber' (pseudo-huber's short name)", lambda: loss(loss="huber"), "loss"),
        case(rf.pseudo_huber, "residual as a list", lambda: rf.pseudo_huber([0.5, 1.0]), "residual"),
        case(rf.pseudo_huber, "residual of one dimension", lambda: rf.pseudo_huber(torch.ones(4)), "residual"),
        case(rf.reflow_loss, "a state dict for the model", lambda: loss(model=f.tiny.state_dict()), "model"),
        case(rf.reflow_loss, "noise=None", lambda: loss(noise=None), "noise"),
        case(rf.reflow_loss, "images=None", lambda: loss(images=None), "images"),
        case(rf.reflow_loss, "uint8 images in 0..255", lambda: loss(images=f.digits_uint8), "images"),
        case(rf.reflow_loss, "images a numpy array", lambda: loss(images=f.digits.numpy()), "images"),
        case(rf.reflow_loss, "images [N, 28, 28], no channel dim",
             lambda: loss(noise=f.noise[:, 0], images=f.digits[:, 0]), "images"),
        case(rf.reflow_loss, "images 27 x 27",
             lambda: loss(noise=f.noise[..., :27, :27], images=f.digits[..., :27, :27]), "images"),
        case(rf.reflow_loss, "images [0, 1, 28, 28] (empty)", lambda: loss(noise=f.noise[:0], images=f.digits[:0]),
             "images"),
        case(rf.reflow_loss, "noise for 1 image, images for 2", lambda: loss(noise=f.noise[:1]), "noise"),
        case(rf.reflow_loss, "float64 noise, float32 images", lambda: loss(noise=f.noise.double()), "noise"),
        case(rf.reflow_loss, "float64 pairs for a float32 model",
             lambda: loss(noise=f.noise.double(), images=f.digits.double()), "model"),
        case(rf.reflow_loss, "generator=0 (a seed)", lambda: loss(generator=0), "generator"),
        case(rf.reflow_loss, "time_sampling='ushaped'", lambda: loss(time_sampling="ushaped"), "time_sampling"),
        case(rf.reflow_loss, "u_shape=0", lambda: loss(time_sampling="u-shaped", u_shape=0), "u_shape"),
        case(rf.reflow_pairs, "model=None", lambda: pairs(model=None), "model"),
        case(rf.reflow_pairs, "a state dict for the model", lambda: pairs(model=f.tiny.state_dict()), "model"),
        case(rf.reflow_pairs, "noise=None", lambda: pairs(noise=None), "noise"),
        case(rf.reflow_pairs, "integer noise", lambda: pairs(noise=f.noise.long()), "noise"),
        case(rf.reflow_pairs, "noise a numpy array", lambda: pairs(noise=f.noise.numpy()), "noise"),
        case(rf.reflow_pairs, "noise [N, 28, 28], no channel dim", lambda: pairs(noise=f.noise[:, 0]), "noise"),
        case(rf.reflow_pairs, "noise 27 x 27", lambda: pairs(noise=f.noise[..., :27, :27]), "noise"),
        case(rf.reflow_pairs, "noise [0, 1, 28, 28] (empty)", lambda: pairs(noise=f.noise[:0]), "noise"),
        case(rf.reflow_pairs, "num_steps=0", lambda: pairs(num_steps=0), "num_steps"),
        case(rf.reflow_pairs, "num_steps=2.5", lambda: pairs(num_steps=2.5), "num_steps"),
        case(rf.reflow_pairs, "num_steps=True", lambda: pairs(num_steps=True), "num_steps"),
        case(rf.reflow_pairs, "num_steps='20' (a string)", lambda: pairs(num_steps="20"), "num_steps"),
        case(rf.reflow_pairs, "sampler='rk4'", lambda: pairs(sampler="rk4"), "sampler"),
        case(rf.reflow_pairs, "sampler='Euler' (capitalised)", lambda: pairs(sampler="Euler"), "sampler"),
        case(rf.reflow_pairs, "shift=0", lambda: pairs(shift=0), "shift"),
        case(rf.reflow_pairs, "shift=NaN", lambda: pairs(shift=NAN), "shift"),
        case(rf.reflow_pairs, "shift=True", lambda: pairs(shift=True), "shift"),
        case(rf.reflow_pairs, "return_trajectory='yes'", lambda: pairs(return_trajectory="yes"), "return_trajectory"),
        case(rf.reflow_pairs, "progress=1", lambda: pairs(progress=1), "progress"),
        case(rf.held_out_generator, "seed=-1", lambda: rf.held_out_generator(-1), "seed"),
        case(rf.held_out_generator, "seed=2**32 (past the largest)", lambda: rf.held_out_generator(2**32), "seed"),
        case(rf.held_out_generator, "seed=1.5", lambda: rf.held_out_generator(1.5), "seed"),
        case(rf.x0_drift, "a path that ends where it starts",
             lambda: rf.x0_drift([f.noise] * 3, [1.0, 0.5, 0.0]), "trajectory"),
    ]
    trajectories = [  # (bad input, the call's arguments, what it names); x0_drift takes the first four too
        ("trajectory=None", lambda: (None, [1.0, 0.5, 0.0]), "trajectory"),
        ("a trajectory of (t, x) pairs", lambda: (f.frames, [1.0, 0.0]), "trajectory"),
        ("sigmas increasing [0, 0.5, 1]", lambda: (path(), [0.0, 0.5, 1.0]), "sigmas"),
        ("sigmas=None", lambda: (path(), None), "sigmas"),
        ("trajectory=[] (empty)", lambda: ([], []), "trajectory"),
        ("one point", lambda: ([f.noise], [1.0]), "trajectory"),
        ("the trajectory stacked [3, N, ...]", lambda: (torch.stack(path()), [1.0, 0.5, 0.0]), "trajectory"),
        ("points of different shapes", lambda: ([f.noise, f.digits[:1]], [1.0, 0.0]), "trajectory"),
        ("2 sigmas for 3 points", lambda: (path(), [1.0, 0.0]), "sigmas"),
        ("sigmas holding NaN", lambda: (path(), [1.0, NAN, 0.0]), "sigmas"),
        ("sigmas='1, 0.5, 0' (a string)", lambda: (path(), "1, 0.5, 0"), "sigmas"),
    ]
    for function, rows in ((rf.x0_hat_path, trajectories), (rf.x0_drift, trajectories[:4])):
        cases += [case(function, bad, lambda function=function, arguments=arguments: function(*arguments()), name)
                  for bad, arguments, name in rows]
    cases += [
        case(rf.load_flow_file, "path=None", lambda: rf.load_flow_file(None), "path"),
        case(rf.load_flow_file, "path=3 (a number)", lambda: rf.load_flow_file(3), "path"),
        case(rf.load_flow_file, "a file that does not exist",
             lambda: rf.load_flow_file(f.tmp / "missing.safetensors"), "missing.json", "missing.safetensors"),
        case(rf.load_flow_file, "the manifest flow_mnist.json, not the weights",
             lambda: rf.load_flow_file(data.DATA_DIR / "flow_mnist.json"), "path"),
        case(rf.load_flow_file, "the name 'flow_mnist', not a path", lambda: rf.load_flow_file("flow_mnist"), "path"),
        case(rf.load_flow_file, "a folder", lambda: rf.load_flow_file(f.empty_dir), "path"),
        case(rf.load_flow_file, "the DDPM ddpm_mnist.safetensors",
             lambda: rf.load_flow_file(data.DATA_DIR / "ddpm_mnist.safetensors"), "path"),
        case(rf.load_flow_file, "weights without a manifest beside them", lambda: rf.load_flow_file(weights_only()),
             "lonely.json"),
        case(rf.load_flow_file, "a manifest that is not JSON", lambda: rf.load_flow_file(f.broken_manifest),
             "broken.json"),
        case(rf.IdealVelocity, "data=None", lambda: rf.IdealVelocity(None), "data"),
        case(rf.IdealVelocity, "data [N], 1-D", lambda: rf.IdealVelocity(points()[:, 0]), "data"),
        case(rf.IdealVelocity, "integer data", lambda: rf.IdealVelocity(points().long()), "data"),
        case(rf.IdealVelocity, "data [0, 2] (empty)", lambda: rf.IdealVelocity(points()[:0]), "data"),
        case(rf.IdealVelocity, "data a numpy array", lambda: rf.IdealVelocity(points().numpy()), "data"),
        case(rf.IdealVelocity.forward, "x of another dimension [N, 3]",
             lambda: ideal()(torch.randn(2, 3), torch.tensor([500, 500])), "x"),
        case(rf.IdealVelocity.forward, "timesteps 0 (sigma = 0, singular)",
             lambda: ideal()(points()[:2], torch.tensor([0, 500])), "timesteps"),
        case(rf.IdealVelocity.forward, "timesteps=500 (a Python int)", lambda: ideal()(points()[:2], 500), "timesteps"),
        case(rf.IdealVelocity.forward, "3 timesteps for 2 points",
             lambda: ideal()(points()[:2], torch.tensor([500, 500, 500])), "timesteps"),
        case(rf.IdealVelocity.forward, "timesteps 1500 (sigma 1.5)",
             lambda: ideal()(points()[:2], torch.tensor([1500, 500])), "timesteps"),
        case(rf.ToyVelocity, "dims=0", lambda: rf.ToyVelocity(0), "dims"),
        case(rf.ToyVelocity, "dims=2.5", lambda: rf.ToyVelocity(2.5), "dims"),
        case(rf.ToyVelocity, "width=0", lambda: rf.ToyVelocity(width=0), "width"),
        case(rf.ToyVelocity, "width=True", lambda: rf.ToyVelocity(width=True), "width"),
        case(rf.ToyVelocity, "embedding=7 (odd)", lambda: rf.ToyVelocity(embedding=7), "embedding"),
        case(rf.ToyVelocity, "embedding=0", lambda: rf.ToyVelocity(embedding=0), "embedding"),
        case(rf.ToyVelocity.forward, "x [N, 3] for dims=2", lambda: toy()(torch.randn(2, 3), torch.tensor([500, 500])),
             "x"),
        case(rf.ToyVelocity.forward, "x [N], 1-D", lambda: toy()(points()[:, 0], torch.tensor([500, 500, 500])), "x"),
        case(rf.ToyVelocity.forward, "integer x", lambda: toy()(points().long(), torch.tensor([500, 500, 500])), "x"),
        case(rf.ToyVelocity.forward, "timesteps=500 (a Python int)", lambda: toy()(points(), 500), "timesteps"),
        case(rf.ToyVelocity.forward, "2 timesteps for 3 points", lambda: toy()(points(), torch.tensor([500, 500])),
             "timesteps"),
        case(rf.ToyVelocity.forward, "timesteps [N, 1], 2-D", lambda: toy()(points(), torch.full((3, 1), 500)),
             "timesteps"),
    ]
    return cases


def runtime_cases(f: Fixtures) -> list[Case]:
    r = runtime
    cases = [
        case(r.pick_device, "'gpu'", lambda: r.pick_device("gpu"), "preferred"),
        case(r.pick_device, "'CPU'", lambda: r.pick_device("CPU"), "preferred"),
        case(r.pick_device, "None", lambda: r.pick_device(None), "preferred"),
        case(r.random_normal, "shape=(-1, 3)", lambda: r.random_normal((-1, 3)), "shape"),
        case(r.random_normal, "shape=(2.5,)", lambda: r.random_normal((2.5,)), "shape"),
        case(r.random_normal, "dtype=torch.int64", lambda: r.random_normal((2,), dtype=torch.int64), "dtype"),
        case(r.random_normal, "generator=42 (a seed)", lambda: r.random_normal((2,), 42), "generator"),
        case(r.random_integers, "high=0", lambda: r.random_integers(0, 2), "high"),
        case(r.random_integers, "size=-1", lambda: r.random_integers(10, -1), "size"),
        case(r.random_integers, "high=2.5", lambda: r.random_integers(2.5, 2), "high"),
        case(r.random_uniform, "shape=(-1, 3)", lambda: r.random_uniform((-1, 3)), "shape"),
        case(r.synchronize, "device='gpu'", lambda: r.synchronize("gpu"), "device"),
        case(r.synchronize, "device=0 (an index)", lambda: r.synchronize(0), "device"),
        case(r.synchronize, "device='meta'", lambda: r.synchronize("meta"), "device"),
        case(r.random_uniform, "generator=42 (a seed)", lambda: r.random_uniform((2,), 42), "generator"),
        case(r.seed_everything, "seed=-1", lambda: r.seed_everything(-1), "seed"),
        case(r.seed_everything, "seed='0' (a string)", lambda: r.seed_everything("0"), "seed"),
        case(r.seed_everything, "seed=True", lambda: r.seed_everything(True), "seed"),
        case(r.seed_everything, "seed=1.0", lambda: r.seed_everything(1.0), "seed"),
        case(r.setup, "threads=0", lambda: r.setup(threads=0), "threads"),
        case(r.setup, "threads=True", lambda: r.setup(threads=True), "threads"),
        case(r.setup, "device='gpu'", lambda: r.setup(threads=1, device="gpu"), "device"),
        case(r.setup, "seed=-1", lambda: r.setup(seed=-1, threads=1), "seed"),
    ]
    if not torch.cuda.is_available():
        cases.append(case(r.pick_device, "'cuda' without a GPU", lambda: r.pick_device("cuda"), "preferred"))
    return cases


def samplers_cases(f: Fixtures) -> list[Case]:
    s = samplers
    step = lambda **kw: s.ddim_step(**{"model_output": f.noise, "t": 500, "prev_t": 400, "x_t": f.digits,  # noqa: E731
                                       "alpha_bar": f.alpha_bar, **kw})
    sample = lambda **kw: s.sample_ddim(**{"model": f.tiny, "num_images": 2, "alpha_bar": f.alpha_bar,  # noqa: E731
                                           "num_inference_steps": 2, "progress": False, **kw})
    with_scheduler = lambda scheduler=None, **kw: s.sample_with_scheduler(**{  # noqa: E731
        "model": f.tiny, "scheduler": scheduler or f.scheduler(), "num_images": 2, "num_inference_steps": 2,
        "progress": False, **kw})

    def in_batches(count, generator):
        return s.sample_with_scheduler(f.tiny, f.scheduler(), count, 2, generator, progress=False)
    return [
        case(s.check_num_inference_steps, "0", lambda: s.check_num_inference_steps(0), "num_inference_steps"),
        case(s.check_num_inference_steps, "True", lambda: s.check_num_inference_steps(True), "num_inference_steps"),
        case(s.check_num_inference_steps, "num_train_timesteps='1000'",
             lambda: s.check_num_inference_steps(10, "1000"), "num_train_timesteps"),
        case(s.sampling_timesteps, "spacing='trailling'", lambda: s.sampling_timesteps(1000, 10, "trailling"), "spacing"),
        case(s.sampling_timesteps, "num_inference_steps=0", lambda: s.sampling_timesteps(1000, 0),
             "num_inference_steps"),
        case(s.sampling_timesteps, "num_train_timesteps=1", lambda: s.sampling_timesteps(1, 1), "num_train_timesteps"),
        case(s.ddim_step, "eta=1.5", lambda: step(eta=1.5, noise=f.noise), "eta"),
        case(s.ddim_step, "eta=-0.1", lambda: step(eta=-0.1), "eta"),
        case(s.ddim_step, "eta=0.5 without noise", lambda: step(eta=0.5), "noise"),
        case(s.ddim_step, "prev_t == t with eta > 0", lambda: step(prev_t=500, eta=0.5, noise=f.noise), "prev_t"),
        case(s.ddim_step, "clip='no' (a string)", lambda: step(clip="no"), "clip"),
        case(s.sample_ddim, "timestep_spacing='linspace'", lambda: sample(timestep_spacing="linspace"),
             "timestep_spacing", "spacing"),
        case(s.sample_ddim, "eta=2", lambda: sample(eta=2), "eta"),
        case(s.sample_ddim, "num_inference_steps=0", lambda: sample(num_inference_steps=0), "num_inference_steps"),
        case(s.sample_ddim, "image_shape=(28, 28), no channel", lambda: sample(image_shape=(28, 28)), "image_shape"),
        case(s.make_scheduler, "name='dpm'", lambda: s.make_scheduler("dpm"), "name"),
        case(s.make_scheduler, "num_train_timesteps=0", lambda: s.make_scheduler("ddim", 0), "num_train_timesteps"),
        case(s.make_scheduler, "prediction_type='v'", lambda: s.make_scheduler("ddim", prediction_type="v"),
             "prediction_type"),
        case(s.make_scheduler, "override beta_schedule='cosine' (course name, not diffusers')",
             lambda: s.make_scheduler("ddim", beta_schedule="cosine"), "beta_schedule"),
        case(s.make_scheduler, "clip='yes' (a string)", lambda: s.make_scheduler("ddim", clip="yes"), "clip"),
        case(s.sample_with_scheduler, "num_inference_steps=0", lambda: with_scheduler(num_inference_steps=0),
             "num_inference_steps"),
        case(s.sample_with_scheduler, "num_inference_steps=1 on Karras levels",
             lambda: with_scheduler(f.scheduler("euler_karras"), num_inference_steps=1), "num_inference_steps"),
        case(s.sample_with_scheduler, "scheduler='ddim' (a name)", lambda: with_scheduler("ddim"), "scheduler"),
        case(s.sample_with_scheduler, "num_inference_steps=2000 > T", lambda: with_scheduler(num_inference_steps=2000),
             "num_inference_steps"),
        case(s.sample_with_scheduler, "image_shape=(28, 28), no channel", lambda: with_scheduler(image_shape=(28, 28)),
             "image_shape"),
        case(s.sample_in_batches, "batch_size=0", lambda: s.sample_in_batches(in_batches, 2, 0, 0),
             "batch_size"),
        case(s.sample_in_batches, "draw=None", lambda: s.sample_in_batches(None, 2, 1, 0), "draw"),
        case(s.noise_levels, "timesteps=None", lambda: s.noise_levels(None, f.alpha_bar), "timesteps"),
        case(s.noise_levels, "timestep 1000, past the table", lambda: s.noise_levels([1000], f.alpha_bar), "timesteps"),
        case(s.noise_levels, "timesteps as strings", lambda: s.noise_levels(["10"], f.alpha_bar), "timesteps"),
        case(s.noise_levels, "alpha_bar=None", lambda: s.noise_levels([10], None), "alpha_bar"),
    ]


def schedules_cases(f: Fixtures) -> list[Case]:
    s = schedules
    return [
        case(s.check_num_timesteps, "0", lambda: s.check_num_timesteps(0), "num_timesteps"),
        case(s.check_num_timesteps, "True", lambda: s.check_num_timesteps(True), "num_timesteps"),
        case(s.check_num_timesteps, "'1000' (a string)", lambda: s.check_num_timesteps("1000"), "num_timesteps"),
        case(s.linear_betas, "beta_start > beta_end", lambda: s.linear_betas(1000, 0.02, 1e-4), "beta_start", "beta_end"),
        case(s.linear_betas, "beta_end=1.5", lambda: s.linear_betas(1000, 1e-4, 1.5), "beta_end"),
        case(s.linear_betas, "beta_start=NaN", lambda: s.linear_betas(1000, NAN), "beta_start"),
        case(s.linear_betas, "beta_end='0.02' (a string)", lambda: s.linear_betas(1000, 1e-4, "0.02"), "beta_end"),
        case(s.scaled_linear_betas, "num_timesteps=0", lambda: s.scaled_linear_betas(0), "num_timesteps"),
        case(s.scaled_linear_betas, "beta_start='0.001' (a string)",
             lambda: s.scaled_linear_betas(1000, "0.001"), "beta_start"),
        case(s.scaled_linear_betas, "beta_end=inf", lambda: s.scaled_linear_betas(1000, 0.00085, INF), "beta_end"),
        case(s.cosine_betas, "offset=0", lambda: s.cosine_betas(1000, 0.0), "offset"),
        case(s.cosine_betas, "max_beta=1.5", lambda: s.cosine_betas(1000, 0.008, 1.5), "max_beta"),
        case(s.cosine_betas, "offset=True", lambda: s.cosine_betas(1000, True), "offset"),
        case(s.sigmoid_betas, "num_timesteps=1.5", lambda: s.sigmoid_betas(1.5), "num_timesteps"),
        case(s.sigmoid_betas, "beta_start=-1e-4", lambda: s.sigmoid_betas(1000, -1e-4), "beta_start"),
        case(s.sigmoid_betas, "beta_end=None", lambda: s.sigmoid_betas(1000, 1e-4, None), "beta_end"),
        case(s.make_betas, "schedule='cosin'", lambda: s.make_betas("cosin"), "schedule"),
        case(s.make_betas, "the diffusers name 'squaredcos_cap_v2'", lambda: s.make_betas("squaredcos_cap_v2"),
             "schedule"),
        case(s.make_betas, "num_timesteps=0", lambda: s.make_betas("linear", 0), "num_timesteps"),
        case(s.make_betas, "schedule=['linear'] (a list)", lambda: s.make_betas(["linear"]), "schedule"),
        case(s.alphas_cumprod, "betas as a Python list", lambda: s.alphas_cumprod([0.1, 0.2]), "betas"),
        case(s.alphas_cumprod, "betas > 1", lambda: s.alphas_cumprod(torch.tensor([0.5, 1.5])), "betas"),
        case(s.alphas_cumprod, "betas with NaN", lambda: s.alphas_cumprod(torch.tensor([0.1, NAN])), "betas"),
        case(s.snr, "alpha_bar containing 1.0", lambda: s.snr(torch.tensor([1.0, 0.5])), "alpha_bar"),
        case(s.snr, "alpha_bar as a Python list", lambda: s.snr([0.9, 0.5]), "alpha_bar"),
        case(s.snr, "alpha_bar > 1", lambda: s.snr(torch.tensor([1.5])), "alpha_bar"),
        case(s.check_timesteps, "timesteps as a Python list", lambda: s.check_timesteps([5, 10], 1000), "timesteps"),
        case(s.check_timesteps, "timesteps=[-1]", lambda: s.check_timesteps(torch.tensor([-1]), 1000), "timesteps"),
        case(s.check_timesteps, "float timesteps [0.5]", lambda: s.check_timesteps(torch.tensor([0.5]), 1000),
             "timesteps"),
        case(s.check_timesteps, "num_timesteps=0", lambda: s.check_timesteps(torch.tensor([0]), 0), "num_timesteps"),
        case(s.q_sample, "uint8 x0", lambda: s.q_sample(f.digits_uint8, torch.tensor([5, 9]), f.noise, f.alpha_bar),
             "x0"),
        case(s.q_sample, "float timesteps", lambda: s.q_sample(f.digits, torch.tensor([5.0, 9.0]), f.noise, f.alpha_bar),
             "timesteps"),
        case(s.q_sample, "noise of another shape",
             lambda: s.q_sample(f.digits, torch.tensor([5, 9]), f.noise[:, :, :14], f.alpha_bar), "noise"),
        case(s.q_sample, "3 timesteps for 2 images",
             lambda: s.q_sample(f.digits, torch.tensor([5, 9, 7]), f.noise, f.alpha_bar), "timesteps"),
        case(s.q_sample, "alpha_bar as a Python list",
             lambda: s.q_sample(f.digits, torch.tensor([5, 9]), f.noise, f.alpha_bar.tolist()), "alpha_bar"),
        case(s.q_sample, "noise=None", lambda: s.q_sample(f.digits, torch.tensor([5, 9]), None, f.alpha_bar), "noise"),
        case(s.check_alpha_bar, "alpha_bar=None", lambda: s.check_alpha_bar(None), "alpha_bar"),
        case(s.check_alpha_bar, "one entry", lambda: s.check_alpha_bar(torch.ones(1)), "alpha_bar"),
        case(s.check_alpha_bar, "values above 1", lambda: s.check_alpha_bar(torch.tensor([1.5, 0.5]), values=True),
             "alpha_bar"),
    ]


def text_cases(f: Fixtures) -> list[Case]:
    t = text
    return [
        case(t.pre_tokenize, "text=None", lambda: t.pre_tokenize(None), "text"),
        case(t.pre_tokenize, "a list of strings", lambda: t.pre_tokenize(["a one", "a two"]), "text"),
        case(t.pre_tokenize, "bytes b'a seven'", lambda: t.pre_tokenize(b"a seven"), "text"),
        case(t.learn_bpe, "texts as a single string", lambda: t.learn_bpe("a seven"), "texts"),
        case(t.learn_bpe, "texts=[None]", lambda: t.learn_bpe([None]), "texts"),
        case(t.learn_bpe, "texts=[] (empty)", lambda: t.learn_bpe([]), "texts"),
        case(t.make_tokenizer, "texts as a single string", lambda: t.make_tokenizer("a seven"), "texts"),
        case(t.make_tokenizer, "texts=[] (empty)", lambda: t.make_tokenizer([]), "texts"),
        case(t.make_tokenizer, "texts=[3, 7] (ints)", lambda: t.make_tokenizer([3, 7]), "texts"),
        case(t.text_encoder_config, "tokenizer=None", lambda: t.text_encoder_config(None), "tokenizer"),
        case(t.text_encoder_config, "a list of captions, not a tokenizer",
             lambda: t.text_encoder_config(["a one", "a two"]), "tokenizer"),
        case(t.make_text_encoder, "tokenizer=None", lambda: t.make_text_encoder(None), "tokenizer"),
        case(t.make_text_encoder, "tokenizer='clip' (a string)", lambda: t.make_text_encoder("clip"), "tokenizer"),
        case(t.check_prompts, "prompts as a single string", lambda: t.check_prompts(f.tokenizer, "a seven"), "prompts"),
        case(t.check_prompts, "prompts=[] (empty)", lambda: t.check_prompts(f.tokenizer, []), "prompts"),
        case(t.check_prompts, "a prompt with '七'", lambda: t.check_prompts(f.tokenizer, ["七"]), "prompts"),
        case(t.check_prompts, "a prompt with an emoji", lambda: t.check_prompts(f.tokenizer, ["a seven 🙂"]), "prompts"),
        case(t.check_prompts, "prompts=[None]", lambda: t.check_prompts(f.tokenizer, [None]), "prompts"),
        case(t.tokenize, "prompts as a single string", lambda: t.tokenize(f.tokenizer, "a seven"), "prompts"),
        case(t.tokenize, "prompts=[7] (an int)", lambda: t.tokenize(f.tokenizer, [7]), "prompts"),
        case(t.tokenize, "tokenizer=None", lambda: t.tokenize(None, ["a seven"]), "tokenizer"),
    ]


def unet_cases(f: Fixtures) -> list[Case]:
    u = unet
    steps = lambda: torch.tensor([500, 10])  # noqa: E731
    return [
        case(u.timestep_embedding, "timesteps=5 (a Python int)", lambda: u.timestep_embedding(5, 8), "timesteps"),
        case(u.timestep_embedding, "dim=0", lambda: u.timestep_embedding(steps(), 0), "dim"),
        case(u.timestep_embedding, "dim=7 (odd)", lambda: u.timestep_embedding(steps(), 7), "dim"),
        case(u.timestep_embedding, "timesteps [N, 1], 2-D", lambda: u.timestep_embedding(steps()[:, None], 8),
             "timesteps"),
        case(u.timestep_embedding, "max_period=0", lambda: u.timestep_embedding(steps(), 8, 0), "max_period"),
        case(u.timestep_embedding, "dim=-4", lambda: u.timestep_embedding(steps(), -4), "dim"),
        case(u.load_tiny_unet, "name 'ddpm' (no such checkpoint)", lambda: u.load_tiny_unet("ddpm"), "ddpm.json"),
        case(u.load_tiny_unet, "the classifier 'mnist_classifier'", lambda: u.load_tiny_unet("mnist_classifier"),
             "name", "mnist_classifier"),
        case(u.load_tiny_unet, "name=None", lambda: u.load_tiny_unet(None), "name"),
        case(u.predict_in_chunks, "model=None", lambda: u.predict_in_chunks(None, f.digits, steps()), "model"),
        case(u.predict_in_chunks, "one timestep too few",
             lambda: u.predict_in_chunks(f.tiny, f.digits, torch.tensor([500])), "timesteps"),
        case(u.predict_in_chunks, "max_batch=0", lambda: u.predict_in_chunks(f.tiny, f.digits, steps(), 0), "max_batch"),
        case(u.predict_in_chunks, "max_batch=True", lambda: u.predict_in_chunks(f.tiny, f.digits, steps(), True),
             "max_batch"),
        case(u.count_parameters, "model=None", lambda: u.count_parameters(None), "model"),
        case(u.count_parameters, "a state_dict, not a model", lambda: u.count_parameters(f.tiny.state_dict()), "model"),
        case(u.count_parameters, "a list of tensors", lambda: u.count_parameters(list(f.tiny.parameters())), "model"),
    ]


def validation_cases(f: Fixtures) -> list[Case]:
    v = validation
    return [
        case(v.check_integer, "low > high", lambda: v.check_integer("steps", 5, 10, 1), "low", "high"),
        case(v.check_integer, "low='0' (a string)", lambda: v.check_integer("steps", 5, "0", 10), "low"),
        case(v.check_integer, "name=None", lambda: v.check_integer(None, 5, 0, 10), "name"),
        case(v.check_number, "low > high", lambda: v.check_number("scale", 0.5, 1, 0), "low", "high"),
        case(v.check_number, "low=NaN", lambda: v.check_number("scale", 0.5, NAN, 1), "low"),
        case(v.check_number, "high='1' (a string)", lambda: v.check_number("scale", 0.5, 0, "1"), "high"),
        case(v.check_choice, "choices='linear' (a string)", lambda: v.check_choice("schedule", "l", "linear"),
             "choices"),
        case(v.check_choice, "choices=None", lambda: v.check_choice("schedule", "linear", None), "choices"),
        case(v.check_device, "name=None", lambda: v.check_device(None, "cpu"), "name"),
        case(v.check_device, "value='gpu'", lambda: v.check_device("device", "gpu"), "device"),
        case(v.check_choice, "choices=[] (empty)", lambda: v.check_choice("schedule", "linear", []), "choices"),
        case(v.integer, "low > high", lambda: v.integer(10, 1), "low", "high"),
        case(v.integer, "low='1' (a string)", lambda: v.integer("1", 10), "low"),
        case(v.number, "low > high", lambda: v.number(1, 0), "low", "high"),
        case(v.number, "low=NaN", lambda: v.number(NAN, 1), "low"),
        case(v.choice, "no choices", lambda: v.choice(), "choices"),
        case(v.choice, "one list instead of the choices", lambda: v.choice(["ddpm", "ddim"]), "choices"),
        case(v.integer_list, "low > high", lambda: v.integer_list(10, 1), "low", "high"),
        case(v.integer_list, "low='0' (a string)", lambda: v.integer_list("0", 5), "low"),
        case(v.number_list, "low > high", lambda: v.number_list(1, 0), "low", "high"),
        case(v.number_list, "low=NaN", lambda: v.number_list(NAN, 1), "low"),
        case(v.choice_list, "no choices", lambda: v.choice_list(), "choices"),
        case(v.choice_list, "one list instead of the choices", lambda: v.choice_list(["ddpm", "ddim"]), "choices"),
        case(v.string, "max_length=-1", lambda: v.string(-1), "max_length"),
        case(v.string, "max_length='10' (a string)", lambda: v.string("10"), "max_length"),
        case(v.check_parameters, "namespace=None", lambda: v.check_parameters(None, STEPS=v.integer(1, 10)),
             "namespace"),
        case(v.check_parameters, "a check that is not callable (STEPS=5)",
             lambda: v.check_parameters({"STEPS": 5}, STEPS=5), "STEPS"),
        case(v.check_parameters, "the factory itself, not called (STEPS=integer)",
             lambda: v.check_parameters({"STEPS": 5}, STEPS=v.integer), "STEPS"),
        case(v.check_tensor, "a list for the tensor", lambda: v.check_tensor("images", [1.0]), "images"),
        case(v.check_tensor, "name=None", lambda: v.check_tensor(None, torch.zeros(2)), "name"),
        case(v.check_images, "images [N, H, W]", lambda: v.check_images("images", torch.zeros(2, 28, 28)), "images"),
        case(v.check_images, "name=None", lambda: v.check_images(None, f.digits), "name"),
        case(v.check_image_range, "images in 0..255", lambda: v.check_image_range("images", f.digits_255), "images"),
        case(v.check_same_shape, "another shape",
             lambda: v.check_same_shape("noise", torch.zeros(2, 3), "x0", torch.zeros(2, 4)), "noise"),
        case(v.check_same_shape, "other=None", lambda: v.check_same_shape("noise", torch.zeros(2, 3), "x0", None), "x0"),
        case(v.check_path, "value=3 (a number)", lambda: v.check_path("path", 3), "path"),
        case(v.check_path, "name=None", lambda: v.check_path(None, "a.json"), "name"),
        case(v.check_generator, "a seed for the generator", lambda: v.check_generator("generator", 0), "generator"),
        case(v.check_generator, "name=None", lambda: v.check_generator(None, None), "name"),
        case(v.check_bool, "value='no' (a string)", lambda: v.check_bool("progress", "no"), "progress"),
        case(v.check_bool, "name=None", lambda: v.check_bool(None, True), "name"),
        case(v.check_sizes, "value=None", lambda: v.check_sizes("image_shape", None, length=3), "image_shape"),
    ]


def viz_cases(f: Fixtures) -> list[Case]:
    vz = viz
    return [
        case(vz.image_grid, "nrow=0", lambda: vz.image_grid(f.digits, 0), "nrow"),
        case(vz.image_grid, "nrow=-1", lambda: vz.image_grid(f.digits, -1), "nrow"),
        case(vz.image_grid, "images [N, 28, 28], no channel dim", lambda: vz.image_grid(f.digits[:, 0]), "images"),
        case(vz.image_grid, "pad=-1", lambda: vz.image_grid(f.digits, pad=-1), "pad"),
        case(vz.show_images, "scale=0", lambda: vz.show_images(f.digits, scale=0), "scale"),
        case(vz.show_images, "scale=-1", lambda: vz.show_images(f.digits, scale=-1), "scale"),
        case(vz.show_images, "ax='left' (a string)", lambda: vz.show_images(f.digits, ax="left"), "ax"),
        case(vz.show_images, "nrow=0", lambda: vz.show_images(f.digits, nrow=0), "nrow"),
        case(vz.show_trajectory, "frames=[] (empty)", lambda: vz.show_trajectory([]), "frames"),
        case(vz.show_trajectory, "frames as tensors, not (t, x) pairs",
             lambda: vz.show_trajectory([f.noise, f.digits]), "frames"),
        case(vz.show_trajectory, "cell_inches=-1", lambda: vz.show_trajectory(f.frames, cell_inches=-1), "cell_inches"),
        case(vz.show_trajectory, "num_images=0", lambda: vz.show_trajectory(f.frames, num_images=0), "num_images"),
        case(vz.animate_trajectory, "frames=[] (empty)", lambda: vz.animate_trajectory([]), "frames"),
        case(vz.animate_trajectory, "dpi=0", lambda: vz.animate_trajectory(f.frames, dpi=0), "dpi"),
        case(vz.animate_trajectory, "interval_ms=-5", lambda: vz.animate_trajectory(f.frames, interval_ms=-5),
             "interval_ms"),
        case(vz.animate_trajectory, "frames as tensors, not (t, x) pairs",
             lambda: vz.animate_trajectory([f.noise, f.digits]), "frames"),
    ]


def first_day_cases(f: Fixtures) -> list[Case]:
    """What a learner passes on the first day, which the signature does not rule out: images as floats in 0..255
    or in [0, 1] where [-1, 1] is expected, models in float64 or float16, on the meta device, None or a state
    dict for a model, numpy arrays for tensors, a network that cannot read the asked shape, shipped files edited."""
    alpha, tiny, steps = f.alpha_bar, f.tiny, torch.tensor([500, 10])
    ddpm_sample = lambda model, **kw: ddpm.sample_ddpm(model, 2, alpha, 2, progress=False, **kw)  # noqa: E731
    images_cases = [  # (function, call with the bad images, name, description)
        (ddpm.ddpm_loss, lambda x: ddpm.ddpm_loss(tiny, x, alpha), "x0"),
        (flow.flow_loss, lambda x: flow.flow_loss(tiny, x), "x0"),
        (reflow.reflow_loss, lambda x: reflow.reflow_loss(tiny, f.noise, x), "images"),
        (schedules.q_sample, lambda x: schedules.q_sample(x, steps, f.noise, alpha), "x0"),
        (captions.measure_attributes, lambda x: captions.measure_attributes(x), "images"),
        (captions.caption_dataset, lambda x: captions.caption_dataset(x, f.labels), "images"),
        (control.digit_controls, lambda x: control.digit_controls(x), "digits"),
        (control.skeleton_iou, lambda x: control.skeleton_iou(x, control.skeletonize(f.digits)), "images"),
        (metrics.classify, lambda x: metrics.classify(f.classifier, x), "images"),
        (metrics.evaluate_samples, lambda x: metrics.evaluate_samples(f.classifier, x, x), "samples"),
        (latents.pad_to_32, lambda x: latents.pad_to_32(x), "images"),
        (latents.encode, lambda x: latents.encode(f.vae, x), "images28"),
        (viz.image_grid, lambda x: viz.image_grid(x), "images"),
        (viz.show_images, lambda x: viz.show_images(x), "images"),
        (data.to_pixel_range, lambda x: data.to_pixel_range(x), "images"),
    ]
    cases = []
    for function, call, name in images_cases:
        cases.append(case(function, "float images in 0..255", lambda call=call: call(f.digits_255), name,
                          kind="range"))
    # the diffusion inputs (centred: images in [-1, 1] or scaled latents) and the digit measures (which
    # threshold ink on [-1, 1]) also refuse images in [0, 1]
    for function, call, name in images_cases[:10]:
        cases.append(case(function, "images in [0, 1], not [-1, 1]", lambda call=call: call(f.digits_01), name,
                          kind="range"))
    cases += [
        case(pipeline.vae_round_trip, "digits in [-1, 1], not the pipeline's [0, 1]",
             lambda: pipeline.vae_round_trip(f.pipe, latents.pad_to_32(f.digits)), "images", kind="range"),
        case(pipeline.pipeline_images_to_digits, "pipeline images in 0..255",
             lambda: pipeline.pipeline_images_to_digits(latents.pad_to_32(f.digits_255)), "images", kind="range"),
        case(guidance.sample_with_guidance, "control skeletons in [-1, 1]",
             lambda: guidance.sample_with_guidance(f.cond_unet, guidance.latent_scheduler(), f.embeds, f.empty_embeds,
                                                   guidance_scale=4.0, num_inference_steps=1, controlnet=f.controlnet,
                                                   control=control.digit_controls(f.digits) * 2 - 1, progress=False),
             "control", kind="range"),
    ]
    model = lambda: unet.TinyUNet((8, 16)).eval()  # noqa: E731
    forward = unet.TinyUNet.forward
    cases += [
        case(unet.TinyUNet, "channels=(8, 12): not multiples of 8", lambda: unet.TinyUNet((8, 12)), "channels",
             kind="model"),
        case(unet.TinyUNet, "channels=None", lambda: unet.TinyUNet(None), "channels", kind="model"),
        case(unet.TinyUNet, "channels=32 (an int, not a tuple)", lambda: unet.TinyUNet(32), "channels", kind="model"),
        case(unet.TinyUNet, "image_channels=0", lambda: unet.TinyUNet((8, 16), 0), "image_channels", kind="model"),
        case(forward, "x [1, 28, 28], unbatched", lambda: tiny(f.digits[0], 5), "x", kind="model"),
        case(forward, "uint8 x", lambda: tiny(f.digits_uint8, 5), "x", kind="model"),
        case(forward, "float64 x", lambda: tiny(f.digits.double(), 5), "x", kind="model"),
        case(forward, "x 27 x 27", lambda: tiny(f.digits[..., :27, :27], 5), "x", kind="model"),
        case(forward, "x with 3 channels", lambda: tiny(f.digits.repeat(1, 3, 1, 1), 5), "x", kind="model"),
        case(forward, "x a numpy array", lambda: tiny(f.digits.numpy(), 5), "x", kind="model"),
        case(forward, "timesteps=None", lambda: tiny(f.digits, None), "timesteps", kind="model"),
        case(forward, "timesteps=-1", lambda: tiny(f.digits, -1), "timesteps", kind="model"),
        case(forward, "3 timesteps for 2 images", lambda: tiny(f.digits, torch.tensor([1, 2, 3])), "timesteps",
             kind="model"),
        case(forward, "timesteps='500'", lambda: tiny(f.digits, "500"), "timesteps", kind="model"),
        case(ddpm.sample_ddpm, "model=None", lambda: ddpm_sample(None), "model", kind="model"),
        case(ddpm.sample_ddpm, "a state dict for the model", lambda: ddpm_sample(tiny.state_dict()), "model",
             kind="model"),
        case(ddpm.sample_ddpm, "a float64 model", lambda: ddpm_sample(model().double()), "model", kind="model"),
        case(ddpm.sample_ddpm, "a float16 model", lambda: ddpm_sample(model().half()), "model", kind="model"),
        case(ddpm.sample_ddpm, "a model on the meta device", lambda: ddpm_sample(model().to("meta")), "model",
             kind="model"),
        case(ddpm.sample_ddpm, "image_shape (3, 28, 28) for a 1-channel model",
             lambda: ddpm_sample(tiny, image_shape=(3, 28, 28)), "image_shape", kind="model"),
        case(samplers.sample_ddim, "a float64 model",
             lambda: samplers.sample_ddim(model().double(), 2, alpha, 2, progress=False), "model", kind="model"),
        case(samplers.sample_ddim, "image_shape (1, 27, 27)",
             lambda: samplers.sample_ddim(tiny, 2, alpha, 2, image_shape=(1, 27, 27), progress=False),
             "image_shape", kind="model"),
        case(samplers.sample_with_scheduler, "model=None",
             lambda: samplers.sample_with_scheduler(None, f.scheduler(), 2, 2, progress=False), "model", kind="model"),
        case(flow.sample_flow, "a float16 model", lambda: flow.sample_flow(model().half(), 2, 2, progress=False),
             "model", kind="model"),
        case(reflow.reflow_pairs, "a float16 model", lambda: reflow.reflow_pairs(model().half(), f.noise, 2), "model",
             kind="model"),
        case(reflow.reflow_pairs, "a model on the meta device",
             lambda: reflow.reflow_pairs(model().to("meta"), f.noise, 2), "model", kind="model"),
        case(flow.velocity_at, "float64 x", lambda: flow.velocity_at(tiny, f.digits.double(), 0.5), "model",
             kind="model"),
        case(ddpm.ddpm_loss, "x0 a numpy array", lambda: ddpm.ddpm_loss(tiny, f.digits.numpy(), alpha), "x0",
             kind="model"),
        case(ddpm.ddpm_loss, "a float64 x0 for a float32 model", lambda: ddpm.ddpm_loss(tiny, f.digits.double(), alpha),
             "model", kind="model"),
        case(unet.check_model, "a module without parameters", lambda: unet.check_model(torch.nn.Identity()), "model",
             kind="model"),
    ]

    def damaged(name: str, damage: Callable[[Path], Any]) -> Path:
        folder = f.pipeline_copy(name)
        damage(folder)
        return folder

    verify = part_folders.verify_pipeline_folder
    cases += [
        case(verify, "checksums.json not JSON",
             lambda: verify(damaged("not_json", lambda p: (p / "checksums.json").write_text("{ oops")), ("vae",)),
             "checksums.json", kind="file"),
        case(verify, "checksums.json a list",
             lambda: verify(damaged("a_list", lambda p: (p / "checksums.json").write_text("[]")), ("vae",)),
             "checksums.json", kind="file"),
        case(verify, "a tokenizer file checksums.json does not list",
             lambda: verify(damaged("unlisted", lambda p: (p / "tokenizer" / "added_tokens.json").write_text("{}")),
                            ("tokenizer",)), "added_tokens.json", kind="file"),
    ]
    return cases


CASE_TABLES = {name: globals()[f"{name}_cases"] for name in MODULES}


# --------------------------------------------------------------------------------------------------
# running and classifying
# --------------------------------------------------------------------------------------------------

def _quietly(call: Callable[[], Any]) -> Any:
    """Run ``call`` with its printed output discarded (quizzes print their text)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return call()


def _on_alarm(signum, frame):
    raise ProbeTimeout(f"still running after {CASE_TIMEOUT_S} s")


def short_repr(value: Any, limit: int = 100) -> str:
    """A few words about a returned value: tensors and arrays by shape, dtype and whether they hold NaN or inf."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        text = f"{type(value).__name__}{tuple(value.shape)} {value.dtype}"
        if value.size == 0 if isinstance(value, np.ndarray) else value.numel() == 0:
            return text + " (empty)"
        flags = [word for word, bad in (("NaN", _has(value, "isnan")), ("inf", _has(value, "isinf"))) if bad]
        return text + (f" with {' and '.join(flags)}" if flags else "")
    if isinstance(value, (tuple, list)) and value and len(value) <= 4:
        text = ", ".join(short_repr(item, 40) for item in value)
        return (f"({text})" if isinstance(value, tuple) else f"[{text}]")[:limit]
    if isinstance(value, dict):
        return f"dict with keys {list(value)[:6]}"[:limit]
    if isinstance(value, torch.nn.Module) or hasattr(value, "config") or hasattr(value, "components"):
        return f"a {type(value).__name__}"
    if callable(value):
        return f"a {type(value).__name__} {getattr(value, '__qualname__', '')}".strip()
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _has(array, test: str) -> bool:
    """Whether a tensor or array holds any NaN (``test="isnan"``) or infinity (``"isinf"``); False for non-floats."""
    if isinstance(array, torch.Tensor):
        return array.is_floating_point() and bool(getattr(torch, test)(array.detach()).any())
    return np.issubdtype(array.dtype, np.floating) and bool(getattr(np, test)(array).any())


def _last_frame(error: BaseException):
    """The innermost traceback entry of ``error`` (where it was raised), or None."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


class CRaises:
    """A profile hook that remembers the last function written in C that raised, with its frame and line.

    A Python traceback has no frame for C code: ``torch.randint(0, 2.5, ...)`` called from ``course_utils``
    ends the traceback in ``course_utils``. This hook tells such a library error (torch, numpy, ...) from one
    that ``course_utils`` raised itself or got from a Python builtin such as ``len`` or ``int``."""

    def __init__(self):
        self.last = None

    def __call__(self, frame, event, arg):
        if event == "c_exception":
            self.last = (frame, frame.f_lineno, arg)


def _owner(function) -> str:
    """The module a C function belongs to: ``torch``, ``numpy``, ``builtins`` ..."""
    module = getattr(function, "__module__", None)
    if module is None:
        module = type(getattr(function, "__self__", None)).__module__
    return module or "builtins"


def _in_course_utils(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(COURSE_DIR)
    except (OSError, ValueError):
        return False


def _names(message: str, names: tuple[str, ...]) -> bool:
    """Whether ``message`` names one of ``names`` as a word of its own: ``_``, quotes and punctuation separate words,
    so ``guidance_rescale`` names ``rescale`` and ``'missing.bin'`` names ``missing.bin``, but ``can't`` is no ``t``."""
    return any(re.search(rf"(?<![A-Za-z0-9])(?<![A-Za-z]'){re.escape(name)}(?![A-Za-z0-9])(?!'[A-Za-z])", message)
               for name in names)


def raised_in(error: BaseException, c_raises: CRaises) -> tuple[str, bool]:
    """Where ``error`` was raised, ``("path:line" or "torch.randint at path:line", by course_utils?)``."""
    tb = _last_frame(error)
    if tb is None:
        return "?", False
    where = f"{_short_path(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"
    by_course = _in_course_utils(tb.tb_frame.f_code.co_filename)
    if c_raises.last is not None and c_raises.last[0] is tb.tb_frame and c_raises.last[1] == tb.tb_lineno:
        function = c_raises.last[2]
        owner = _owner(function)
        if owner.split(".")[0] not in PYTHON_ITSELF:
            return f"{owner}.{getattr(function, '__name__', '?')} called at {where}", False
    return where, by_course


def classify(error: BaseException, names: tuple[str, ...], by_course: bool) -> str:
    """'clear', 'unclear' or 'raw' for an exception (see the module docstring)."""
    course_defined = type(error).__module__.startswith("course_utils")
    if not by_course or isinstance(error, KeyError) or not (isinstance(error, ACCEPTED_TYPES) or course_defined):
        return "raw"
    return "clear" if _names(str(error), names) else "unclear"


def type_name(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def run_case(item: Case) -> dict:
    """Run one case with a time limit; return its record (outcome, exception or returned value)."""
    record = {"module": item.module, "function": item.function, "bad_input": item.bad, "names": list(item.names),
              "kind": item.kind}
    torch.manual_seed(0)
    c_raises = CRaises()
    start = time.perf_counter()
    signal.alarm(CASE_TIMEOUT_S)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sys.setprofile(c_raises)
            try:
                result = item.call()
            finally:
                sys.setprofile(None)
    except ProbeSetupError:
        raise
    except ProbeTimeout as timeout:
        record.update(outcome="silent", result=f"(accepted: {timeout}; stopped by the probe)")
    except Exception as error:  # noqa: BLE001  the point is to see every kind
        where, by_course = raised_in(error, c_raises)
        tb = _last_frame(error)
        if tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve() == Path(__file__).resolve():
            raise ProbeSetupError(f"{item.module}.{item.function} [{item.bad}] failed inside the probe: "
                                  f"{type_name(error)}: {error}") from error
        record.update(outcome=classify(error, item.names, by_course), exception=type_name(error),
                      message=" ".join(str(error).split())[:400], raised_at=where)
    else:
        record.update(outcome="silent", result=short_repr(result))
        if caught:
            record["warnings"] = [" ".join(str(w.message).split())[:160] for w in caught[:3]]
    finally:
        signal.alarm(0)
        torch.set_num_threads(1)  # runtime.setup may have changed it
        plt.close("all")
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


def _short_path(filename: str) -> str:
    path = Path(filename)
    for marker in ("site-packages", "dist-packages"):
        if marker in path.parts:
            return "/".join(path.parts[path.parts.index(marker) + 1:])
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return filename


# --------------------------------------------------------------------------------------------------
# coverage and report
# --------------------------------------------------------------------------------------------------

def public_functions(module_name: str) -> dict[str, Callable]:
    """The public module-level functions defined in ``course_utils.<module_name>``."""
    module = importlib.import_module(f"course_utils.{module_name}")
    return {name: obj for name, obj in vars(module).items()
            if inspect.isfunction(obj) and not name.startswith("_") and obj.__module__ == module.__name__}


def coverage(cases: list[Case], modules: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(functions with arguments but no case, functions without arguments: nothing to get wrong)."""
    probed = {(c.module, c.function) for c in cases}
    missing, no_arguments = [], []
    for module_name in modules:
        for name, function in public_functions(module_name).items():
            if (module_name, name) in probed:
                continue
            (missing if inspect.signature(function).parameters else no_arguments).append(f"{module_name}.{name}")
    return missing, no_arguments


CLASSES = ("clear", "unclear", "raw", "silent")


def print_report(records: list[dict], missing: list[str], no_arguments: list[str], seconds: float) -> None:
    counts = Counter(r["outcome"] for r in records)
    total = len(records)
    print(f"\n{total} bad-input cases, {len({(r['module'], r['function']) for r in records})} functions, "
          f"{seconds:.0f} s\n")
    header = f"{'module':<12}" + "".join(f"{name:>9}" for name in CLASSES) + f"{'total':>8}{'clear %':>9}"
    print(header)
    print("-" * len(header))
    modules = list(dict.fromkeys(r["module"] for r in records))
    for module_name in modules + ["ALL"]:
        rows = records if module_name == "ALL" else [r for r in records if r["module"] == module_name]
        per = Counter(r["outcome"] for r in rows)
        if module_name == "ALL":
            print("-" * len(header))
        print(f"{module_name:<12}" + "".join(f"{per[name]:>9}" for name in CLASSES)
              + f"{len(rows):>8}{100 * per['clear'] / len(rows):>8.0f}%")
    print(f"\nshare clear: {counts['clear']}/{total} = {100 * counts['clear'] / total:.1f}%")
    print("\nby kind of mistake:")
    for kind, label in KINDS.items():
        rows = [r for r in records if r["kind"] == kind]
        if rows:
            per = Counter(r["outcome"] for r in rows)
            print(f"  {label:<40}" + "".join(f"{per[name]:>6} {name}" for name in CLASSES) + f"{len(rows):>6} in all")
    if missing:
        print(f"\nfunctions with arguments but no case: {', '.join(missing)}")
    if no_arguments:
        print(f"functions without arguments (nothing to get wrong): {', '.join(no_arguments)}")
    print("\nEvery case that is not clear: module.function | bad input | class | what happened\n")
    for module_name in modules:
        for r in records:
            if r["module"] == module_name and r["outcome"] != "clear":
                print(f"{r['module']}.{r['function']} | {r['bad_input']} | {r['outcome']} | {describe(r)}")


def describe(record: dict) -> str:
    if record["outcome"] == "silent":
        text = f"returned {record['result']}"
        return text + (f" (warning: {record['warnings'][0][:80]})" if record.get("warnings") else "")
    return f"{record['exception']}: {record['message'][:100]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=MODULES, help="probe only this module (repeatable)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="where to write the JSON results")
    args = parser.parse_args()
    modules = tuple(args.module or MODULES)

    torch.set_num_threads(1)
    for name in ("diffusers", "transformers"):
        library = importlib.import_module(name)
        library.logging.set_verbosity_error()
        library.logging.disable_progress_bar()
    signal.signal(signal.SIGALRM, _on_alarm)
    tmp = Path(tempfile.mkdtemp(prefix="probe_bad_inputs_"))
    start = time.perf_counter()
    try:
        fixtures = Fixtures(tmp)
        cases = [item for module_name in modules for item in CASE_TABLES[module_name](fixtures)]
        cases += [item for item in first_day_cases(fixtures) if item.module in modules]
        records = [run_case(item) for item in cases]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - start
    missing, no_arguments = coverage(cases, modules)
    print_report(records, missing, no_arguments, seconds)
    counts = Counter(r["outcome"] for r in records)
    summary = {"total": len(records), **{name: counts[name] for name in CLASSES},
               "share_clear": round(counts["clear"] / len(records), 4), "seconds": round(seconds, 1),
               "functions_without_cases": missing, "functions_without_arguments": no_arguments}
    args.output.write_text(json.dumps({"summary": summary, "cases": records}, indent=1, default=str) + "\n")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
