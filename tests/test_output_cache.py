"""The CPU output cache (csrc/aten/output_cache.cpp): its memory must never show through.

Two checks per path. Poisoned: the cache fills every block it hands out (new or reused,
outputs and temporaries alike) with 0xff bytes (NaN in float, -1 in int32) through a test
hook, and the results must be bit for bit those of a call on fresh memory (the cache
off): an entry an operator reads or returns without writing it would differ. Reused: a
second call takes the blocks of a first one whose outputs were filled with NaN."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import safesvd
from safesvd import _testing

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache():
    """The cache on (256 MiB) and empty; its earlier limit restored afterwards."""
    before = safesvd.cpu_output_cache()["limit_bytes"]
    safesvd.cpu_output_cache(256 << 20, clear=True)
    yield
    safesvd.cpu_output_cache(before, clear=True)


def _on_fresh_memory(run):
    """run() -> tensors: copies of its results with the cache off (every block from
    at::empty), the cache's limit restored afterwards."""
    limit = safesvd.cpu_output_cache()["limit_bytes"]
    safesvd.cpu_output_cache(0)
    try:
        return [t.clone() for t in run()]
    finally:
        safesvd.cpu_output_cache(limit)


def _poisoned_then_fresh(run):
    """run() -> tensors. Results with the cache off, then with every block of a first
    call poisoned and reused; both returned."""
    fresh = _on_fresh_memory(run)
    first = run()
    for t in first:
        t.fill_(float("nan"))
    del first
    reuses = safesvd.cpu_output_cache()["reuses"]
    again = run()
    assert safesvd.cpu_output_cache()["reuses"] > reuses, "the second call took no block from the cache"
    return fresh, again


def _fwd_bwd(f, A, seed=0, quiet=True):
    """f's outputs and the gradient of a random linear loss of all of them (whose
    dependence on the basis is beside the point here: gauge checks off when quiet; the
    mode is global, so threads leave it alone)."""
    X = A.clone().requires_grad_()
    outs = f(X)
    g = torch.Generator().manual_seed(seed)
    cot = [torch.randn(o.shape, dtype=o.dtype, generator=g) for o in outs]
    if quiet:
        with safesvd.gauge_mode("ignore"):
            torch.autograd.backward(list(outs), cot)
    else:
        torch.autograd.backward(list(outs), cot)
    return [o.detach() for o in outs] + [X.grad]


CASES = [
    ("svd", (4096, 3, 3), torch.float32),
    ("svd", (2048, 8, 8), torch.float64),
    ("svd", (256, 24, 24), torch.float64),
    ("svd", (512, 64, 16), torch.float32),
    ("svd", (512, 16, 64), torch.float64),
    ("svd", (4096, 8, 3), torch.float32),
    ("svd_full", (512, 12, 5), torch.float64),
    ("svd_lapack", (512, 8, 8), torch.float64),
    ("eigh", (2048, 8, 8), torch.float32),
    ("eigh", (128, 40, 40), torch.float64),
    ("eigh_lapack", (512, 8, 8), torch.float64),
    ("svd_complex", (1024, 6, 6), torch.complex128),
    ("sqrtm", (256, 32, 32), torch.float64),
    ("svd_fn", (512, 12, 12), torch.float32),
    ("svdvals", (4096, 5, 5), torch.float64),
]


def _op(name):
    if name.startswith("svd_fn"):
        return lambda X: (safesvd.svd_fn(X, torch.tanh, lambda s: 1 - torch.tanh(s) ** 2),)
    if name == "svd_full":
        return lambda X: safesvd.svd(X, full_matrices=True)
    if name == "svd_lapack":
        return lambda X: safesvd.svd(X, driver="lapack")
    if name.startswith("svd") and name != "svdvals":
        return safesvd.svd
    if name == "eigh_lapack":
        return lambda X: safesvd.eigh(X, driver="lapack")
    if name == "eigh":
        return safesvd.eigh
    if name == "sqrtm":
        return lambda X: (safesvd.sqrtm(X),)
    return lambda X: (safesvd.svdvals(X),)


def _input(name, shape, dtype):
    A = torch.randn(shape, dtype=dtype)
    if name.startswith("eigh") or name == "sqrtm":
        A = A @ A.mH / shape[-1] + 0.1 * torch.eye(shape[-1], dtype=dtype)  # positive definite for sqrtm
    return A


