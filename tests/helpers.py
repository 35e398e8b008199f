"""Test helpers: the package's own (shared with the demo), plus rel_err."""

from safesvd._testing import (  # noqa: F401
    autograd_grad,
    finite_difference_grad,
    unitary,
    with_eigenvalues,
    with_singular_values,
)


def rel_err(a, b):
    # The floor keeps a gradient that is exactly 0 (rounding noise on both sides) from failing.
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-6)).item()
