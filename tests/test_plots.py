"""Matplotlib pictures: filter grids (values, not just "a file exists"), curves, feature maps."""
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("matplotlib")

from tinygrad_cnn import Tensor, nn  # noqa: E402
from tinygrad_cnn.viz import plots  # noqa: E402
from tinygrad_cnn.viz.plots import (  # noqa: E402
    feature_maps,
    filter_grid,
    plot_feature_maps,
    plot_filters,
    plot_filters_before_after,
    plot_training_curves,
    read_metrics,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _umask():
    import os

    m = os.umask(0)
    os.umask(m)
    return m


@given(o=st.integers(1, 12), c=st.integers(1, 4), kh=st.integers(1, 5), kw=st.integers(1, 5), ncols=st.none() | st.integers(1, 6))
def test_filter_grid_places_every_channel_normalized_per_filter(o, c, kh, kw, ncols):
    rng = np.random.default_rng(o * 100 + c)
    # Filters of wildly different scales: per-filter normalization must still fill [0, 1].
    w = rng.standard_normal((o, c, kh, kw)) * (10.0 ** np.arange(o))[:, None, None, None]
    m = filter_grid(w, ncols)
    cols = ncols or m.shape[1]  # recompute the layout the same way the docstring states
    tile_w = c * kw + (c - 1)
    if ncols is None:
        cols = (m.shape[1] + 2) // (tile_w + 2)
    rows = -(-o // cols)
    assert m.shape == (rows * (kh + 1) - 1, cols * (tile_w + 2) - 2)
    for i in range(o):
        r, col = divmod(i, cols)
        y0, x0 = r * (kh + 1), col * (tile_w + 2)
        tile = np.stack([m[y0 : y0 + kh, x0 + ch * (kw + 1) : x0 + ch * (kw + 1) + kw] for ch in range(c)])
        f = w[i]
        if f.max() > f.min():
            np.testing.assert_allclose(tile, (f - f.min()) / (f.max() - f.min()), atol=1e-12)
        else:
            assert np.all(tile == 0.5)
    # Exactly o*c*kh*kw cells are image; the rest is NaN gap.
    assert np.isfinite(m).sum() == o * c * kh * kw


def test_filter_grid_constant_filter_and_errors():
    w = np.zeros((2, 1, 2, 2))
    w[1] = [[[0, 1], [2, 3]]]
    m = filter_grid(w, ncols=2)
    assert np.all(m[:, :2] == 0.5)
    np.testing.assert_allclose(m[:, 4:6], [[0, 1 / 3], [2 / 3, 1]])
    with pytest.raises(ValueError, match=r"\(out_channels, in_channels, kh, kw\)"):
        filter_grid(np.zeros((3, 5, 5)))
    with pytest.raises(TypeError, match="Tensor or numpy array"):
        filter_grid([[1.0]])


def test_plot_filters_files(tmp_path):
    rng = np.random.default_rng(0)
    before = rng.standard_normal((30, 1, 5, 5)).astype(np.float32) * 0.01
    after = before + 0.05 * rng.standard_normal(before.shape).astype(np.float32)
    fig = plot_filters_before_after(Tensor(before), after, tmp_path / "ba.png")
    assert (tmp_path / "ba.png").read_bytes()[:8] == PNG
    assert [ax.get_title() for ax in fig.axes] == ["before training", "after training"]
    np.testing.assert_allclose(fig.axes[1].images[0].get_array().filled(np.nan), filter_grid(after), equal_nan=True)
    plot_filters(rng.standard_normal((8, 3, 3, 3)), tmp_path / "f.svg")
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:400]
    with pytest.raises(ValueError, match="same layer"):
        plot_filters_before_after(before, before[:2])
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["ba.png", "f.svg"]  # no temp files left
    assert (tmp_path / "ba.png").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _records():
    recs = []
    for e in (1, 2):
        for i in (1, 2):
            recs.append({"type": "step", "epoch": e, "progress": e - 1 + i / 2, "loss": 1.0 / (e + i), "acc": 0.5 + 0.1 * e})
        recs.append(
            {"type": "epoch", "epoch": e, "train_loss": 0.5 / e, "train_acc": 0.6 + 0.1 * e,
             "test_loss": 0.6 / e, "test_acc": 0.55 + 0.1 * e}
        )
    return recs


def test_training_curves_from_records_and_file(tmp_path):
    recs = _records()
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert read_metrics(path) == recs
    fig = plot_training_curves(path, tmp_path / "curves.png", title="t")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG
    ax_loss, ax_acc = fig.axes
    lines = {ln.get_label(): ln for ln in ax_acc.get_lines()}
    np.testing.assert_allclose(lines["test accuracy"].get_ydata(), [0.65, 0.75])
    np.testing.assert_allclose(lines["test accuracy"].get_xdata(), [1, 2])
    loss_lines = {ln.get_label(): ln for ln in ax_loss.get_lines()}
    np.testing.assert_allclose(loss_lines["train loss (epoch)"].get_ydata(), [0.5, 0.25])
    # Epoch records without test numbers (no test set) still plot.
    plot_training_curves([{"type": "epoch", "epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_acc": None}])
    with pytest.raises(ValueError, match="no 'step' or 'epoch' records"):
        plot_training_curves([{"type": "other"}])
    path.write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        read_metrics(path)


class _MapNet(nn.Module):
    """A test model whose 'maps' layer outputs (N, 2, 3, 3) feature maps."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 18, seed=0)
        self.act = nn.ReLU()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(18, 3, seed=1))

    def forward(self, x):
        h = self.act(self.fc(x.reshape(x.shape[0], 4)))
        return self.head(h.reshape(x.shape[0], 2, 3, 3))


def test_feature_maps_capture_named_layer_and_restore_mode(tmp_path):
    net = _MapNet()
    img = np.arange(4, dtype=np.float32).reshape(1, 2, 2) / 4
    m = feature_maps(net, img, "act")
    expected = np.maximum(img.reshape(1, 4) @ net.fc.weight.data.T + net.fc.bias.data, 0)
    np.testing.assert_allclose(m, expected[0], rtol=1e-6)
    assert net.training  # restored
    m2 = feature_maps(net, img[None], "head.1")
    assert m2.shape == (3,)
    with pytest.raises(ValueError) as e:
        feature_maps(net, img, "conv9")
    assert "has no layer 'conv9'" in str(e.value) and "head.0" in str(e.value)
    with pytest.raises(ValueError, match="one image"):
        feature_maps(net, np.zeros((2, 1, 2, 2), np.float32), "act")


def test_plot_feature_maps_grid_and_bars(tmp_path):
    class Maps(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 18, seed=0)
            self.maps = nn.ReLU()

        def forward(self, x):
            return self.maps(self.fc(x.reshape(x.shape[0], 4)).reshape(x.shape[0], 2, 3, 3))

    net = Maps()
    img = np.ones((1, 2, 2), np.float32)
    fig = plot_feature_maps(net, img, "maps", tmp_path / "fm.png")
    assert (tmp_path / "fm.png").read_bytes()[:8] == PNG
    shown = [ax.images[0].get_array() for ax in fig.axes[1:]]
    assert len(shown) == 2
    np.testing.assert_allclose(shown[1], feature_maps(net, img, "maps")[1])
    fig = plot_feature_maps(_MapNet(), img, "head.1", tmp_path / "bars.png", class_names=["a", "b", "c"])
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["a", "b", "c"]
    assert plots.layer_names(_MapNet()) == ["fc", "act", "head", "head.0", "head.1"]
