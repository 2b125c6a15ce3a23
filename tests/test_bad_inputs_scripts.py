"""Script options a learner gets wrong (issue 32): every option is checked before any work, and no training script
silently replaces a model the course ships in data/ (its default outputs): it stops with an argparse error that names
the option and says how to write elsewhere or to replace the file on purpose (--overwrite-shipped)."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import train_classifier  # noqa: E402
import train_controlnet  # noqa: E402
import train_ddpm  # noqa: E402
import train_text2image  # noqa: E402
import train_vae  # noqa: E402

DEFAULT_OUTPUTS = {  # script's parse step -> the option whose default is a shipped file or folder
    "train_ddpm": (train_ddpm.parse_args, "--out"),
    "train_classifier": (train_classifier.main, "--out"),
    "train_vae": (train_vae.parse_args, "--pipeline-dir"),
    "train_text2image": (train_text2image.parse_args, "--pipeline-dir"),
    "train_controlnet": (train_controlnet.parse_args, "--folder"),
}


@pytest.mark.parametrize("script", DEFAULT_OUTPUTS)
def test_default_outputs_never_silently_replace_a_shipped_model(script, capsys):
    parse, option = DEFAULT_OUTPUTS[script]
    with pytest.raises(SystemExit) as raised:
        parse(["--epochs", "1"] if script == "train_classifier" else ["--steps", "1"])
    assert raised.value.code == 2  # argparse's usage error, before any data is loaded
    error = capsys.readouterr().err
    assert f"error: {option} " in error and "ships in data/" in error and "--overwrite-shipped" in error


@pytest.mark.parametrize("script", ["train_ddpm", "train_vae", "train_text2image", "train_controlnet"])
def test_overwrite_shipped_allows_it_on_purpose(script):
    parse = DEFAULT_OUTPUTS[script][0]
    assert parse(["--steps", "1", "--overwrite-shipped"]).steps == 1


def test_an_output_elsewhere_needs_no_flag(tmp_path):
    assert train_ddpm.parse_args(["--out", str(tmp_path / "model.safetensors")]).out == tmp_path / "model.safetensors"
    assert train_vae.parse_args(["--pipeline-dir", str(tmp_path / "pipe"), "--manifest",
                                 str(tmp_path / "vae.json")]).manifest == tmp_path / "vae.json"


@pytest.mark.parametrize("option, value, expected", [
    ("--epochs", "0", "integer in [1, 1000], got 0"), ("--batch-size", "0", "integer in [1, 60000], got 0"),
    ("--threads", "0", "integer in [1, 256], got 0"), ("--lr", "-1", "must lie in (0, 1), got -1"),
    ("--seed", "-1", "got -1"), ("--batch-size", "many", "got 'many'")])
def test_train_classifier_refuses_bad_options_by_name_before_any_work(option, value, expected, capsys, tmp_path):
    with pytest.raises(SystemExit) as raised:
        train_classifier.main([option, value, "--out", str(tmp_path / "classifier.safetensors")])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}: " in error and expected in error