def _assert_same(fresh, got):
    assert len(fresh) == len(got)
    for a, b in zip(fresh, got):
        assert a.shape == b.shape and a.stride() == b.stride()
        assert torch.equal(a, b)


IDS = [f"{c[0]}-{'x'.join(map(str, c[1]))}-{c[2]}" for c in CASES]


@pytest.mark.parametrize("name,shape,dtype", CASES, ids=IDS)
def test_reused_blocks_never_show_through(cache, name, shape, dtype):
    A = _input(name, shape, dtype)
    f = _op(name)
    _assert_same(*_poisoned_then_fresh(lambda: _fwd_bwd(f, A)))


@pytest.mark.parametrize("name,shape,dtype", CASES, ids=IDS)
def test_poisoned_blocks_never_show_through(cache, name, shape, dtype):
    A = _input(name, shape, dtype)
    f = _op(name)
    fresh = _on_fresh_memory(lambda: _fwd_bwd(f, A))
    new_blocks = safesvd.cpu_output_cache()["new_blocks"]
    with _testing.cpu_cache_poison():
        got = _fwd_bwd(f, A)
    assert safesvd.cpu_output_cache()["new_blocks"] > new_blocks or safesvd.cpu_output_cache()["reuses"] > 0
    _assert_same(fresh, got)


def test_poisoned_large_batch_with_gauge_checks(cache):
    """B = 20000: the int32 convergence flags and the (B, 3) gauge residuals come from the
    cache too (>= 64 KiB); a 0xff residual (NaN) would warn, a -1 flag be a redo."""
    A = torch.randn(20_000, 4, 4, dtype=torch.float64)

    def run():
        X = A.clone().requires_grad_()
        U, S, Vh = safesvd.svd(X)
        (S.sum() + (U[..., 0] * Vh[..., 0, :]).sum()).backward()  # no gauge dependence: no warning
        return [U.detach(), S.detach(), Vh.detach(), X.grad]

    fresh = _on_fresh_memory(run)
    with _testing.cpu_cache_poison(), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = run()
    _assert_same(fresh, got)


def test_poisoned_second_order(cache):
    """The matrix functions' second-order terms (second_order_in_basis) on poisoned blocks."""
    A = _input("eigh", (512, 12, 12), torch.float64)

    def run():
        X = A.clone().requires_grad_()
        Y = safesvd.sqrtm(X)
        (g,) = torch.autograd.grad((Y * Y).sum(), X, create_graph=True)
        (h,) = torch.autograd.grad((g * g).sum(), X)
        return [Y.detach(), g.detach(), h]

    fresh = _on_fresh_memory(run)
    with _testing.cpu_cache_poison():
        got = run()
    _assert_same(fresh, got)


def test_limit_and_clear(cache):
    A = torch.randn(2048, 8, 8, dtype=torch.float64)  # U and Vh 1 MiB each
    outs = safesvd.svd(A)
    del outs
    info = safesvd.cpu_output_cache()
    assert info["idle_blocks"] >= 2 and info["idle_bytes"] >= 2 * A.numel() * 8
    # A lower limit drops the oldest blocks at once; a block over the limit is not kept.
    info = safesvd.cpu_output_cache(A.numel() * 8 + 4096)
    assert info["idle_bytes"] <= info["limit_bytes"]
    outs = safesvd.svd(A)
    del outs
    info = safesvd.cpu_output_cache()
    assert info["idle_bytes"] <= info["limit_bytes"]
    assert safesvd.cpu_output_cache(clear=True)["idle_bytes"] == 0
    # Limit 0: nothing kept, nothing taken.
    safesvd.cpu_output_cache(0)
    before = safesvd.cpu_output_cache()
    outs = safesvd.svd(A)
    del outs
    after = safesvd.cpu_output_cache()
    assert after["idle_blocks"] == 0
    assert (after["reuses"], after["new_blocks"]) == (before["reuses"], before["new_blocks"])


def test_outputs_are_ordinary_tensors(cache):
    A = torch.randn(4096, 4, 4)
    U, S, Vh = safesvd.svd(A)
    assert U.is_contiguous() is False and U.mT.is_contiguous()  # column-major, as torch.linalg.svd
    # resize_ (through the cache's allocator), a copy, numpy, pickling, and a view that
    # outlives its base all behave as for any CPU tensor.
    S2 = S.clone()
    S.resize_(S.numel() * 2)
    assert torch.equal(S[: S2.numel()], S2.flatten())
    assert torch.equal(torch.from_numpy(Vh.numpy()), Vh)
    import io
    import pickle

    buffer = io.BytesIO()
    torch.save(U, buffer)
    buffer.seek(0)
    assert torch.equal(torch.load(buffer), U)
    assert torch.equal(pickle.loads(pickle.dumps(Vh)), Vh)
    row = U[0].clone()
    view = U[0]
    del U
    assert torch.equal(view, row)


