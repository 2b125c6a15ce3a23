"""The training scripts' promise: a run stopped and resumed gives the same weights as one that never stopped."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import resumable  # noqa: E402
import train_ddpm  # noqa: E402
from resumable import TrainingRun, step_generator  # noqa: E402

from course_utils.ddpm import EMA  # noqa: E402


@pytest.fixture
def torch_threads():
    """The scripts set the thread count; give the rest of the session its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def train_toy(run_dir: Path, total_steps: int, with_ema: bool, save_every: int = 2):
    """A toy regression trained the way the scripts train: state from the run, data from step_generator."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ema = EMA(model, 0.9) if with_ema else None
    run = TrainingRun(run_dir, model, optimizer, ema)
    while run.step < total_steps:
        inputs = torch.randn(16, 3, generator=step_generator(7, run.step))
        loss = torch.mean((model(inputs) - inputs.sum(1, keepdim=True)) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update(model)
        run.finish_step(total_steps, loss=loss.item(), double=2 * loss.item())
        if run.step % save_every == 0 or run.step == total_steps:
            run.save()
    return model, optimizer, ema, run


@pytest.mark.parametrize("with_ema", [True, False])
def test_resumed_run_matches_uninterrupted_run(tmp_path, monkeypatch, with_ema):
    monkeypatch.setattr(resumable, "LOG_EVERY", 2)
    straight = train_toy(tmp_path / "straight", 6, with_ema)
    train_toy(tmp_path / "resumed", 4, with_ema)
    resumed = train_toy(tmp_path / "resumed", 6, with_ema)
    assert resumed[3].step == straight[3].step == 6
    for a, b in zip(straight[0].parameters(), resumed[0].parameters()):
        assert torch.equal(a, b)
    assert straight[1].state_dict()["state"][0]["exp_avg"].equal(resumed[1].state_dict()["state"][0]["exp_avg"])
    if with_ema:
        assert resumed[2].num_updates == 6
        for a, b in zip(straight[2].model.parameters(), resumed[2].model.parameters()):
            assert torch.equal(a, b)


def test_resume_without_optimizer_state_is_caught(tmp_path, monkeypatch):
    """The comparison above can fail: a resume that restored the weights but not Adam's moments differs."""
    straight = train_toy(tmp_path / "straight", 6, with_ema=False)
    train_toy(tmp_path / "resumed", 4, with_ema=False)
    monkeypatch.setattr(torch.optim.AdamW, "load_state_dict", lambda self, state: None)
    forgetful = train_toy(tmp_path / "resumed", 6, with_ema=False)
    assert forgetful[3].step == 6
    assert not all(torch.equal(a, b) for a, b in zip(straight[0].parameters(), forgetful[0].parameters()))


def test_log_rows_hold_mean_losses_every_log_every_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(resumable, "LOG_EVERY", 2)
    train_toy(tmp_path / "run", 5, with_ema=False)
    rows = list(csv.reader((tmp_path / "run" / "log.csv").open()))
    assert [int(row[0]) for row in rows] == [2, 4]
    for step, loss, double, wall_time in rows:
        assert float(double) == pytest.approx(2 * float(loss), rel=1e-4)
        assert float(wall_time) >= 0


def test_state_file_is_not_half_written_when_saving_fails(tmp_path, monkeypatch):
    model, optimizer, ema, run = train_toy(tmp_path / "run", 2, with_ema=True)
    before = (tmp_path / "run" / "state.pt").read_bytes()
    monkeypatch.setattr(torch, "save", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        run.save()
    assert (tmp_path / "run" / "state.pt").read_bytes() == before
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["state.pt"]


def test_train_ddpm_resumes_to_identical_weights(tmp_path, torch_threads):
    """The real script, tiny: 4 steps at once and 2 + 2 steps resumed write the same EMA weights."""
    def run(name: str, steps: int) -> Path:
        out = tmp_path / name / "model.safetensors"
        train_ddpm.main(["--steps", str(steps), "--batch-size", "4", "--channels", "8,16,32", "--warmup", "2",
                         "--save-every", "2", "--threads", "1", "--run-dir", str(tmp_path / name), "--out", str(out)])
        return out

    straight = load_file(run("straight", 4))
    run("resumed", 2)
    resumed_path = run("resumed", 4)
    resumed = load_file(resumed_path)
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)
    manifest = json.loads(resumed_path.with_suffix(".json").read_text())
    assert manifest["steps"] == 4
    assert manifest["command"].startswith("python scripts/train_ddpm.py --steps 4 --batch-size 4")


