"""course_utils.checkpoints' reading of training manifests: the images a checkpoint has seen and the commands that
made it (the files themselves are tested with the loaders in tests/test_bad_inputs_files_loaders.py)."""
import pytest

from course_utils.checkpoints import images_seen, lineage, training_commands


def test_images_seen_is_the_recorded_count_even_when_it_is_zero():
    assert images_seen({"images_seen": 0, "steps": 5, "batch_size": 4}) == 0  # recorded: not steps * batch_size
    assert images_seen({"images_seen": 30, "steps": 5, "batch_size": 4}) == 30  # continued at another batch size
    assert images_seen({"steps": 5, "batch_size": 4}) == 20


def test_training_commands_run_from_the_first_run_to_the_last():
    manifest = {"command": "c", "continued_from": {"command": "b", "continued_from": {"command": "a"}}}
    assert training_commands(manifest) == ["a", "b", "c"]


@pytest.mark.parametrize("continued_from", [{"steps": 3}, "python scripts/train_ddpm.py"])
def test_a_continued_run_recorded_without_its_command_is_refused_by_name(continued_from):
    manifest = {"command": "c", "continued_from": {"command": "b", "continued_from": continued_from}}
    with pytest.raises(ValueError, match=r"manifest must record .*manifest\['continued_from'\]\['continued_from'\]"):
        training_commands(manifest)


def test_lineage_follows_both_records_of_a_start_from_other_weights_and_stops_at_none():
    """train_ddpm.py and train_text2image.py record a continued run as ``continued_from``; train_reflow.py the
    model it started from as ``init_from`` (a cool-down's start is a reflow run that itself has an ``init_from``)."""
    flow = {"command": "flow", "continued_from": {"command": "flow from scratch"}}
    reflow = {"command": "reflow", "init_from": flow}
    cool_down = {"command": "cool-down", "init_from": reflow}
    assert [record["command"] for record in lineage(cool_down)] == ["flow from scratch", "flow", "reflow", "cool-down"]
    assert training_commands({"command": "scratch", "init_from": "none"}) == ["scratch"]
    assert lineage(cool_down)[-1] is cool_down
