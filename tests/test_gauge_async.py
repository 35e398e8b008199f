"""The non-blocking gauge check (python/safesvd/_gauge.py, docs/math.md "Gauge check").

In mode "warn" on CUDA the backward does not read the device: it queues a device-side
summary (residual, matrix, pair, spectrum) copied to pinned memory behind an event and
reports it once the event has completed. The logic is tested here on the CPU, with the
"reading blocks" predicate switched on for CPU tensors and an event the test controls.
"""

import warnings

import pytest
import torch

import safesvd
from safesvd import _gauge
from helpers import with_singular_values


class ControlledEvent:
    def __init__(self):
        self.done = False
        self.waited = False

    def query(self):
        return self.done

    def synchronize(self):
        self.waited = True
        self.done = True


@pytest.fixture
def async_cpu(monkeypatch):
    """CPU tensors treated like CUDA ones; every queued check gets a ControlledEvent."""
    events = []

    def event_for(device):
        e = ControlledEvent()
        events.append(e)
        return e

    monkeypatch.setattr(_gauge, "_reads_block", lambda t: True)
    monkeypatch.setattr(_gauge, "_event_for", event_for)
    _gauge._pending.clear()
    previous = _gauge.set_cpp_backward(False)  # every check through Python, as on CUDA
    yield events
    _gauge._pending.clear()
    _gauge.set_cpp_backward(previous)


def basis_dependent_backward(batch=3, bad=1):
    """A loss that reads U inside the repeated pair of matrix `bad` only."""
    mats = [with_singular_values([3.0, 2.0, 1.0], 3, 3, torch.float64) for _ in range(batch)]
    mats[bad] = with_singular_values([2.0, 2.0, 1.0], 3, 3, torch.float64)
    A = torch.stack(mats).requires_grad_()
    U, S, Vh = safesvd.svd(A)
    W = torch.zeros(batch, 3, 3, dtype=torch.float64)
    W[bad, :, 0] = 1.0  # the first column of U: a basis choice inside (2, 2)
    return A, (U * W).sum()


def invariant_backward():
    A = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    return A, safesvd.svdvals(A).sum()


def test_warn_mode_queues_and_reports_later(async_cpu):
    A, loss = basis_dependent_backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may be reported during this backward
        loss.backward()
    assert torch.isfinite(A.grad).all()
    assert _gauge.pending_gauge_checks() == 1 and not async_cpu[0].waited
    with pytest.warns(safesvd.GaugeWarning, match=r"S\[0\] = 2 and S\[1\] = 2.*matrix \(1,\).*does not wait"):
        safesvd.flush_gauge_warnings()
    assert _gauge.pending_gauge_checks() == 0 and async_cpu[0].waited


def test_a_later_backward_reports_only_completed_checks(async_cpu):
    _, loss = basis_dependent_backward()
    loss.backward()
    _, loss2 = invariant_backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss2.backward()  # the first copy has not "arrived": nothing reported, nothing waited for
    assert not async_cpu[0].waited and _gauge.pending_gauge_checks() == 2
    async_cpu[0].done = True
    _, loss3 = invariant_backward()
    with pytest.warns(safesvd.GaugeWarning, match="degenerate subspace"):
        loss3.backward()
    # the invariant losses' checks are still queued (their events have not completed)
    assert not async_cpu[1].waited and _gauge.pending_gauge_checks() == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an invariant loss is never reported
        safesvd.flush_gauge_warnings()
    assert _gauge.pending_gauge_checks() == 0 and all(e.done for e in async_cpu)


def test_raise_mode_waits_and_raises_in_the_backward(async_cpu):
    with safesvd.gauge_mode("raise"):
        _, loss = basis_dependent_backward()
        with pytest.raises(safesvd.GaugeWarning, match="degenerate subspace"):
            loss.backward()
    assert _gauge.pending_gauge_checks() == 0 and not async_cpu


def test_ignore_mode_queues_nothing(async_cpu):
    with safesvd.gauge_mode("ignore"):
        _, loss = basis_dependent_backward()
        loss.backward()
    assert _gauge.pending_gauge_checks() == 0 and not async_cpu


def test_mode_change_reports_completed_checks_as_queued(async_cpu):
    _, loss = basis_dependent_backward(batch=2, bad=0)
    loss.backward()
    async_cpu[0].done = True
    with pytest.warns(safesvd.GaugeWarning, match=r"matrix \(0,\)"):
        safesvd.set_gauge_mode("ignore")  # the check ran under "warn": it still warns
    safesvd.set_gauge_mode("warn")
    assert _gauge.pending_gauge_checks() == 0


def test_eigh_and_batch_shape_in_the_message(async_cpu):
    L0 = torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64)
    Q0 = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    A = ((Q0 * L0) @ Q0.mT).expand(2, 2, 3, 3).clone().requires_grad_()
    L, Q = safesvd.eigh(A)
    W = torch.zeros_like(Q)
    W[1, 0, :, 0] = 1.0
    (Q * W).sum().backward()
    with pytest.warns(safesvd.GaugeWarning, match=r"L\[0\] = 1 and L\[1\] = 1.*matrix \(1, 0\)"):
        safesvd.flush_gauge_warnings()


def test_queue_is_bounded(async_cpu, monkeypatch):
    monkeypatch.setattr(_gauge, "_MAX_PENDING", 3)
    for _ in range(5):
        _, loss = invariant_backward()
        loss.backward()
    assert _gauge.pending_gauge_checks() == 3
    assert [e.waited for e in async_cpu] == [True, True, False, False, False]
    safesvd.flush_gauge_warnings()


def test_cpu_default_is_synchronous():
    """Without the patch a CPU backward reports in the backward itself."""
    _, loss = basis_dependent_backward()
    with pytest.warns(safesvd.GaugeWarning, match="degenerate subspace"):
        loss.backward()
    assert _gauge.pending_gauge_checks() == 0
