"""Files read outside the course's checks (issue 32): checksums.json and the manifests are read by the checked loaders
(a damaged one is a course error naming the file and how to restore it, never a bare JSONDecodeError); a file in a
pipeline folder that checksums.json does not list is refused (diffusers would load it unverified); a shipped part
edited by hand, its checksum updated to match, is refused because it differs from its training run's record."""
import json
import shutil

import pytest

from course_utils import control, ddpm, guidance, latents, part_folders, pipeline
from course_utils.checkpoints import CheckpointError
from course_utils.data import sha256_of


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A copy of the shipped pipeline folder that the checks treat as the shipped one."""
    folder = tmp_path / "course_pipeline"
    shutil.copytree(part_folders.COURSE_PIPELINE_DIR, folder)
    monkeypatch.setattr(part_folders, "COURSE_PIPELINE_DIR", folder)
    return folder


def test_the_shipped_folders_pass():
    part_folders.verify_pipeline_folder()
    part_folders.verify_pipeline_folder(part_folders.COURSE_CONTROLNET_DIR, parts=("controlnet",))


@pytest.mark.parametrize("text", ["{ not json", "[1, 2]", '{"vae/config.json": 5}'])
def test_a_damaged_checksums_file_is_a_course_error(shipped_copy, text):
    (shipped_copy / "checksums.json").write_text(text)
    with pytest.raises(part_folders.PipelineFilesError, match="checksums.json.*git checkout -- data/"):
        part_folders.verify_pipeline_folder(shipped_copy, parts=("vae",))


def test_a_file_checksums_json_does_not_list_is_refused(shipped_copy):
    (shipped_copy / "tokenizer" / "added_tokens.json").write_text('{"seven": 3}')
    with pytest.raises(part_folders.PipelineFilesError, match="does not list.*tokenizer/added_tokens.json"):
        part_folders.verify_pipeline_folder(shipped_copy, parts=("tokenizer", "text_encoder", "unet"))
    part_folders.verify_pipeline_folder(shipped_copy, parts=("vae",))  # another part: not read, not refused
    (shipped_copy / "tokenizer" / "added_tokens.json").unlink()
    (shipped_copy / "tokenizer" / ".tokenizer.json.abc.tmp").write_text("a killed save")  # hidden: never loaded
    part_folders.verify_pipeline_folder(shipped_copy, parts=("tokenizer",))


def test_an_edited_part_with_its_checksum_updated_is_refused(shipped_copy):
    config_file = shipped_copy / "vae" / "config.json"
    config = json.loads(config_file.read_text())
    config["scaling_factor"] = 1.0
    config_file.write_text(json.dumps(config))
    listing = shipped_copy / "checksums.json"
    checksums = json.loads(listing.read_text())
    checksums["vae/config.json"] = sha256_of(config_file)
    listing.write_text(json.dumps(checksums))
    with pytest.raises(part_folders.PipelineFilesError, match="vae/config.json.*differ from.*data/vae_mnist.json"):
        part_folders.verify_pipeline_folder(shipped_copy, parts=("vae",))


def test_the_loaders_check_the_folder_named_when_they_are_called(tmp_path, monkeypatch):
    """Every loader reads ``part_folders.COURSE_PIPELINE_DIR`` / ``COURSE_CONTROLNET_DIR`` when it is called, not a
    copy of the path bound at import: pointed at folders that do not exist, each one refuses, naming that folder."""
    monkeypatch.setattr(part_folders, "COURSE_PIPELINE_DIR", tmp_path / "moved_pipeline")
    monkeypatch.setattr(part_folders, "COURSE_CONTROLNET_DIR", tmp_path / "moved_controlnet")
    loaders = [(latents.load_vae, "moved_pipeline"), (guidance.load_text2image, "moved_pipeline"),
               (pipeline.load_pipeline, "moved_pipeline"), (pipeline.build_course_pipeline, "moved_pipeline"),
               (control.load_controlnet, "moved_controlnet"), (pipeline.build_controlnet_pipeline, "moved_pipeline")]
    for load, folder in loaders:
        with pytest.raises(part_folders.PipelineFilesError, match=folder):
            load()


def test_a_damaged_manifest_is_a_checkpoint_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr("course_utils.data.DATA_DIR", tmp_path)  # load_ddpm reads data/NAME.json from here
    (tmp_path / "mine.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="mine.json"):
        ddpm.load_ddpm("mine")
