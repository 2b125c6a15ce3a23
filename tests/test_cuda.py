"""course_utils on a GPU: every function the notebooks call works with CUDA tensors and generators.

Skipped where torch sees no CUDA GPU (CI never needs one); run on a GPU machine with
`HF_HUB_OFFLINE=1 python -m pytest tests/test_cuda.py`.
"""
import pytest
import torch

from course_utils import captions, ddpm, latents, metrics, samplers
from course_utils.data import mnist_tensors
from course_utils.unet import TinyUNet

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def digits():
    return mnist_tensors("test")[0][:32]


def test_loss_on_cuda_matches_the_cpu_draw(digits):
    torch.manual_seed(0)
    model = TinyUNet((8, 16))
    alpha_bar = ddpm.load_ddpm()[1]
    on_cpu = ddpm.ddpm_loss(model, digits, alpha_bar, torch.Generator().manual_seed(1), "v_prediction")
    on_gpu = ddpm.ddpm_loss(model.to(CUDA), digits.to(CUDA), alpha_bar, torch.Generator().manual_seed(1), "v_prediction")
    assert on_gpu.device.type == "cuda"
    assert on_gpu.item() == pytest.approx(on_cpu.item(), rel=1e-3)


def test_samplers_run_on_cuda_with_cuda_generators():
    model, alpha_bar, manifest = ddpm.load_ddpm()
    model, target = model.to(CUDA), manifest["config"]["prediction_type"]
    generator = torch.Generator(device=CUDA).manual_seed(0)
    for images in (ddpm.sample_ddpm(model, 4, alpha_bar, 5, generator, progress=False, prediction_type=target),
                   samplers.sample_ddim(model, 4, alpha_bar, 5, generator, progress=False, prediction_type=target),
                   samplers.sample_with_scheduler(model, samplers.make_scheduler("dpm_solver++", prediction_type=target),
                                                  4, 5, generator, progress=False)[0]):
        assert images.device.type == "cuda" and images.shape == (4, 1, 28, 28) and torch.isfinite(images).all()


def test_a_cpu_generator_gives_the_cpu_runs_samples_on_cuda():
    # the notebooks seed CPU generators: on a GPU they start from the stored CPU run's noise, so their checked
    # outputs differ from it only by floating-point rounding
    model, alpha_bar, manifest = ddpm.load_ddpm()
    target = manifest["config"]["prediction_type"]
    on_cpu = samplers.sample_ddim(model, 4, alpha_bar, 10, torch.Generator().manual_seed(0), progress=False,
                                  prediction_type=target)
    on_gpu = samplers.sample_ddim(model.to(CUDA), 4, alpha_bar, 10, torch.Generator().manual_seed(0), progress=False,
                                  prediction_type=target)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-3, rtol=0)
    stochastic = ddpm.sample_ddpm(model, 4, alpha_bar, 10, torch.Generator().manual_seed(0), progress=False,
                                  prediction_type=target)
    assert stochastic.device.type == "cuda" and torch.isfinite(stochastic).all()


def test_measures_take_cuda_images(digits):
    classifier = metrics.load_classifier()
    features, probabilities = metrics.classify(classifier, digits.to(CUDA))
    expected = metrics.classify(classifier, digits)
    torch.testing.assert_close(probabilities, expected[1])
    attributes = captions.measure_attributes(digits.to(CUDA))
    for name, values in captions.measure_attributes(digits).items():
        torch.testing.assert_close(attributes[name].cpu(), values, atol=1e-4, rtol=1e-4)


def test_vae_encodes_and_decodes_on_cuda(digits):
    vae = latents.load_vae().to(CUDA)
    z = latents.encode(vae, digits.to(CUDA))
    images = latents.decode(vae, z)
    assert z.device.type == images.device.type == "cuda"
    assert latents.psnr(images.cpu(), digits).mean().item() > 20.0
