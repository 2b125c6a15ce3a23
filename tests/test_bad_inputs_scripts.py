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


MEASURING_SCRIPTS = ["evaluate_ddpm", "evaluate_text2image", "evaluate_controlnet", "compare_flow_ddpm",
                     "compare_guidance_remedies", "compare_latent_pixel", "benchmark_samplers", "benchmark_ddpm"]


@pytest.mark.parametrize("script", MEASURING_SCRIPTS)
@pytest.mark.parametrize("option, value, expected", [
    ("--batch-size", "0", "got 0"), ("--threads", "0", "integer in [1, 256], got 0"), ("--seed", "-1", "got -1"),
    ("--threads", "two", "got 'two'")])
def test_measuring_scripts_refuse_bad_options_by_name_before_any_work(script, option, value, expected, capsys):
    module = __import__(script)
    if script == "benchmark_ddpm" and option in ("--batch-size", "--seed"):  # it has no --seed
        option, value, expected = "--sample-batch", "0", "got 0"
    with pytest.raises(SystemExit) as raised:
        module.main([option, value])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}: " in error and expected in error


def test_evaluate_ddpm_refuses_a_missing_or_wrong_state_before_any_work(tmp_path, capsys):
    import evaluate_ddpm

    with pytest.raises(SystemExit) as raised:
        evaluate_ddpm.main(["--from-state", str(tmp_path / "state.pt")])
    assert raised.value.code == 2 and "--from-state must be a training state file" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="is not a training state"):
        evaluate_ddpm.model_from_state(ROOT / "data" / "ddpm_mnist.json", "epsilon")
    lone = tmp_path / "lone.safetensors"  # weights without their manifest
    lone.write_bytes((ROOT / "data" / "ddpm_mnist.safetensors").read_bytes())
    with pytest.raises(SystemExit) as raised:
        evaluate_ddpm.main(["--checkpoint", str(lone)])
    assert raised.value.code == 2 and "no manifest lone.json beside it" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["compare_flow_ddpm", "benchmark_samplers", "evaluate_controlnet"])
def test_results_into_a_missing_folder_are_refused_before_any_work(script, tmp_path, capsys):
    module = __import__(script)
    with pytest.raises(SystemExit) as raised:
        module.main(["--json", str(tmp_path / "no_such_folder" / "result.json")])
    assert raised.value.code == 2 and "--json" in capsys.readouterr().err


def test_the_rebuild_hint_of_a_missing_checkpoint_runs_past_the_shipped_file_guard(tmp_path):
    """A missing shipped checkpoint's error gives its training command with --overwrite-shipped: the command
    as recorded would now be refused, since it writes the shipped file."""
    import shutil

    from course_utils.checkpoints import OVERWRITE_FLAG, CheckpointError, load_weights, with_overwrite_flag
    from course_utils.data import DATA_DIR

    shutil.copy(DATA_DIR / "ddpm_mnist.json", tmp_path / "ddpm_mnist.json")
    with pytest.raises(CheckpointError, match=f"train_ddpm.py .*{OVERWRITE_FLAG}"):
        load_weights("ddpm_mnist", tmp_path)
    assert with_overwrite_flag(f"python scripts/train_vae.py {OVERWRITE_FLAG}").count(OVERWRITE_FLAG) == 1
    assert with_overwrite_flag("python scripts/build_pipeline.py") == "python scripts/build_pipeline.py"
