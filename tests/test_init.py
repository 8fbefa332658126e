"""nn.init against PyTorch: signatures and defaults, and each distribution's bounds/std against
PyTorch's formulas (large draws, so a wrong factor of sqrt(2) or a swapped fan shows)."""
import inspect
import math

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.nn import init

NAMES = ["kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "uniform_", "normal_", "trunc_normal_",
         "constant_", "zeros_", "ones_", "eye_", "dirac_", "orthogonal_", "calculate_gain"]


def w(*shape):
    return nn.Parameter(np.empty(shape, dtype=np.float64))


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_torch(name):
    torch = pytest.importorskip("torch")
    ours = inspect.signature(getattr(init, name)).parameters
    theirs = inspect.signature(getattr(torch.nn.init, name)).parameters
    positional = [k for k, p in ours.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == list(theirs)
    assert [ours[k].default for k in positional] == [p.default for p in theirs.values()]
    assert set(ours) - set(theirs) <= {"seed"}  # the extra keyword-only alias of generator


@pytest.mark.parametrize("nl, param", [("linear", None), ("conv_transpose2d", None), ("sigmoid", None), ("tanh", None),
                                       ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)])
def test_calculate_gain_matches_torch(nl, param):
    torch = pytest.importorskip("torch")
    assert init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param), rel=1e-15)


# shape, fn, kwargs, the bound (uniform) or std (normal) PyTorch's documentation gives
FAN_IN, FAN_OUT = 64 * 9, 32 * 9
CASES = [
    ((32, 64, 3, 3), init.kaiming_uniform_, {}, "bound", math.sqrt(2 / (1 + 0)) * math.sqrt(3 / FAN_IN)),
    ((32, 64, 3, 3), init.kaiming_uniform_, {"a": math.sqrt(5)}, "bound", 1 / math.sqrt(FAN_IN)),  # Linear/Conv's reset
    ((32, 64, 3, 3), init.kaiming_uniform_, {"mode": "fan_out", "nonlinearity": "relu"}, "bound", math.sqrt(2) * math.sqrt(3 / FAN_OUT)),
    ((32, 64, 3, 3), init.kaiming_normal_, {"nonlinearity": "relu"}, "std", math.sqrt(2 / FAN_IN)),
    ((32, 64, 3, 3), init.kaiming_normal_, {"a": 0.2, "mode": "fan_out"}, "std", math.sqrt(2 / 1.04) / math.sqrt(FAN_OUT)),
    ((300, 200), init.xavier_uniform_, {}, "bound", math.sqrt(6 / 500)),
    ((300, 200), init.xavier_uniform_, {"gain": 5 / 3}, "bound", 5 / 3 * math.sqrt(6 / 500)),
    ((300, 200), init.xavier_normal_, {"gain": 2.0}, "std", 2 * math.sqrt(2 / 500)),
    ((300, 200), init.uniform_, {"a": -0.3, "b": 0.7}, "range", (-0.3, 0.7)),
    ((300, 200), init.normal_, {"mean": 1.5, "std": 0.2}, "std", 0.2),
]


@pytest.mark.parametrize("shape, fn, kw, kind, want", CASES, ids=lambda c: getattr(c, "__name__", None))
def test_distributions_follow_torchs_formulas(shape, fn, kw, kind, want):
    t = fn(w(*shape), **kw, generator=tg.Generator().manual_seed(0))
    d = t.data
    n = d.size
    if kind == "bound":
        assert np.abs(d).max() <= want and np.abs(d).max() > want * (1 - 1e-3)
        assert d.std() == pytest.approx(want / math.sqrt(3), rel=5 / math.sqrt(n))
    elif kind == "range":
        lo, hi = want
        assert lo <= d.min() < lo + 1e-3 and hi - 1e-3 < d.max() < hi
    else:
        assert d.std() == pytest.approx(want, rel=5 / math.sqrt(n))
        assert d.mean() == pytest.approx(kw.get("mean", 0.0), abs=5 * want / math.sqrt(n))


def test_torch_draws_the_same_distributions():
    """The same formulas on PyTorch's side: both draws agree in std (sampling error only)."""
    torch = pytest.importorskip("torch")
    for fn, kw in [("kaiming_uniform_", {}), ("kaiming_normal_", {"mode": "fan_out"}), ("xavier_uniform_", {"gain": 0.5}),
                   ("xavier_normal_", {}), ("trunc_normal_", {"std": 0.7, "a": -1.0, "b": 0.5})]:
        ours = getattr(init, fn)(w(64, 32, 5, 5), **kw, seed=1).data
        theirs = getattr(torch.nn.init, fn)(torch.empty(64, 32, 5, 5, dtype=torch.float64), **kw).numpy()
        assert ours.std() == pytest.approx(theirs.std(), rel=0.03), fn
        if fn.endswith("uniform_"):  # both fill up to the same bound
            assert ours.max() == pytest.approx(theirs.max(), rel=0.01) and ours.min() == pytest.approx(theirs.min(), rel=0.01), fn
        if fn == "trunc_normal_":
            assert ours.min() >= -1.0 and ours.max() <= 0.5 and theirs.min() >= -1.0 and theirs.max() <= 0.5


def test_trunc_normal_bounds_and_moments():
    mean, std, a, b = 0.3, 1.0, -0.5, 2.0
    d = init.trunc_normal_(w(400, 500), mean, std, a, b, seed=2).data
    assert a <= d.min() and d.max() <= b
    # The truncated normal's mean: mu + sigma (phi(alpha) - phi(beta)) / Z.
    al, be = (a - mean) / std, (b - mean) / std
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Z = 0.5 * (math.erf(be / math.sqrt(2)) - math.erf(al / math.sqrt(2)))
    assert d.mean() == pytest.approx(mean + std * (phi(al) - phi(be)) / Z, abs=5 * std / math.sqrt(d.size))
    with pytest.raises(ValueError, match="holds only"):
        init.trunc_normal_(w(3, 3), mean=0.0, std=1.0, a=5.0, b=6.0)


def test_deterministic_eye_dirac_orthogonal():
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(init.eye_(w(3, 5)).data, torch.nn.init.eye_(torch.empty(3, 5)).numpy())
    for shape, groups in [((6, 4, 3, 3), 1), ((8, 2, 3, 3), 2), ((4, 6, 3), 1)]:
        np.testing.assert_array_equal(init.dirac_(w(*shape), groups).data, torch.nn.init.dirac_(torch.empty(shape), groups).numpy())
    for shape in [(4, 10), (10, 4), (6, 2, 3, 3)]:
        q = init.orthogonal_(w(*shape), gain=2.0, seed=3).data.reshape(shape[0], -1)
        small = min(q.shape)
        gram = q @ q.T if q.shape[0] == small else q.T @ q
        np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-12)


def test_generator_and_seed_are_the_same_and_exclusive():
    a = init.normal_(w(5, 5), generator=tg.Generator().manual_seed(7)).data.copy()
    b = init.normal_(w(5, 5), seed=tg.Generator().manual_seed(7)).data
    c = init.normal_(w(5, 5), 0.0, 1.0, np.random.default_rng(7)).data
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    with pytest.raises(TypeError, match="not both"):
        init.uniform_(w(2, 2), generator=1, seed=1)


def test_fills_are_in_place_and_a_live_graph_notices():
    p = nn.Parameter(np.zeros((4, 4)))
    y = (p * p).sum()
    assert init.kaiming_uniform_(p) is p and p.requires_grad and p.data.any()
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()
    assert init.constant_(p, val=0.25) is p and (p.data == 0.25).all()
