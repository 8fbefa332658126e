"""per_sample: per-example gradients and norms of a Module, DP-SGD's clipping and noise, the RDP
accountant of the sampled Gaussian mechanism, and the picture of the norms."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.func import functional_call, get_params, grad
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.per_sample import clip_and_noise, dp_epsilon, per_sample_grad_norms, per_sample_grads, rdp_sampled_gaussian


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, dtype=np.float64, seed=0)
        self.fc = nn.Linear(12, 4, dtype=np.float64, seed=1)

    def forward(self, x):
        return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).reshape((x.shape[0], -1)))


def data(n=5):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 6, 6)), rng.integers(0, 4, n)


def test_per_sample_grads_and_norms_match_a_loop():
    model, (x, y) = Small(), data()
    g = per_sample_grads(model, x, y)
    norms = per_sample_grad_norms(model, x, y, grads=g)
    p = get_params(model)
    for i in range(len(x)):
        gi = grad(lambda q, i=i: F.cross_entropy(functional_call(model, q, tg.tensor(x[i:i + 1])), y[i:i + 1]))(p)
        for k in p:
            np.testing.assert_allclose(g[k].numpy()[i], gi[k].numpy(), atol=1e-12)
        layer = np.sqrt(sum((gi[k].numpy() ** 2).sum() for k in p if k.startswith("conv.")))
        total = np.sqrt(sum((gi[k].numpy() ** 2).sum() for k in p))
        assert norms["conv"][i] == pytest.approx(layer, rel=1e-12)
        assert norms["total"][i] == pytest.approx(total, rel=1e-12)
    with pytest.raises(ValueError, match="x has 5 examples but y has 4"):
        per_sample_grads(model, x, y[:4])


def test_clip_and_noise():
    rng = np.random.default_rng(1)
    grads = {"w": rng.standard_normal((6, 3, 2)), "b": rng.standard_normal((6, 3)).T.copy().T}  # a strided entry too
    norms = np.sqrt((grads["w"] ** 2).sum((1, 2)) + (grads["b"] ** 2).sum(1))
    out, got = clip_and_noise(grads, 1.5, 0.0, 4.0)
    np.testing.assert_allclose(got, norms)
    scale = np.minimum(1, 1.5 / norms)
    np.testing.assert_allclose(out["w"], (grads["w"] * scale[:, None, None]).sum(0) / 4.0)
    np.testing.assert_allclose(out["b"], (grads["b"] * scale[:, None]).sum(0) / 4.0)
    noisy = [clip_and_noise(grads, 1.5, 2.0, 4.0, rng=np.random.default_rng(s))[0]["w"] - out["w"] for s in range(400)]
    assert np.std(noisy) * 4.0 == pytest.approx(3.0, rel=0.05)  # std noise_multiplier * C, divided by the batch
    with pytest.raises(ValueError, match="max_norm"):
        clip_and_noise(grads, 0.0, 1.0, 4.0)


@pytest.mark.parametrize("q, sigma, order", [(0.01, 1.0, 2), (0.05, 0.8, 5), (0.3, 2.0, 8), (1.0, 1.5, 3)])
def test_rdp_matches_the_renyi_divergence_by_quadrature(q, sigma, order):
    # D_alpha(mu || mu0) for mu0 = N(0, sigma^2), mu = (1 - q) mu0 + q N(1, sigma^2), integrated numerically.
    # Summed in log space: the ratio's power overflows far out.
    z = np.linspace(-40, 60, 400001)
    log_density0 = -z * z / (2 * sigma**2) - math.log(sigma * math.sqrt(2 * math.pi))
    log_ratio = np.logaddexp(math.log1p(-q) if q < 1 else -np.inf, math.log(q) + (2 * z - 1) / (2 * sigma**2))
    log_integrand = log_density0 + order * log_ratio
    top = log_integrand.max()
    want = (top + math.log(np.trapezoid(np.exp(log_integrand - top), z))) / (order - 1)
    assert rdp_sampled_gaussian(q, sigma, order) == pytest.approx(want, rel=1e-6)


def test_dp_epsilon_conversion_and_monotonicity():
    eps, order = dp_epsilon(0.01, 1.0, 1000, 1e-5)
    assert eps == pytest.approx(1000 * rdp_sampled_gaussian(0.01, 1.0, order) + math.log(1e5) / (order - 1))
    assert all(eps <= 1000 * rdp_sampled_gaussian(0.01, 1.0, a) + math.log(1e5) / (a - 1) + 1e-12 for a in range(2, 257))
    assert dp_epsilon(0.01, 1.0, 2000, 1e-5)[0] > eps > dp_epsilon(0.01, 2.0, 1000, 1e-5)[0]
    with pytest.raises(ValueError, match="delta"):
        dp_epsilon(0.01, 1.0, 10, 0.0)


def test_plot_per_sample_grad_norms(tmp_path):
    pytest.importorskip("matplotlib")
    from tinygrad_cnn.viz.per_sample import plot_per_sample_grad_norms

    model, (x, y) = Small(), data(10)
    norms = per_sample_grad_norms(model, x, y)
    fig = plot_per_sample_grad_norms(norms, tmp_path / "n.png", images=x, labels=[str(t) for t in y], top=3)
    assert (tmp_path / "n.png").stat().st_size > 1000
    assert len(fig.axes) == 3 + 3  # conv, fc, total; three images
    with pytest.raises(ValueError, match="images must be"):
        plot_per_sample_grad_norms(norms, images=x[:3])


def test_batch_norm_in_training_mode_under_vmap_is_refused_with_the_fix():
    # Its running statistics would be updated in place once per example (torch.func refuses too).
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
    x, y = tg.randn(4, 1, 6, 6, generator=0), tg.tensor([0, 1, 2, 0])
    with pytest.raises(RuntimeError, match=r"batch_norm: .*vmap.*model.eval\(\)"):
        per_sample_grads(m, x, y)
    m.eval()
    assert per_sample_grads(m, x, y)["1.weight"].shape == (4, 2)


def test_per_sample_grads_of_a_model_with_dropout_follow_randomness():
    # Dropout in training mode: 'same' draws one mask for every example, 'different' one per
    # example; the default refuses with a message naming the argument that fixes it.
    gen = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(6, 32, dtype=np.float64, seed=0), nn.Dropout(0.5, seed=gen),
                          nn.Linear(32, 3, dtype=np.float64, seed=1)).train()
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    with pytest.raises(RuntimeError, match=r"randomness='error'.*per_sample_grads"):
        per_sample_grads(model, x, y)
    p = get_params(model)

    def loss(q, i, mask=None):  # example i's loss; with a mask instead of the model's Dropout
        h = F.linear(tg.tensor(x[i:i + 1]), q["0.weight"], q["0.bias"])
        h = model[1](h) if mask is None else h * mask
        return F.cross_entropy(F.linear(h, q["2.weight"], q["2.bias"]), y[i:i + 1])

    start = gen.bit_generator.state
    same = per_sample_grads(model, x, y, randomness="same")
    for i in range(4):
        gen.bit_generator.state = start  # each example sees the one mask drawn from here
        gi = grad(loss)(p, i)
        for k in p:
            np.testing.assert_allclose(same[k].numpy()[i], gi[k].numpy(), atol=1e-12)
    gen.bit_generator.state = start
    different = per_sample_grads(model, x, y, randomness="different")
    gen.bit_generator.state = start
    masks = (gen.random((4, 1, 32)) >= 0.5) / 0.5  # one draw holding every example's own mask
    for i in range(4):
        gi = grad(loss)(p, i, masks[i])
        for k in p:
            np.testing.assert_allclose(different[k].numpy()[i], gi[k].numpy(), atol=1e-12)
    gen.bit_generator.state = start
    norms = per_sample_grad_norms(model, x, y, randomness="different")
    total = np.sqrt(sum((different[k].numpy() ** 2).reshape(4, -1).sum(1) for k in p))
    np.testing.assert_allclose(norms["total"], total, rtol=1e-12)
