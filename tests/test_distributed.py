"""A 2-process DistributedDataParallel step (gloo, CPU) through safesvd.svd and safesvd.sqrtm:
gradients equal across ranks and equal to the single-process run."""

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 4, dtype=torch.float64)

    def forward(self, x):
        import safesvd

        Y = self.lin(x)  # (B, 4, 4)
        U, S, Vh = safesvd.svd(Y)
        C = safesvd.sqrtm(Y @ Y.mT + torch.eye(4, dtype=Y.dtype))  # covariance pooling
        return (U @ Vh).pow(2).sum() + S.sum() + C.sum()


def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 4, 4, dtype=torch.float64, generator=g)
    x[0] = torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=torch.float64))  # a degenerate sample
    return x


def _worker(rank, world, port, out_dir, python_path):
    sys.path[:0] = python_path
    import safesvd

    safesvd.load()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = torch.nn.parallel.DistributedDataParallel(Model())
        x = data()[rank::world]
        model(x).backward()
        torch.save(model.module.lin.weight.grad, Path(out_dir) / f"grad{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes(tmp_path):
    python_path = [p for p in sys.path if p]
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), python_path), nprocs=2, join=True)
    g0, g1 = torch.load(tmp_path / "grad0.pt"), torch.load(tmp_path / "grad1.pt")
    torch.testing.assert_close(g0, g1, rtol=0, atol=0)
    # DDP averages the per-rank gradients of the per-rank losses.
    model = Model()
    x = data()
    (0.5 * (model(x[0::2]) + model(x[1::2]))).backward()
    assert torch.isfinite(g0).all()
    torch.testing.assert_close(g0, model.lin.weight.grad, rtol=1e-12, atol=1e-12)
