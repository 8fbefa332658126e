"""Numerics of the softmax family and losses in float32 at large magnitudes, against float64
references derived here and against PyTorch (when installed)."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn.nn import functional as F

try:
    import torch
except ImportError:  # PyTorch is never a dependency: its comparisons are skipped without it
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")


def _lse64(x, axis):
    """logsumexp in float64 of the exact values of ``x`` (the reference, not the code under test)."""
    x = x.astype(np.float64)
    m = x.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _large_logits(seed, scale):
    """float32 (4, 5) logits: a common offset of size ``scale`` plus spreads of a few units."""
    rng = np.random.default_rng(seed)
    return (scale * rng.choice([-1.0, 1.0], (4, 1)) + rng.uniform(-3, 3, (4, 5))).astype(np.float32)


def test_log_softmax_of_equal_large_negative_logits_is_minus_log3_in_float32():
    # Every shifted logit is exactly 0, so the result is -log(3) rounded once to float32.
    for x in (np.full(3, -1e4, np.float32), np.full(3, 1e4, np.float32), np.full(3, -3e7, np.float32)):
        y = F.log_softmax(tg.Tensor(x))
        assert y.dtype == np.float32
        np.testing.assert_allclose(y.data, -math.log(3.0), rtol=0, atol=1e-6)
    loss = F.cross_entropy(tg.Tensor(np.full((2, 3), -1e4, np.float32)), np.array([0, 2]))
    assert abs(loss.item() - math.log(3.0)) < 1e-6


@pytest.mark.parametrize("scale", [1e4, 1e5, 3e6])
@pytest.mark.parametrize("seed", [0, 1])
def test_softmax_family_matches_float64_reference_at_large_magnitude(scale, seed):
    x = _large_logits(seed, scale)
    ref = x.astype(np.float64) - _lse64(x, 1)
    # Relative to each value: the large entries (x - max of order `scale`) are exact in float32 too.
    np.testing.assert_allclose(F.log_softmax(tg.Tensor(x), axis=1).data, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(F.softmax(tg.Tensor(x), axis=1).data, np.exp(ref), rtol=1e-6, atol=1e-7)
    labels = np.array([0, 1, 2, 4])
    ce = F.cross_entropy(tg.Tensor(x), labels, reduction="none").data
    np.testing.assert_allclose(ce, -ref[np.arange(4), labels], rtol=1e-6, atol=1e-6)


@needs_torch
@pytest.mark.parametrize("scale", [1e4, 1e5, 3e6])
def test_softmax_family_and_cross_entropy_match_torch_in_float32(scale):
    x = _large_logits(7, scale)
    tx = torch.tensor(x)
    for ours, theirs in (
        (lambda a: F.log_softmax(a, axis=1), lambda a: torch.log_softmax(a, 1)),
        (lambda a: F.softmax(a, axis=1), lambda a: torch.softmax(a, 1)),
        (lambda a: F.logsumexp(a, axis=1), lambda a: torch.logsumexp(a, 1)),
    ):
        np.testing.assert_allclose(ours(tg.Tensor(x)).data, theirs(tx).numpy(), rtol=1e-6, atol=1e-6)
    labels = np.array([0, 1, 2, 4])
    probs = np.random.default_rng(1).dirichlet(np.ones(5), 4).astype(np.float32)
    for target, ttarget in ((labels, torch.tensor(labels)), (probs, torch.tensor(probs))):
        a = tg.Tensor(x, requires_grad=True)
        ta = torch.tensor(x, requires_grad=True)
        loss = F.cross_entropy(a, target)
        tloss = torch.nn.functional.cross_entropy(ta, ttarget)
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-6, atol=1e-6)
        loss.backward()
        tloss.backward()
        np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-5, atol=1e-7)


@needs_torch
def test_log_softmax_of_equal_large_logits_matches_torch_exactly():
    x = np.full((1, 3), -1e4, np.float32)
    assert F.log_softmax(tg.Tensor(x)).data.tolist() == torch.log_softmax(torch.tensor(x), -1).tolist()


def test_log_softmax_stays_twice_differentiable():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((3, 4)) * 5, requires_grad=True)
    assert tg.gradcheck(lambda a: F.log_softmax(a, axis=1), (x,))
    assert tg.gradgradcheck(lambda a: F.log_softmax(a, axis=1), (x,))
