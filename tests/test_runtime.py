"""course_utils.runtime.setup: reproducible seeds, fixed threads, a valid device, clear errors."""
import random

import numpy as np
import pytest
import torch

from course_utils import runtime


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def draws():
    return random.random(), float(np.random.rand()), torch.randn(5).tolist()


def test_same_seed_same_numbers():
    runtime.setup(seed=123, threads=1)
    first = draws()
    runtime.setup(seed=123, threads=1)
    assert draws() == first


def test_different_seed_different_numbers():
    runtime.setup(seed=1, threads=1)
    first = draws()
    runtime.setup(seed=2, threads=1)
    second = draws()
    assert all(a != b for a, b in zip(first, second))


def test_threads_are_set():
    runtime.setup(seed=0, threads=1)
    assert torch.get_num_threads() == 1
    runtime.setup(seed=0, threads=2)
    assert torch.get_num_threads() == 2


def test_returns_a_device():
    device = runtime.setup(seed=0, threads=1)
    assert isinstance(device, torch.device)
    assert device.type in ("cpu", "cuda", "mps")
    assert runtime.setup(seed=0, threads=1, device="cpu") == torch.device("cpu")


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", None, True, 100_000])
def test_bad_threads_raise(threads):
    """100,000 threads used to pass and then crash the kernel in the first matrix product."""
    with pytest.raises((ValueError, TypeError), match=r"threads must be an integer in \[1, 256\]"):
        runtime.setup(seed=0, threads=threads)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_a_missing_gpu_fails_at_once():
    with pytest.raises(ValueError, match="device 'cuda' was asked for, but this torch sees no CUDA GPU"):
        runtime.setup(seed=0, threads=1, device="cuda")


@pytest.mark.parametrize("seed", [-1, 2**32, 0.5, "0", None])
def test_bad_seed_raises(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        runtime.setup(seed=seed, threads=1)


@pytest.mark.parametrize("device", ["tpu", "gpu", "", "CPU"])
def test_bad_device_raises(device):
    with pytest.raises(ValueError, match="device must be one of"):
        runtime.setup(seed=0, threads=1, device=device)


def test_a_seeded_cpu_generator_draws_the_same_noise_for_every_device():
    # the samplers draw with runtime.random_normal: a GPU run starts from the noise of the stored CPU run
    # ("meta" stands in for a GPU here: a device that is not the CPU)
    expected = torch.randn((2, 3), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(runtime.random_normal((2, 3), torch.Generator().manual_seed(5)), expected)
    assert runtime.random_normal((2, 3), torch.Generator().manual_seed(5), "meta").device.type == "meta"
    steps = runtime.random_integers(1000, 4, torch.Generator().manual_seed(5), "meta")
    assert steps.device.type == "meta" and steps.dtype == torch.int64
    expected_steps = torch.randint(0, 1000, (4,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(runtime.random_integers(1000, 4, torch.Generator().manual_seed(5)), expected_steps)
    sigmas = runtime.random_uniform((4,), torch.Generator().manual_seed(5), "meta")
    assert sigmas.device.type == "meta" and sigmas.dtype == torch.float32
    expected_sigmas = torch.rand((4,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(runtime.random_uniform((4,), torch.Generator().manual_seed(5)), expected_sigmas)


def test_synchronize_waits_on_a_real_device_and_refuses_others():
    runtime.synchronize("cpu")  # nothing queued on the CPU: returns at once
    runtime.synchronize(torch.device("cpu"))
    with pytest.raises(ValueError, match=r"^device must be one of 'cpu', 'cuda', 'mps', got 'meta'"):
        runtime.synchronize("meta")  # a device that runs nothing has nothing to wait for: a mistake
    with pytest.raises(TypeError, match=r"^device must be a string or torch.device"):
        runtime.synchronize(0)
