"""CUDA: an nvcc compile check of every CUDA source of csrc/manifest.txt (wherever nvcc
exists, CI included), and GPU-vs-CPU tests of every backward op (skipped without a GPU)."""

import re
from pathlib import Path

import pytest
import torch

import safesvd
from conftest import cuda_ready
from safesvd import _manifest
from helpers import find_nvcc, nvcc_compile, with_eigenvalues, with_singular_values

ROOT = Path(__file__).resolve().parent.parent


CUDA_SOURCES = [s.path for s in _manifest.read(ROOT).sources if s.group in ("cuda", "cuda_jacobi")]


@pytest.mark.parametrize("source", CUDA_SOURCES)
def test_cuda_source_compiles_with_nvcc(source):
    """Compile every CUDA source of csrc/manifest.txt (the host glue and each kernel
    unit) against the installed torch's headers, so a CUDA compile error fails CI even
    though CI has no GPU (and maybe a CPU-only torch). With `-Xptxas -v` for sm_90: a
    kernel that spills registers to local memory fails."""
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found: the CUDA sources cannot be compile-checked here")
    # Started in the background when the suite was collected (tests/conftest.py), one
    # per core, beside the rest of the suite; these tests are moved last.
    result = nvcc_compile(source, nvcc).result()
    assert result.returncode == 0, f"nvcc failed:\n{result.stderr[-6000:]}"
    if not source.endswith(".cu"):
        return  # host code: no kernels, no ptxas report
    report = result.stdout + result.stderr
    usage = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", report)
    assert usage, "no ptxas resource report in nvcc's output"
    spills = [line for line in report.splitlines() if re.search(r"[1-9]\d* bytes spill (stores|loads)", line)]
    assert not spills, f"{len(spills)} kernels spill registers (sm_90):\n" + "\n".join(spills[:20])


# ------------------------------------------------------------ on a GPU

needs_gpu = pytest.mark.skipif(not cuda_ready(), reason="needs a CUDA device and safesvd built with CUDA")
DTYPES = [torch.float32, torch.float64, torch.complex64, torch.complex128]


def _tolerance(dtype):
    return dict(rtol=2e-3, atol=2e-3) if dtype in (torch.float32, torch.complex64) else dict(rtol=1e-9, atol=1e-9)


def _batch(m, n, dtype):
    k = min(m, n)
    base = torch.float64 if not dtype.is_complex else torch.complex128
    mats = [torch.randn(m, n, dtype=base), with_singular_values([2, 2] + [1] * (k - 2), m, n, base),
            with_singular_values([1] + [0] * (k - 1), m, n, base)] if k >= 2 else [torch.randn(m, n, dtype=base)]
    return torch.stack(mats).to(dtype)


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", [(1, 1), (2, 4), (4, 3), (3, 3), (4, 4), (5, 5), (8, 8), (6, 4), (4, 6), (16, 16),
                                 (24, 24), (32, 32), (33, 20), (20, 33), (64, 64)])
@pytest.mark.parametrize("subset", [("U",), ("S",), ("Vh",), ("U", "S", "Vh")])
def test_svd_backward_gpu_equals_cpu(dtype, m, n, subset):
    A = _batch(m, n, dtype)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    g = {"U": torch.randn_like(U), "S": torch.randn_like(S), "Vh": torch.randn_like(Vh)}
    args = [g[name] if name in subset else None for name in ("U", "S", "Vh")]
    cpu = torch.ops.safesvd._svd_backward(*args, U, S, Vh, "pinv", None, None)
    cuda_args = [a.cuda() if a is not None else None for a in args]
    gpu = torch.ops.safesvd._svd_backward(*cuda_args, U.cuda(), S.cuda(), Vh.cuda(), "pinv", None, None)
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], **_tolerance(dtype))
    torch.testing.assert_close(gpu[1].cpu()[..., 0], cpu[1][..., 0], **_tolerance(dtype))


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 4, 5, 8, 12, 16, 17, 32, 40])
def test_eigh_and_fn_backward_gpu_equals_cpu(dtype, n):
    base = torch.float64 if not dtype.is_complex else torch.complex128
    A = torch.stack([with_eigenvalues([1.0] * (n // 2) + [2.0] * (n - n // 2), base), with_eigenvalues(torch.rand(n) + 0.5, base)]).to(dtype)
    L, Q = torch.linalg.eigh(A)
    gL, gQ, G = torch.randn_like(L), torch.randn_like(Q), torch.randn_like(Q)
    cpu = torch.ops.safesvd._eigh_backward(gL, gQ, L, Q, "pinv", None, None)[0]
    gpu = torch.ops.safesvd._eigh_backward(gL.cuda(), gQ.cuda(), L.cuda(), Q.cuda(), "pinv", None, None)[0]
    torch.testing.assert_close(gpu.cpu(), cpu, **_tolerance(dtype))
    cpu = torch.ops.safesvd._eigh_fn_backward(G, L, Q, L.exp(), L.exp(), None, None)[0]
    gpu = torch.ops.safesvd._eigh_fn_backward(G.cuda(), L.cuda(), Q.cuda(), L.exp().cuda(), L.exp().cuda(), None, None)[0]
    torch.testing.assert_close(gpu.cpu(), cpu, **_tolerance(dtype))
    U, S, Vh = torch.linalg.svd(A)
    cpu = torch.ops.safesvd._svd_fn_backward(G, U, S, Vh, S.tanh(), 1 - S.tanh() ** 2, None, None)[0]
    gpu = torch.ops.safesvd._svd_fn_backward(G.cuda(), U.cuda(), S.cuda(), Vh.cuda(), S.tanh().cuda(),
                                             (1 - S.tanh() ** 2).cuda(), None, None)[0]
    torch.testing.assert_close(gpu.cpu(), cpu, **_tolerance(dtype))


@needs_gpu
def test_public_api_on_gpu_degenerate_float32_is_finite():
    A = torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0])).repeat(1000, 1, 1).cuda().requires_grad_()
    U, S, Vh = safesvd.svd(A)
    torch.linalg.norm((U * S.unsqueeze(-2)) @ Vh, dim=(-2, -1)).sum().backward()
    assert torch.isfinite(A.grad).all()
    torch.testing.assert_close(A.grad[0].cpu(), torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0])) / 15 ** 0.5)
    C = torch.eye(6).repeat(100, 1, 1).cuda().requires_grad_()
    safesvd.sqrtm(C).sum().backward()
    torch.testing.assert_close(C.grad.cpu(), torch.full((100, 6, 6), 0.5))