def test_log_has_no_duplicate_rows_and_true_means_after_a_resume(tmp_path, monkeypatch):
    """Saved at step 4, killed after logging step 6: the resumed run rewrites rows 6 and 8 once each,
    and a row that averages fewer steps than LOG_EVERY divides by the steps it saw."""
    monkeypatch.setattr(resumable, "LOG_EVERY", 3)
    train_toy(tmp_path / "straight", 9, with_ema=False, save_every=4)
    state = tmp_path / "resumed" / "state.pt"
    train_toy(tmp_path / "resumed", 4, with_ema=False, save_every=4)
    saved_at_4 = state.read_bytes()
    train_toy(tmp_path / "resumed", 6, with_ema=False, save_every=4)
    state.write_bytes(saved_at_4)  # as if killed after logging step 6, before saving it
    train_toy(tmp_path / "resumed", 9, with_ema=False, save_every=4)
    straight = list(csv.reader((tmp_path / "straight" / "log.csv").open()))
    resumed = list(csv.reader((tmp_path / "resumed" / "log.csv").open()))
    assert [row[0] for row in resumed] == [row[0] for row in straight] == ["3", "6", "9"]
    assert [row[1] for row in resumed] == [row[1] for row in straight]  # resumed exactly: the same means


def test_resuming_with_other_settings_is_refused(tmp_path, torch_threads):
    common = ["--channels", "8,16,32", "--warmup", "2", "--save-every", "2", "--threads", "1",
              "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "model.safetensors")]
    train_ddpm.main(["--steps", "2", "--batch-size", "4", *common])
    with pytest.raises(SystemExit, match=r"batch_size: run has '4', asked '8'"):
        train_ddpm.main(["--steps", "4", "--batch-size", "8", *common])
    train_ddpm.main(["--steps", "4", "--batch-size", "4", *common])  # the same settings resume


def test_train_ddpm_continues_from_exported_weights(tmp_path, torch_threads):
    """A later run starts from the shipped weights: the manifest counts all steps and says what it continued."""
    common = ["--batch-size", "4", "--channels", "8,16,32", "--warmup", "2", "--save-every", "2", "--threads", "1"]
    first = tmp_path / "first.safetensors"
    train_ddpm.main(["--steps", "2", *common, "--run-dir", str(tmp_path / "a"), "--out", str(first)])
    second = tmp_path / "second.safetensors"
    train_ddpm.main(["--steps", "3", *common, "--run-dir", str(tmp_path / "b"), "--out", str(second),
                     "--init-from", str(first)])
    manifest = json.loads(second.with_suffix(".json").read_text())
    assert manifest["steps"] == 5 and manifest["images_seen"] == 20
    assert manifest["continued_from"]["steps"] == 2 and manifest["continued_from"]["file"] == "first.safetensors"
    third = tmp_path / "third.safetensors"
    train_ddpm.main(["--steps", "1", *common, "--run-dir", str(tmp_path / "t"), "--out", str(third),
                     "--init-from", str(second)])
    lineage = json.loads(third.with_suffix(".json").read_text())["continued_from"]
    assert lineage["file"] == "second.safetensors" and lineage["continued_from"] == manifest["continued_from"]
    fresh = tmp_path / "fresh.safetensors"
    train_ddpm.main(["--steps", "3", *common, "--run-dir", str(tmp_path / "c"), "--out", str(fresh)])
    continued, from_scratch = load_file(second), load_file(fresh)
    assert not all(torch.equal(continued[key], from_scratch[key]) for key in continued), "--init-from was ignored"
    with pytest.raises(SystemExit):
        train_ddpm.main(["--steps", "1", *common, "--init-from", str(tmp_path / "missing.safetensors")])


def test_train_ddpm_keeps_extra_emas_through_a_resume_and_exports_each(tmp_path, torch_threads, capsys):
    """--extra-ema-decays: each average is resumed exactly and exported beside --out with its decay."""
    def run(name: str, steps: int) -> Path:
        out = tmp_path / name / "model.safetensors"
        train_ddpm.main(["--steps", str(steps), "--batch-size", "4", "--channels", "8,16,32", "--warmup", "2",
                         "--save-every", "2", "--threads", "1", "--extra-ema-decays", "0.05,0.9",
                         "--time-sampling", "lognormal", "--snr-gamma", "5",
                         "--run-dir", str(tmp_path / name), "--out", str(out)])
        return out

    straight = run("straight", 4)
    run("resumed", 2)
    resumed = run("resumed", 4)
    for decay in ("0.05", "0.9"):
        a, b = (load_file(path.with_name(f"model_ema{decay}.safetensors")) for path in (straight, resumed))
        assert all(torch.equal(a[key], b[key]) for key in a)
        manifest = json.loads(resumed.with_name(f"model_ema{decay}.json").read_text())
        assert manifest["ema_decay"] == float(decay) and manifest["time_sampling"] == "lognormal"
        assert manifest["snr_gamma"] == 5.0
    short, long = load_file(resumed.with_name("model_ema0.05.safetensors")), load_file(resumed)  # below the warm-up
    assert not all(torch.equal(short[key], long[key]) for key in short)
    shipped = tmp_path / "ship" / "best.safetensors"  # a finished run exports only the chosen average
    shipped.parent.mkdir()
    train_ddpm.main(["--steps", "4", "--batch-size", "4", "--channels", "8,16,32", "--warmup", "2",
                     "--threads", "1", "--extra-ema-decays", "0.05,0.9", "--time-sampling", "lognormal",
                     "--snr-gamma", "5", "--run-dir", str(tmp_path / "resumed"), "--out", str(shipped),
                     "--export-ema", "0.9"])
    assert sorted(path.name for path in shipped.parent.iterdir()) == ["best.json", "best.safetensors"]
    chosen = load_file(resumed.with_name("model_ema0.9.safetensors"))
    assert all(torch.equal(load_file(shipped)[key], chosen[key]) for key in chosen)
    assert json.loads(shipped.with_suffix(".json").read_text())["ema_decay"] == 0.9
    scratch = ["--steps", "1", "--out", str(tmp_path / "refused.safetensors")]  # not a shipped path
    refused = {"--export-ema must be one of": ["--extra-ema-decays", "0.9", "--export-ema", "0.95"],
               "--time-sampling lognormal is not for": ["--objective", "flow", "--time-sampling", "lognormal"],
               "--extra-ema-decays must each lie in": ["--extra-ema-decays", "0.9,1.5"]}
    for message, arguments in refused.items():
        with pytest.raises(SystemExit):
            train_ddpm.main([*scratch, *arguments])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "refused.safetensors").exists()


