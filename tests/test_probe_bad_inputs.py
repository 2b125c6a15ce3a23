"""The bad-input contract of the whole library, measured: scripts/probe_bad_inputs.py calls every public function of
course_utils with about 700 wrong inputs (wrong types, booleans as numbers, out-of-range numbers, wrong shapes and
dtypes, misspelled names, missing and damaged files) and sorts what happens. Every case must end in a clear error
that names the parameter or file: none may be accepted silently or crash inside torch, numpy or diffusers.
Its first-day cases add images in the wrong value range, models and tensors of the wrong kind, and damaged
pipeline files (issue 32). (The tests/test_bad_inputs_*.py files pin the same contract function by function.)"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_bad_input_of_the_probe_gets_a_clear_error(tmp_path):
    output = tmp_path / "probe.json"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "probe_bad_inputs.py"), "--output", str(output)],
                   check=True, capture_output=True, text=True, timeout=600, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    results = json.loads(output.read_text())
    summary = results["summary"]
    assert summary["total"] >= 450, "the probe should cover every public function several times"
    kinds = {case["kind"] for case in results["cases"]}
    assert {"signature", "range", "model", "file"} <= kinds, "first-day mistakes of every kind (issue 32)"
    failing = [f"{case['function']} | {case['bad_input']} | {case['outcome']}"
               for case in results["cases"] if case["outcome"] != "clear"]
    assert not failing, "\n".join(failing)


def test_every_public_function_with_arguments_has_a_case(tmp_path):
    """Only the tables are built (their calls are lambdas, their fixtures lazy): a function added to course_utils
    without a bad-input case fails here in seconds, not after the whole probe."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import probe_bad_inputs as probe

    fixtures = probe.Fixtures(tmp_path)
    cases = [item for name in probe.MODULES for item in probe.CASE_TABLES[name](fixtures)]
    missing, _ = probe.coverage(cases + probe.first_day_cases(fixtures), probe.MODULES)
    assert not missing, f"public functions with arguments but no case in scripts/probe_bad_inputs.py: {missing}"


def test_the_probe_covers_every_module_of_course_utils():
    sys.path.insert(0, str(ROOT / "scripts"))
    import probe_bad_inputs as probe

    modules = {path.stem for path in (ROOT / "course_utils").glob("*.py") if not path.stem.startswith("_")}
    assert modules == set(probe.MODULES), f"modules the probe does not call: {sorted(modules - set(probe.MODULES))}"
