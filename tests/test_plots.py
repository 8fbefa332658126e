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
    plot_scores,
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
    # Drawn without pixel gaps (thin lines separate the filters).
    np.testing.assert_allclose(fig.axes[1].images[0].get_array().filled(np.nan), filter_grid(after, gap=0), equal_nan=True)
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
    with pytest.raises(ValueError, match="no 'batch', 'step' or 'epoch' records"):
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
    shown = [im.get_array() for im in _map_images(fig)]
    assert len(shown) == 2
    np.testing.assert_allclose(shown[1], feature_maps(net, img, "maps")[1])
    fig = plot_feature_maps(_MapNet(), img, "head.1", tmp_path / "bars.png", class_names=["a", "b", "c"])
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["a", "b", "c"]
    assert plots.layer_names(_MapNet()) == ["fc", "act", "head", "head.0", "head.1"]


# ---- per-batch losses, the best-accuracy label -------------------------------------------------
def _agg(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig


def test_batch_losses_round_trip_through_the_metrics_log(tmp_path):
    from tinygrad_cnn.train.metrics import MetricsLog, StepLogger, batch_losses

    log = MetricsLog(tmp_path / "metrics.jsonl")
    rng = np.random.default_rng(0)
    losses = {e: rng.random(5).tolist() for e in (1, 2)}
    for e in (1, 2):
        step = StepLogger(log, e, steps_per_epoch=5, log_every=2)
        for i, lv in enumerate(losses[e]):
            step(i, lv, 0.5, 10)
    progress, loss = batch_losses(tmp_path / "metrics.jsonl")
    assert loss == losses[1] + losses[2]
    np.testing.assert_allclose(progress, [0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0])
    assert batch_losses(log.records) == (progress, loss)  # records work as well as the path
    # Step records keep their meaning: the mean of their window's batches.
    steps = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["type"] == "step"]
    assert [s["step"] for s in steps] == [2, 4, 5, 7, 9, 10]
    assert steps[0]["loss"] == pytest.approx(np.mean(losses[1][:2]))
    assert batch_losses([{"type": "epoch", "epoch": 1}]) == ([], [])


def test_fit_writes_every_batch_loss_and_the_curves_draw_them(tmp_path):
    from tinygrad_cnn.data import DataLoader, TensorDataset
    from tinygrad_cnn.optim import SGD
    from tinygrad_cnn.train import fit
    from tinygrad_cnn.train.metrics import batch_losses

    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(4, 2, seed=0))
    hist = fit(model, SGD(model.parameters(), lr=0.1), DataLoader(TensorDataset(x, y), 20, shuffle=True, seed=0),
               epochs=1, out_dir=tmp_path, progress=False, log_every=10, print_fn=None)
    progress, loss = batch_losses(tmp_path / "metrics.jsonl")
    np.testing.assert_allclose(progress, [1 / 3, 2 / 3, 1.0], rtol=1e-5)
    # Equal batches: the epoch's train loss is the mean of its batch losses.
    assert np.mean(loss) == pytest.approx(hist[0]["train_loss"])
    # One epoch, yet the loss panel has a curve: the batch losses.
    fig = plot_training_curves(tmp_path / "metrics.jsonl")
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    np.testing.assert_allclose(lines["train loss (each batch)"].get_ydata(), loss)


def test_best_test_label_lies_inside_the_axes():
    # The best epoch is the last one, at the right edge, where an annotation used to run out.
    recs = _records() + [{"type": "epoch", "epoch": 3, "train_loss": 0.1, "train_acc": 0.99, "test_loss": 0.2, "test_acc": 0.97}]
    fig = _agg(plot_training_curves(recs, title="t"))
    ax_acc = fig.axes[1]
    texts = [t for t in ax_acc.get_legend().get_texts() if t.get_text().startswith("best test")]
    assert [t.get_text() for t in texts] == ["best test accuracy 0.9700 (epoch 3)"]
    renderer = fig.canvas.get_renderer()
    box, inside = texts[0].get_window_extent(renderer), ax_acc.get_window_extent(renderer)
    assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
    star = [ln for ln in ax_acc.get_lines() if ln.get_label().startswith("best test")][0]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (3.0, 0.97)