def test_train_ddpm_flow_objective_trains_a_flow_model_and_records_it(tmp_path, torch_threads):
    """--objective flow: the same script and UNet, the flow-matching loss, a config the flow loader reads."""
    out = tmp_path / "flow.safetensors"
    common = ["--batch-size", "4", "--channels", "8,16,32", "--warmup", "2", "--threads", "1", "--seed", "3"]
    train_ddpm.main(["--steps", "2", "--objective", "flow", *common, "--run-dir", str(tmp_path / "f"), "--out", str(out)])
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["config"]["objective"] == "flow" and "prediction_type" not in manifest["config"]
    diffusion = tmp_path / "ddpm.safetensors"
    train_ddpm.main(["--steps", "2", *common, "--run-dir", str(tmp_path / "d"), "--out", str(diffusion)])
    flow_weights, ddpm_weights = load_file(out), load_file(diffusion)
    assert flow_weights.keys() == ddpm_weights.keys()  # the same network
    assert any(not torch.equal(flow_weights[key], ddpm_weights[key]) for key in flow_weights)  # another loss
    with pytest.raises(SystemExit):
        train_ddpm.main(["--steps", "1", "--objective", "flow", "--space", "latent", *common])


@pytest.mark.parametrize("script", ["train_ddpm", "train_vae", "train_text2image", "train_controlnet"])
@pytest.mark.parametrize("option, value, expected", [
    ("--save-every", "0", "integer >= 1, got 0"), ("--steps", "-5", "integer >= 1, got -5"),
    ("--batch-size", "two", "got 'two'"), ("--threads", "100000", "integer in [1, 256], got 100000"),
    ("--lr", "nan", "must lie in (0, 1), got nan"), ("--seed", "-1", "got -1")])
