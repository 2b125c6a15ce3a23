"""Every measured table in README.md and docs/ is its script's rendering of the stored JSON, never hand edited."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import reports  # noqa: E402

# script, the JSON and markdown it writes, the README marker key, the markdown file's heading
TABLES = [
    ("benchmark_samplers", "sampler_table", "sampler-table", ""),
    ("compare_latent_pixel", "latent_vs_pixel", "latent-comparison", "Pixel against latent diffusion"),
    ("evaluate_text2image", "guidance_sweep", "guidance-sweep",
     "Classifier-free guidance sweep on the course text-to-image model"),
    ("compare_prediction_targets", "prediction_targets", "prediction-targets",
     "Prediction targets compared on the same UNet and samplers"),
    ("benchmark_training", "training_speed", "training-speed", "Training step time on a CPU"),
    ("compare_flow_ddpm", "flow_vs_ddpm", "flow-comparison", "Flow matching against the DDPM"),
    ("evaluate_controlnet", "controlnet", "controlnet", "ControlNet: following a sketch"),
    ("compare_guidance_remedies", "guidance_remedies", "guidance-remedies", "Remedies for over-guidance"),
    ("compare_few_step", "few_step", "few-step", "Few-step generation: reflow against the flow model and the DDPM"),
]


@pytest.mark.parametrize("script, name, key, heading", TABLES, ids=[t[0] for t in TABLES])
def test_stored_table_is_the_scripts_rendering_of_its_json(script, name, key, heading):
    table = importlib.import_module(script).markdown_table(json.loads((ROOT / "docs" / f"{name}.json").read_text()))
    rerun = f"rerun python scripts/{script}.py"
    assert (ROOT / "docs" / f"{name}.md").read_text(encoding="utf-8") == (f"# {heading}\n\n" if heading else "") + table, \
        f"docs/{name}.md is stale: {rerun}"
    readme = reports.README.read_text(encoding="utf-8")
    assert reports.markers(key)[0] in readme, f"README.md has no {key} block"
    assert reports.with_table(readme, table, key) == readme, f"the {key} table in README.md is stale: {rerun}"


def test_readme_shows_the_shipped_pixel_models_manifest():
    evaluate_ddpm = importlib.import_module("evaluate_ddpm")
    table = evaluate_ddpm.markdown_table(json.loads((ROOT / "data" / "ddpm_mnist.json").read_text()))
    readme = reports.README.read_text(encoding="utf-8")
    assert reports.with_table(readme, table, "pixel-model") == readme, \
        "the pixel-model block in README.md is stale: rerun python scripts/evaluate_ddpm.py --write-manifest"


def test_reproduce_command_quotes_arguments():
    assert reports.reproduce_command("train_vae.py", ["--steps", "3", "--run-dir", "my runs/a"]) == \
        "python scripts/train_vae.py --steps 3 --run-dir 'my runs/a'"
    assert reports.reproduce_command("evaluate_ddpm.py", []) == "python scripts/evaluate_ddpm.py"  # not sys.argv


def test_a_table_extended_by_several_commands_credits_each_and_older_runs_the_settings_command():
    table = {"settings": {"command": "python scripts/x.py --b"},
             "runs": {"first": {"command": "python scripts/x.py --a"}, "older": {},
                      "again": {"command": "python scripts/x.py --a"}}}
    assert reports.commands_text(table) == "`python scripts/x.py --a` and `python scripts/x.py --b`"
    table["runs"]["third"] = {"command": "python scripts/x.py --c"}
    assert reports.commands_text(table) == \
        "`python scripts/x.py --a`, `python scripts/x.py --b` and `python scripts/x.py --c`"
    assert reports.commands_text({"settings": {"command": "python scripts/x.py"}, "runs": {}}) == "`python scripts/x.py`"


def test_the_flow_models_manifest_records_its_runs_of_the_comparison(tmp_path, monkeypatch):
    """compare_flow_ddpm --write-manifest: the flow rows of the table, and only they, become the flow
    manifest's quality; the rest of the manifest is kept."""
    compare_flow_ddpm = importlib.import_module("compare_flow_ddpm")
    shipped = json.loads((ROOT / "data" / "flow_mnist.json").read_text())
    (tmp_path / "flow_mnist.json").write_text(json.dumps(shipped))
    monkeypatch.setattr(compare_flow_ddpm, "DATA_DIR", tmp_path)
    run = {"nfe": 20, "mnist_fid": 12.5, "confident_share": 0.9, "ms_per_image": 1.0}
    table = {"settings": {"num_samples": 1000, "seed": 0, "command": "python scripts/compare_flow_ddpm.py"},
             "data_floor_fid": 5.93,
             "runs": {"flow ancestral/20": {**run, "method": "flow ancestral"},
                      "ddpm ddim/20": {**run, "method": "ddpm ddim"}}}
    compare_flow_ddpm.write_flow_quality(table)
    written = json.loads((tmp_path / "flow_mnist.json").read_text())
    assert list(written["quality"]["runs"]) == ["flow ancestral/20"]
    assert written["quality"]["runs"]["flow ancestral/20"]["mnist_fid"] == 12.5
    assert written["quality"]["data_floor_fid"] == 5.93
    assert {key: value for key, value in written.items() if key != "quality"} == \
        {key: value for key, value in shipped.items() if key != "quality"}
