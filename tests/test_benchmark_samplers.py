"""scripts/benchmark_samplers.py's sampler variants: each changes exactly the one setting it names, the script
accepts them by name and refuses an unknown one before any work, and a variant's run lands in the table."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import benchmark_samplers  # noqa: E402
import reports  # noqa: E402
from course_utils.samplers import SAMPLERS, make_scheduler  # noqa: E402


@pytest.mark.parametrize("variant", benchmark_samplers.VARIANTS)
def test_a_variant_changes_only_its_own_settings(variant):
    sampler, settings = benchmark_samplers.VARIANTS[variant]
    assert sampler in SAMPLERS and variant.startswith(f"{sampler}/")
    base = dict(make_scheduler(sampler, prediction_type="v_prediction").config)
    changed = dict(benchmark_samplers.scheduler_for(variant, "v_prediction").config)
    differing = {key for key in base if base[key] != changed[key] and not key.startswith("_")}
    # clip=False switches the x0-hat clipping, whichever setting holds it for that scheduler
    expected = {"thresholding"} if settings == {"clip": False} else set(settings)
    assert differing == expected


def test_unknown_sampler_names_are_refused_before_any_work(capsys):
    with pytest.raises(SystemExit) as raised:
        benchmark_samplers.parse_args(["--samplers", "ddim/trailing"])
    assert raised.value.code == 2 and "ddim/leading" in capsys.readouterr().err
    assert benchmark_samplers.parse_args(["--samplers", "ddim", "ddim/leading", "--ddpm-steps", "0"]).ddpm_steps == 0


def test_a_variant_is_measured_into_the_table(tmp_path):
    json_path, markdown_path = tmp_path / "table.json", tmp_path / "table.md"
    readme = reports.README.read_text(encoding="utf-8")
    benchmark_samplers.main(["--num-samples", "8", "--samplers", "ddim/leading", "--steps", "2", "--ddpm-steps", "0",
                             "--threads", "1", "--json", str(json_path), "--markdown", str(markdown_path)])
    runs = json.loads(json_path.read_text())["runs"]
    assert list(runs) == ["ddim/leading/2"] and runs["ddim/leading/2"]["nfe"] == 2
    assert "| ddim/leading | 2 | 2 |" in markdown_path.read_text()
    assert reports.README.read_text(encoding="utf-8") == readme  # the tiny table stays out of the README


def test_a_table_extended_by_a_second_command_names_both(tmp_path):
    """Runs are kept across invocations; the table says which command measured which runs."""
    json_path, markdown_path = tmp_path / "table.json", tmp_path / "table.md"
    readme = reports.README.read_text(encoding="utf-8")
    common = ["--num-samples", "8", "--steps", "2", "--ddpm-steps", "0", "--threads", "1",
              "--json", str(json_path), "--markdown", str(markdown_path)]
    benchmark_samplers.main(["--samplers", "ddim", *common])
    benchmark_samplers.main(["--samplers", "unipc", *common])
    runs = json.loads(json_path.read_text())["runs"]
    assert "--samplers ddim" in runs["ddim/2"]["command"] and "--samplers unipc" in runs["unipc/2"]["command"]
    header = markdown_path.read_text().splitlines()[2]
    assert header.index("--samplers ddim") < header.index(" and ") < header.index("--samplers unipc")
    assert reports.README.read_text(encoding="utf-8") == readme  # a table outside docs/ stays out of the README
