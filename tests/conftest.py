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
