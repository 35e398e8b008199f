import pytest
import torch

import safesvd

# Tests run against the built extension (make build) or, in a bare source
# checkout, a JIT build of csrc/.
safesvd.load()


def cuda_ready() -> bool:
    return torch.cuda.is_available() and torch.ops.safesvd._has_device_kernels("cuda")


# The op tests run on every available device: a GPU machine runs the same suite on CUDA.
# (Without a GPU, the CUDA kernels run through the emulation: tests marked cuda_emulated.)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not cuda_ready(), reason="needs a CUDA device and the CUDA kernels"))]


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)


NVCC_CHECK = "test_cuda_source_compiles_with_nvcc"


def pytest_collection_modifyitems(session, config, items):
    """Start the nvcc compile checks (minutes, one thread each) as soon as the suite is
    collected, and run the tests that wait for them last, so nvcc overlaps the rest."""
    from helpers import find_nvcc, nvcc_compile

    checks = [item for item in items if item.originalname == NVCC_CHECK]
    if not checks or config.option.collectonly:
        return
    nvcc = find_nvcc()
    if nvcc is not None:
        for item in checks:
            nvcc_compile(item.callspec.params["source"], nvcc)
    items[:] = [item for item in items if item.originalname != NVCC_CHECK] + checks