@needs_gpu
def test_non_contiguous_and_non_default_stream():
    A = torch.randn(6, 9, 7, dtype=torch.float64, device="cuda")[::2].mT
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    gU = torch.randn(3, 5, 7, dtype=torch.float64, device="cuda").mT[..., :5, :]
    ref = torch.ops.safesvd._svd_backward(gU.cpu(), None, None, U.cpu(), S.cpu(), Vh.cpu(), "pinv", None, None)[0]
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = torch.ops.safesvd._svd_backward(gU, None, None, U, S, Vh, "pinv", None, None)[0]
    stream.synchronize()
    torch.testing.assert_close(out.cpu(), ref)


@needs_gpu
def test_cuda_graph_capture():
    A = torch.randn(256, 4, 4, device="cuda")
    U, S, Vh = torch.linalg.svd(A)
    gU, gS, gVh = torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)
    expected = torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, "pinv", None, None)[0].clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm up off the default stream, as capture requires
        torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, "pinv", None, None)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, "pinv", None, None)[0]
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(out, expected)


@needs_gpu
def test_emulated_kernels_equal_the_gpu():
    """The emulation is faithful: the same kernel units, run on the CPU through the CUDA
    emulation and on the GPU, give the same results on the same inputs (the band kernels,
    the generic kernel, the matrix functions and, where built, the forward engine). The
    GPU contracts multiply-adds, the emulation does not: rounding-level differences."""
    from helpers import build_emulated
    from safesvd._testing import cpu_kernels

    emulated = build_emulated()

    def both(run, *inputs):
        gpu = run(*(x.cuda() for x in inputs))
        with cpu_kernels(emulated.table()):
            emu = run(*inputs)
        return [g.cpu() for g in gpu], list(emu)

    for (m, n), dtype in [((3, 3), torch.float64), ((4, 2), torch.float32), ((16, 16), torch.float64),
                          ((24, 24), torch.float32), ((6, 4), torch.float64), ((4, 4), torch.complex128)]:
        A = _batch(m, n, dtype)
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        gU, gS, gVh = torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)
        gpu, emu = both(lambda *t: torch.ops.safesvd._svd_backward(*t, "pinv", None, None), gU, gS, gVh, U, S, Vh)
        torch.testing.assert_close(gpu[0], emu[0], **_tolerance(dtype))
    for n, dtype in [(3, torch.float32), (12, torch.float64), (8, torch.complex64)]:
        base = torch.float64 if not dtype.is_complex else torch.complex128
        A = torch.stack([with_eigenvalues([1.0] * (n // 2) + [2.0] * (n - n // 2), base),
                         with_eigenvalues(torch.rand(n) + 0.5, base)]).to(dtype)
        L, Q = torch.linalg.eigh(A)
        gL, gQ, G = torch.randn_like(L), torch.randn_like(Q), torch.randn_like(Q)
        gpu, emu = both(lambda *t: torch.ops.safesvd._eigh_backward(*t, "pinv", None, None), gL, gQ, L, Q)
        torch.testing.assert_close(gpu[0], emu[0], **_tolerance(dtype))
        gpu, emu = both(lambda *t: torch.ops.safesvd._eigh_fn_backward(*t, None, None), G, L, Q, L.exp(), L.exp())
        torch.testing.assert_close(gpu[0], emu[0], **_tolerance(dtype))
    try:
        safesvd.svd(torch.eye(3, device="cuda").unsqueeze(0), driver="jacobi")
    except ValueError:
        return  # this build has no engine on CUDA (SAFESVD_CUDA_JACOBI)
    for n, dtype in [(3, torch.float32), (8, torch.float64), (16, torch.float32)]:
        A = _batch(n, n, dtype)
        gpu, emu = both(lambda X: safesvd.svd(X, driver="jacobi"), A)
        torch.testing.assert_close(gpu[1], emu[1], **_tolerance(dtype))  # singular values
        torch.testing.assert_close((gpu[0] * gpu[1].unsqueeze(-2)) @ gpu[2], A, **_tolerance(dtype))