def test_bad_arguments(cache):
    with pytest.raises(ValueError, match=">= 0"):
        safesvd.cpu_output_cache(-1)
    with pytest.raises(TypeError, match="int"):
        safesvd.cpu_output_cache(1.5)
    with pytest.raises(TypeError, match="bool"):
        safesvd.cpu_output_cache(True)
    import numpy as np

    assert safesvd.cpu_output_cache(np.int64(1 << 20))["limit_bytes"] == 1 << 20


def test_deterministic_fill_is_kept():
    """With torch.use_deterministic_algorithms(True) and its fill of uninitialized memory,
    the operators allocate through at::empty (which fills): results as usual."""
    A = torch.randn(2048, 8, 8, dtype=torch.float64)
    U, S, Vh = safesvd.svd(A)
    before = safesvd.cpu_output_cache()
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        U2, S2, Vh2 = safesvd.svd(A)
    finally:
        torch.use_deterministic_algorithms(previous)
    after = safesvd.cpu_output_cache()
    assert (after["reuses"], after["new_blocks"]) == (before["reuses"], before["new_blocks"])
    assert torch.equal(S, S2) and torch.equal(U, U2) and torch.equal(Vh, Vh2)


def _in_subprocess(env_value: str, code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SAFESVD_CPU_CACHE_MB=env_value, PYTHONPATH=str(ROOT / "python"))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_environment_variable():
    code = ("import torch, safesvd; safesvd.load(); U, S, Vh = safesvd.svd(torch.randn(2048, 8, 8)); del U, S, Vh; "
            "print(safesvd.cpu_output_cache())")
    off = _in_subprocess("0", code)
    assert off.returncode == 0, off.stderr
    info = eval(off.stdout.strip().splitlines()[-1])  # noqa: S307 - our own dict repr
    assert info["limit_bytes"] == 0 and info["idle_blocks"] == 0 and info["reuses"] == 0
    small = _in_subprocess("1.5", code)
    assert small.returncode == 0, small.stderr
    assert eval(small.stdout.strip().splitlines()[-1])["limit_bytes"] == int(1.5 * 2**20)  # noqa: S307
    bad = _in_subprocess("lots", code)
    assert bad.returncode != 0 and "SAFESVD_CPU_CACHE_MB" in bad.stderr


def test_threads_share_the_cache(cache):
    """Calls from several Python threads at once take and return blocks concurrently
    (the cache's lock): every result is the one a lone call gives."""
    import threading

    inputs = [torch.randn(1024, 6, 6, dtype=torch.float64) for _ in range(4)]  # distinct values: no gauge issue
    expected = [[t.clone() for t in _fwd_bwd(safesvd.svd, A, quiet=False)] for A in inputs]
    failures = []

    def work(i):
        for _ in range(10):
            got = _fwd_bwd(safesvd.svd, inputs[i], quiet=False)
            if not all(torch.equal(a, b) for a, b in zip(expected[i], got)):
                failures.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert safesvd.cpu_output_cache()["reuses"] > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_uses_the_cache(cache):
    """A forked child (a DataLoader worker) inherits the idle blocks and the cache's state
    and runs the operators on them. (The fork handlers take the cache's lock around
    fork(); a child forked while another thread is inside the cache is not tested here:
    about 200 such forks, one child hung, under a parallel build, stack unknown; forking a
    process whose other threads run OpenMP is outside what libgomp promises.)"""
    import time

    A = torch.randn(2048, 8, 8, dtype=torch.float64)
    S_ref = torch.linalg.svdvals(A)
    U, S, Vh = safesvd.svd(A)
    del U, S, Vh  # idle blocks of the right sizes in the parent
    pid = os.fork()
    if pid == 0:  # the child: an exit code only, never back into pytest
        code = 3
        try:
            torch.set_num_threads(1)
            before = safesvd.cpu_output_cache()["reuses"]
            U, S, Vh = safesvd.svd(A)
            good = torch.allclose(S, S_ref, rtol=1e-10, atol=1e-12)
            code = 0 if good and safesvd.cpu_output_cache()["reuses"] > before else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0
