"""course_utils.checkpoints' reading of training manifests: the images a checkpoint has seen and the commands that
made it (the files themselves are tested with the loaders in tests/test_bad_inputs_files_loaders.py)."""
import pytest

from course_utils.checkpoints import images_seen, training_commands


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