def test_training_scripts_refuse_bad_arguments_by_name_before_any_work(script, option, value, expected, capsys):
    module = __import__(script)
    with pytest.raises(SystemExit) as raised:
        module.parse_args([option, value])
    assert raised.value.code == 2  # argparse's usage error, before any data is loaded
    error = capsys.readouterr().err
    assert f"argument {option}: " in error and expected in error


def test_compare_recipes_measures_each_checkpoint_once_with_the_samplers_of_its_objective(tmp_path, torch_threads):
    """Two tiny checkpoints, a diffusion and a flow one: each is sampled only by the samplers of its
    objective, its recipe is read from its manifest, and a rerun measures nothing again."""
    import compare_recipes

    common = ["--steps", "2", "--batch-size", "4", "--channels", "8,16,32", "--warmup", "2", "--threads", "1"]
    diffusion, flow = tmp_path / "diffusion.safetensors", tmp_path / "flow.safetensors"
    train_ddpm.main([*common, "--time-sampling", "lognormal", "--run-dir", str(tmp_path / "d"), "--out", str(diffusion)])
    train_ddpm.main([*common, "--objective", "flow", "--run-dir", str(tmp_path / "f"), "--out", str(flow)])
    outputs = ["--json", str(tmp_path / "t.json"), "--markdown", str(tmp_path / "t.md"),
               "--document", str(tmp_path / "page.md")]
    argv = [str(diffusion), str(flow), "--samplers", "ddim/2", "euler/2", "--num-samples", "8", "--threads", "1", *outputs]
    page = Path(compare_recipes.ROOT / "docs" / "training_on_a_cpu.md").read_text()
    compare_recipes.main(argv)
    runs = json.loads((tmp_path / "t.json").read_text())["runs"]
    assert sorted((run["objective"], run["sampler"]) for run in runs.values()) == [("diffusion", "ddim"), ("flow", "euler")]
    by_objective = {run["objective"]: run for run in runs.values()}
    assert by_objective["diffusion"]["time_sampling"] == "lognormal" and by_objective["diffusion"]["images_seen"] == 8
    assert by_objective["diffusion"]["effective_ema_decay"] == round(3 / 12, 4)  # the warm-up after 2 updates
    before = (tmp_path / "t.json").read_text()
    compare_recipes.main(argv)
    assert json.loads((tmp_path / "t.json").read_text())["runs"] == json.loads(before)["runs"]
    assert Path(compare_recipes.ROOT / "docs" / "training_on_a_cpu.md").read_text() == page  # only --document
    with pytest.raises(SystemExit):
        compare_recipes.main([str(diffusion), "--samplers", "ddim", *outputs])
    with pytest.raises(SystemExit):
        compare_recipes.main([str(tmp_path / "missing.safetensors"), *outputs])


def test_learning_rate_warms_up_holds_and_cools_down_to_zero():
    rates = [resumable.learning_rate(step, 1e-3, 2, total_steps=10, decay_steps=4) for step in range(10)]
    assert rates[0] == pytest.approx(5e-4) and rates[1:6] == pytest.approx([1e-3] * 5)
    assert rates[6:] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])  # (10 - step) / 4 of the rate
    assert resumable.learning_rate(9, 1e-3, 2) == pytest.approx(1e-3)  # no decay: constant


