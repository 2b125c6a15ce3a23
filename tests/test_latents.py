"""The course VAE: the hand-written VAE pieces against diffusers.AutoencoderKL, the shipped weights, scaling."""
import json

import pytest
import torch

from course_utils import latents, part_folders
from course_utils.checkpoints import load_manifest
from course_utils.data import DATA_DIR, mnist_tensors


def test_pad_and_crop_are_inverse_and_pad_with_background():
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    padded = latents.pad_to_32(images)
    assert padded.shape == (3, 1, 32, 32)
    assert torch.all(padded[..., :2, :] == -1) and torch.all(padded[..., :, -2:] == -1)
    torch.testing.assert_close(latents.crop_to_28(padded), images)


def test_reparameterise_and_kl_equal_diffusers_posterior():
    torch.manual_seed(0)
    vae = latents.make_vae()
    posterior = vae.encode(torch.rand(4, 1, 32, 32) * 2 - 1).latent_dist
    sample = latents.reparameterise(posterior.mean, posterior.logvar, torch.Generator().manual_seed(3))
    torch.testing.assert_close(sample, posterior.sample(torch.Generator().manual_seed(3)))
    torch.testing.assert_close(latents.kl_to_standard_normal(posterior.mean, posterior.logvar), posterior.kl())


def test_kl_is_zero_only_at_the_standard_normal():
    zeros = torch.zeros(2, 4, 8, 8)
    assert torch.all(latents.kl_to_standard_normal(zeros, zeros) == 0)
    kl = latents.kl_to_standard_normal(torch.ones(1, 1, 1, 1), torch.full((1, 1, 1, 1), -2.0))
    assert kl.item() == pytest.approx(0.5 * (1 + torch.exp(torch.tensor(-2.0)).item() - 1 + 2))


def test_vae_shapes_and_loss_gradients():
    torch.manual_seed(0)
    vae = latents.make_vae()
    images = latents.pad_to_32(torch.rand(2, 1, 28, 28) * 2 - 1)
    assert vae.encode(images).latent_dist.mean.shape == latents.latent_shape(2)
    loss, mse, kl = latents.vae_loss(vae, images, kl_weight=1e-2, generator=torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(mse.item() + 1e-2 * kl.item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in vae.encoder.parameters())


def test_psnr_of_known_error():
    target = torch.zeros(1, 1, 4, 4)
    assert latents.psnr(target + 0.2, target).item() == pytest.approx(10 * torch.log10(torch.tensor(4 / 0.04)).item())


def test_scaling_factor_gives_unit_std():
    raw = torch.randn(1000, 4, 8, 8) * 5.5
    factor = latents.latent_scaling_factor(raw)
    assert factor == pytest.approx(1 / 5.5, rel=0.01)
    assert (raw * factor).std().item() == pytest.approx(1.0, rel=1e-4)


def test_shipped_vae_reconstructs_test_digits():
    vae = latents.load_vae()
    manifest = load_manifest(DATA_DIR / "vae_mnist.json")
    assert vae.config.scaling_factor == manifest["config"]["scaling_factor"]
    images = mnist_tensors("test")[0][:200]
    z = latents.encode(vae, images)
    assert z.shape == latents.latent_shape(200)
    assert 0.7 < z.std().item() < 1.3  # scaled to about unit variance
    assert latents.psnr(latents.decode(vae, z), images).mean().item() > 20.0


def test_missing_vae_names_the_rebuild_command(tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "course_pipeline"
    shutil.copytree(part_folders.COURSE_PIPELINE_DIR, copy)
    (copy / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    monkeypatch.setattr(part_folders, "COURSE_PIPELINE_DIR", copy)
    with pytest.raises(part_folders.PipelineFilesError, match=r"vae/diffusion_pytorch_model.safetensors.*scripts/train_vae.py --steps 3000"):
        latents.load_vae()


def test_vae_record_matches_the_shipped_files():
    """data/vae_mnist.json records the checksums of the files the VAE is loaded from."""
    listed = json.loads((part_folders.COURSE_PIPELINE_DIR / part_folders.CHECKSUMS_FILE).read_text())
    record = load_manifest(DATA_DIR / "vae_mnist.json")["files"]
    assert record and all(listed[name] == sha for name, sha in record.items())


def test_channel_images_line_each_cell_up_with_its_4x4_block_of_the_padded_frame():
    z = torch.zeros(2, 4, 8, 8)
    z[1, 2, 3, 5] = -2.0  # digit 1, channel 2, row 3, column 5
    z[1, 2, 0, 0] = 0.5
    pictures = latents.channel_images(z)
    assert pictures.shape == (2, 4, 1, 32, 32)
    torch.testing.assert_close(pictures[1, 2, 0, 12:16, 20:24], torch.full((4, 4), -1.0))  # scaled by max |z|
    torch.testing.assert_close(pictures[1, 2, 0, 0:4, 0:4], torch.full((4, 4), 0.25))
    assert pictures[1, 2].abs().sum() == 16 * (1.0 + 0.25)  # nothing outside the two blocks
    assert torch.all(pictures[0] == 0)  # an all-zero channel stays zero, not NaN
    with pytest.raises(ValueError, match="z"):
        latents.channel_images(torch.zeros(2, 4, 16, 16))


def test_reconstruction_floor_reads_both_floors_on_the_same_digits():
    """A perfect VAE's floor is the data floor; a blurring one's lies above it; both use the same two sets."""
    from course_utils import metrics

    classifier = metrics.load_classifier()
    test_images = mnist_tensors("test")[0]
    perfect = latents.reconstruction_floor(classifier, test_images, test_images.clone(), size=200, seed=3)
    assert perfect["vae_floor_fid"] == perfect["data_floor_fid"] > 0
    first, second = metrics.test_digit_indices(200, seed=3)
    torch.testing.assert_close(perfect["reference"], metrics.classify(classifier, test_images[first])[0])
    reference_digits, other_digits = metrics.test_digit_sets(200, seed=3)
    assert torch.equal(other_digits, test_images[second]) and torch.equal(reference_digits, test_images[first])
    blurred = torch.nn.functional.avg_pool2d(test_images, 3, stride=1, padding=1, count_include_pad=False)
    worse = latents.reconstruction_floor(classifier, test_images, blurred, size=200, seed=3)
    assert worse["data_floor_fid"] == perfect["data_floor_fid"] and worse["vae_floor_fid"] > perfect["vae_floor_fid"]
    with pytest.raises(ValueError, match="reconstructions"):
        latents.reconstruction_floor(classifier, test_images, test_images[:100], size=200)