# ---- feature maps: one colour scale, activation, layout ----------------------------------------
class _Signed(nn.Module):
    """'maps' outputs (N, 5, 3, 3) with both signs and very different magnitudes per channel."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 45, seed=3)
        self.maps = nn.Identity()

    def forward(self, x):
        h = self.fc(x.reshape(x.shape[0], 4)).reshape(x.shape[0], 5, 3, 3)
        return self.maps(h * Tensor(np.array([1, 10, 100, 0.1, 1], np.float32).reshape(1, 5, 1, 1)))


def _map_images(fig):
    return [ax.images[0] for ax in fig.axes if ax.images and not ax.get_title().startswith("input")]


def test_feature_maps_share_one_colour_scale_with_a_colour_bar():
    net, img = _Signed(), np.linspace(-1, 1, 4, dtype=np.float32).reshape(1, 2, 2)
    maps = feature_maps(net, img, "maps")
    assert maps.min() < 0 < maps.max()
    fig = plot_feature_maps(net, img, "maps")
    ims = _map_images(fig)
    assert len(ims) == 5
    m = np.abs(maps).max()
    assert {im.get_clim() for im in ims} == {(-m, m)}  # one scale, symmetric about zero
    assert {im.get_cmap().name for im in ims} == {"RdBu_r"}
    bars = [im.colorbar for im in ims if im.colorbar is not None]
    assert len(bars) == 1 and (bars[0].vmin, bars[0].vmax) == (-m, m)  # one colour bar, for all maps
    # After the activation: non-negative values, a sequential scale from 0.
    fig = plot_feature_maps(net, img, "maps", activation="relu")
    ims = _map_images(fig)
    np.testing.assert_allclose(ims[2].get_array(), np.maximum(maps[2], 0))
    assert {im.get_clim() for im in ims} == {(0.0, maps.max())}
    assert "after relu" in fig._suptitle.get_text()
    fig = plot_feature_maps(net, img, "maps", activation=lambda t: t * 2.0)
    np.testing.assert_allclose(_map_images(fig)[1].get_array(), 2 * maps[1], rtol=1e-6)
    with pytest.raises(ValueError, match="activation must be one of 'relu'"):
        plot_feature_maps(net, img, "maps", activation="softsign")
    assert plots.map_colour_scale(np.array([-1.0, 3.0])) == ("RdBu_r", -3.0, 3.0)
    assert plots.map_colour_scale(np.array([-2.0, -1.0])) == ("Blues_r", -2.0, 0.0)
    assert plots.map_colour_scale(np.zeros(3)) == ("Reds", 0.0, 1.0)


def test_feature_map_grid_has_no_empty_column_under_the_input():
    net, img = _Signed(), np.ones((1, 2, 2), np.float32)
    fig = plot_feature_maps(net, img, "maps")
    grid = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    ncols = grid[0].get_subplotspec().get_gridspec().ncols
    shown = [ax for ax in grid if ax.axison]
    # The input is the grid's first cell, the maps follow; the only unused cells end the last row.
    assert shown[0].get_title().startswith("input") and shown == grid[: len(shown)]
    assert len(shown) == 6 and len(grid) - len(shown) < ncols


# ---- filters: separators, shared scale ---------------------------------------------------------
def test_filters_shared_scale_and_neutral_separators():
    rng = np.random.default_rng(2)
    before = rng.standard_normal((6, 2, 3, 3)) * 0.01
    after = before * 30
    m = filter_grid(after, scale="shared")
    assert np.nanmax(np.abs(m)) == np.abs(after).max()  # the weights themselves
    fig = plot_filters_before_after(before, after, scale="shared")
    ims = [ax.images[0] for ax in fig.axes if ax.images]
    lim = np.abs(after).max()
    assert len(ims) == 2 and {im.get_clim() for im in ims} == {(-lim, lim)}
    assert ims[0].colorbar is None and ims[1].colorbar is not None
    # Per-filter (the default): each tile fills 0..1, no colour bar.
    fig = plot_filters(after)
    im = fig.axes[0].images[0]
    assert im.get_clim() == (0.0, 1.0) and im.colorbar is None and len(fig.axes) == 1
    # Separators are thin neutral lines, not coloured pixel gaps.
    assert im.get_cmap().get_bad()[:3].tolist() == [1.0, 1.0, 1.0]
    seps = fig.axes[0].collections
    assert seps and all(float(np.max(c.get_linewidths())) <= 1.5 for c in seps)
    for c in seps:
        r, g, b, _ = c.get_colors()[0]
        assert r == g == b
    with pytest.raises(ValueError, match="scale must be 'per_filter'"):
        plot_filters(after, scale="global")


# ---- class scores ------------------------------------------------------------------------------
def test_plot_scores_names_the_classes(tmp_path):
    net, img = _MapNet(), np.ones((1, 2, 2), np.float32)
    fig = plot_scores(net, img, tmp_path / "scores.png", class_names=["cat", "dog", "owl"], label="dog")
    assert (tmp_path / "scores.png").read_bytes()[:8] == PNG
    ax = fig.axes[1]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "owl"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("logit", "class")
    with __import__("tinygrad_cnn").no_grad():
        logits = net(Tensor(img[None])).data[0]
    np.testing.assert_allclose([p.get_width() for p in ax.patches], logits, rtol=1e-6)
    assert "predicted " + ["cat", "dog", "owl"][int(logits.argmax())] in fig._suptitle.get_text()
    # The input thumbnail and the class names do not overlap.
    _agg(fig)
    renderer = fig.canvas.get_renderer()
    thumb = fig.axes[0].get_window_extent(renderer)
    assert all(t.get_window_extent(renderer).x0 > thumb.x1 for t in ax.get_yticklabels())
    assert ax.yaxis.label.get_window_extent(renderer).x0 > thumb.x1
    fig = plot_scores(net, img[None])
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="2 class_names for 3 class scores"):
        plot_scores(net, img, class_names=["a", "b"])
    with pytest.raises(ValueError, match="out of range for 3 classes"):
        plot_scores(net, img, label=3)