def test_a_cool_down_run_belongs_to_its_steps(tmp_path, torch_threads, capsys):
    common = ["--channels", "8,16,32", "--warmup", "1", "--save-every", "2", "--threads", "1", "--batch-size", "4",
              "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "model.safetensors")]
    with pytest.raises(SystemExit):
        train_ddpm.main(["--steps", "2", "--decay-steps", "4", *common])  # a cool-down longer than the run
    assert "--decay-steps must be at most --steps (2), got 4" in capsys.readouterr().err
    train_ddpm.main(["--steps", "2", "--decay-steps", "2", *common])
    with pytest.raises(SystemExit, match=r"steps: run has '2', asked '4'"):
        train_ddpm.main(["--steps", "4", "--decay-steps", "2", *common])  # its rate reached 0 at step 2
    # a constant-rate run's --steps stays free: it may be continued to any length
    free = [*common[:-4], "--run-dir", str(tmp_path / "free"), "--out", str(tmp_path / "free.safetensors")]
    train_ddpm.main(["--steps", "2", *free])
    train_ddpm.main(["--steps", "4", *free])


def test_train_vae_builds_the_asked_widths_and_records_its_reconstruction_fid(tmp_path, torch_threads):
    """A VAE of other widths is trained, saved where asked and loaded back with those widths; its manifest
    records the reconstruction FID beside the data floor (the latent models' two floors)."""
    import train_vae
    from diffusers import AutoencoderKL

    manifest_path = tmp_path / "vae.json"
    train_vae.main(["--channels", "8,8,16", "--steps", "2", "--batch-size", "4", "--threads", "1",
                    "--run-dir", str(tmp_path / "run"), "--pipeline-dir", str(tmp_path / "pipe"),
                    "--manifest", str(manifest_path)])
    manifest = json.loads(manifest_path.read_text())
    assert manifest["config"]["block_out_channels"] == [8, 8, 16]
    quality = manifest["quality"]
    assert quality["fid_images"] == 1000 and quality["data_floor_fid"] == pytest.approx(5.93, abs=0.01)
    assert quality["reconstruction_fid"] > quality["data_floor_fid"]  # two steps of training reconstruct nothing
    vae = AutoencoderKL.from_pretrained(tmp_path / "pipe" / "vae", local_files_only=True, use_safetensors=True)
    assert list(vae.config.block_out_channels) == [8, 8, 16]
    assert vae.config.scaling_factor == manifest["config"]["scaling_factor"]
    measure = ["--measure-only", "--pipeline-dir", str(tmp_path / "pipe"), "--manifest", str(manifest_path)]
    train_vae.main([*measure, "--threads", "1"])  # the same VAE measured again: the same quality, its command
    remeasured = json.loads(manifest_path.read_text())
    assert {**remeasured["quality"], "command": None} == {**quality, "command": None}
    assert remeasured["quality"]["command"].endswith("--threads 1") and remeasured["steps"] == manifest["steps"]
    with pytest.raises(SystemExit, match="needs an exported VAE"):
        train_vae.main(["--measure-only", "--pipeline-dir", str(tmp_path), "--manifest", str(manifest_path)])


@pytest.mark.parametrize("value, expected", [("16,32", "three channel counts"), ("16,32,60", "multiples of 8"),
                                             ("a,b,c", "invalid literal")])
def test_train_vae_refuses_bad_widths_by_name(value, expected, capsys):
    import train_vae

    with pytest.raises(SystemExit):
        train_vae.parse_args(["--channels", value])
    error = capsys.readouterr().err
    assert "argument --channels: " in error and expected in error


def test_a_continued_checkpoint_names_every_command_that_made_it_and_counts_its_images(tmp_path, torch_threads):
    """checkpoints.training_commands walks continued_from back to the run from scratch; images_seen adds
    the images of every run, whatever their batch sizes."""
    from course_utils.checkpoints import images_seen, training_commands

    common = ["--channels", "8,16,32", "--warmup", "2", "--save-every", "2", "--threads", "1"]
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    first_argv = ["--steps", "2", "--batch-size", "4", *common, "--run-dir", str(tmp_path / "a"), "--out", str(first)]
    second_argv = ["--steps", "1", "--batch-size", "2", *common, "--run-dir", str(tmp_path / "b"),
                   "--out", str(second), "--init-from", str(first)]
    train_ddpm.main(first_argv)
    train_ddpm.main(second_argv)
    manifest = json.loads(second.with_suffix(".json").read_text())
    assert training_commands(manifest) == [json.loads(first.with_suffix(".json").read_text())["command"],
                                           manifest["command"]]
    assert "--init-from" in training_commands(manifest)[1] and "--init-from" not in training_commands(manifest)[0]
    assert images_seen(manifest) == 2 * 4 + 1 * 2
    assert images_seen({"steps": 3, "batch_size": 5}) == 15  # a manifest from before images were counted
    with pytest.raises(ValueError, match="manifest"):
        training_commands({"steps": 3})


def test_train_text2image_takes_the_pixel_recipe_and_refuses_a_resume_with_another_target(capsys):
    import train_text2image

    args = train_text2image.parse_args(["--run-dir", "runs/x", "--manifest", "runs/x.json", "--pipeline-dir", "runs/x"])
    assert (args.prediction_type, args.batch_size, args.lr, args.ema_decay) == ("v_prediction", 64, 1e-3, 0.9995)
    settings = train_text2image.run_settings(args)
    assert "threads" not in settings and settings["prediction_type"] == "v_prediction"
    other = train_text2image.parse_args(["--prediction-type", "epsilon", "--threads", "2", "--pipeline-dir", "runs/y",
                                         "--manifest", "runs/y.json"])
    assert train_text2image.run_settings(other) != settings  # TrainingRun refuses to resume across the two
    with pytest.raises(SystemExit):
        train_text2image.parse_args(["--steps", "100", "--decay-steps", "200", "--manifest", "runs/z.json",
                                     "--pipeline-dir", "runs/z"])
    assert "--decay-steps must be at most --steps (100), got 200" in capsys.readouterr().err


def test_train_text2image_continues_an_exported_model(tmp_path, monkeypatch, capsys, torch_threads):
    """--init-from starts from an exported model's weights (here the shipped one, trained on 300 digits for
    one step, so its weights barely move) and records the stage it continued; a folder without a model is refused."""
    import train_text2image

    from course_utils.checkpoints import images_seen, training_commands
    from course_utils.data import DATA_DIR, mnist_tensors

    images, labels = mnist_tensors("train")
    monkeypatch.setattr(train_text2image, "mnist_tensors", lambda split: (images[:300], labels[:300]))
    shipped = DATA_DIR / "course_pipeline"
    out = tmp_path / "pipeline"
    from course_utils.guidance import text2image_prediction_type

    target = ["--prediction-type", text2image_prediction_type()]  # a continuation keeps the shipped model's target
    train_text2image.main(["--init-from", str(shipped), *target, "--steps", "1", "--batch-size", "4", "--warmup", "1",
                           "--threads", "1", "--run-dir", str(tmp_path / "run"), "--pipeline-dir", str(out),
                           "--manifest", str(tmp_path / "text2image_mnist.json")])
    record = json.loads((tmp_path / "text2image_mnist.json").read_text())
    before = json.loads((DATA_DIR / "text2image_mnist.json").read_text())
    assert record["continued_from"]["files"] == before["files"]
    assert record["images_seen"] == images_seen(before) + 4 and record["steps"] == before["steps"] + 1
    assert training_commands(record) == [*training_commands(before), record["command"]]  # every stage, in order
    weights = "unet/diffusion_pytorch_model.safetensors"
    start, continued = load_file(shipped / weights), load_file(out / weights)
    differences = [(continued[key].float() - start[key].float()).abs().max().item() for key in start]
    assert 0 < max(differences) < 0.05  # one EMA-averaged step away from the shipped weights, not a new model
    with pytest.raises(SystemExit):
        train_text2image.parse_args(["--init-from", str(tmp_path), "--pipeline-dir", str(tmp_path / "p"),
                                     "--manifest", str(tmp_path / "m.json")])
    assert "--init-from" in capsys.readouterr().err


def test_study_live_run_trains_each_recipe_for_its_seconds_and_reads_its_samples(tmp_path, torch_threads):
    import study_live_run

    json_path, markdown_path = tmp_path / "t.json", tmp_path / "t.md"
    study_live_run.main(["--seconds", "0.5", "--recipes", "narrow UNet", "narrow UNet, flow", "--num-samples", "8",
                         "--sampling-steps", "2", "--threads", "1", "--json", str(json_path),
                         "--markdown", str(markdown_path)])
    rows = json.loads(json_path.read_text())["recipes"]
    assert sorted(rows) == ["narrow UNet", "narrow UNet, flow"]
    for row in rows.values():
        assert row["steps"] >= 1 and row["images"] == row["steps"] * row["batch_size"]
        assert 0 <= row["confident_share"] <= 1 and row["channels"] == [16, 32, 64]
        assert row["parameters"] > 100_000  # the UNet's, not its frozen EMA copy's trainable count (0)
    assert "| narrow UNet, flow | 16/32/64 | flow |" in markdown_path.read_text()
    with pytest.raises(SystemExit):
        study_live_run.parse_args(["--recipes", "wide UNet"])
