"""gradcheck / gradgradcheck: results, reports, kinks, fast mode, pytrees, dtypes, and the extra checks."""
import warnings

import numpy as np
import pytest
from custom_ops import ScaledBackward, WrongSignTanh

import tinygrad_cnn as tg
from tinygrad_cnn.autograd import Function
from tinygrad_cnn.check import GradcheckWarning, checker
from tinygrad_cnn.nn import functional as F


def t64(a, name=None, requires_grad=True):
    return tg.Tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, name=name)


class ChannelBug(Function):
    """x * 2 whose backward is wrong (3 instead of 2) only in channel 1 of an NCHW input."""

    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        scale = np.full((1, g.shape[1], 1, 1), 2.0)
        scale[0, 1] = 3.0
        return g * tg.Tensor(scale)


class OneElementBug(Function):
    """sin(x) whose backward is off by 0.5 at one flat position ``ctx.bad``."""

    @staticmethod
    def forward(ctx, x, bad):
        ctx.bad = bad
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        off = np.zeros(x.shape)
        off.reshape(-1)[ctx.bad] = 0.5
        return g * (tg.Tensor(np.cos(x.data)) + tg.Tensor(off))


# ---- the basic contract ---------------------------------------------------------------------
def test_pass_returns_true_and_failure_raises_with_result():
    x = tg.randn(3, 4, seed=0, dtype=np.float64, requires_grad=True)
    assert tg.gradcheck(lambda x: (x.tanh() * x).sum(axis=0), (x,)) is True
    assert tg.gradgradcheck(lambda x: (x.tanh() * x).sum(axis=0), (x,)) is True
    with pytest.raises(tg.GradcheckError) as info:
        tg.gradcheck(WrongSignTanh.apply, (x,))
    res = info.value.result
    assert isinstance(res, tg.GradcheckResult) and not res.passed
    assert str(info.value) == str(res)


def test_result_object_when_not_raising():
    x = tg.randn(3, 4, seed=1, dtype=np.float64, requires_grad=True)
    ok = tg.gradcheck(lambda x: x.exp(), x, raise_exception=False)
    assert ok and ok.passed and ok.failures == [] and ok.problems == []
    bad = tg.gradcheck(lambda x: WrongSignTanh.apply(x), x, raise_exception=False)
    assert not bad and len(bad.failures) == 1


def test_wrong_sign_report_names_every_element_and_the_worst():
    x = tg.randn(4, 3, seed=2, dtype=np.float64, requires_grad=True)
    res = tg.gradcheck(lambda x: WrongSignTanh.apply(x), (x,), raise_exception=False)
    p = res.pair("x")
    assert p.mismatches == 12 and p.entries == 12 and p.wrong.all()
    # The worst element is where |2 * tanh'(x)| is largest relative to tolerance: the smallest |x|.
    expect = np.unravel_index(np.argmin(np.abs(x.data)), x.shape)
    assert p.worst.index == tuple(int(i) for i in expect)
    assert p.worst.output_index == p.worst.index
    d = 1 - np.tanh(x.data[expect]) ** 2
    assert p.worst.numerical == pytest.approx(d, rel=1e-6)
    assert p.worst.analytical == pytest.approx(-d, rel=1e-9)
    assert p.worst.abs_error == pytest.approx(2 * d, rel=1e-6) and p.worst.rel_error == pytest.approx(2, rel=1e-5)
    text = str(res)
    assert "FAILED" in text and "12 of 12" in text and f"x[{expect[0]}, {expect[1]}]" in text


def test_report_is_short_and_has_a_channel_table_for_4d_inputs():
    x = tg.randn(2, 3, 4, 4, seed=3, dtype=np.float64, requires_grad=True)
    res = tg.gradcheck(ChannelBug.apply, (x,), raise_exception=False)
    p = res.pair("x")
    assert p.mismatches == 2 * 4 * 4  # every element of channel 1, nothing else
    assert p.wrong[:, 1].all() and not p.wrong[:, [0, 2]].any()
    assert p.worst.index[1] == 1
    np.testing.assert_allclose(p.channel_max_error, [0.0, 1.0, 0.0], atol=1e-6)
    text = str(res)
    assert "largest error per channel: c1: 1" in text
    assert len(text.splitlines()) < 10  # a summary, never a Jacobian dump (that would be 96 x 96)


def test_labels_come_from_argument_names_tensor_names_and_pytree_paths():
    x = tg.randn(2, 3, seed=4, dtype=np.float64, requires_grad=True)
    w = tg.randn(3, 3, seed=5, dtype=np.float64, requires_grad=True)
    res = tg.gradcheck(lambda inp, weight: inp @ weight, (x, w), raise_exception=False)
    assert [lab for lab, _, _ in res.inputs] == ["inp", "weight"]
    named = t64(w.data, name="W")
    res = tg.gradcheck(lambda inp, weight: inp @ weight, (x, named), raise_exception=False)
    assert [lab for lab, _, _ in res.inputs] == ["inp", "W"]

    params = {"conv1": {"w": w, "b": t64(np.zeros(3))}, "scale": 2.0}

    def loss(params, inp):
        return ((inp @ params["conv1"]["w"] + params["conv1"]["b"]) * params["scale"]).tanh().sum()

    res = tg.gradcheck(loss, (params, x), raise_exception=False)
    assert res.passed
    assert [lab for lab, _, _ in res.inputs] == ["params['conv1']['w']", "params['conv1']['b']", "inp"]

    def broken(params, inp):
        return WrongSignTanh.apply(inp @ params["conv1"]["w"]) + params["conv1"]["b"]

    res = tg.gradcheck(broken, (params, x), raise_exception=False)
    assert res.wrong_inputs() == ["params['conv1']['w']", "inp"]
    assert res.pair("params['conv1']['b']").ok


def test_single_pytree_argument_and_pytree_outputs():
    a = tg.randn(3, seed=6, dtype=np.float64, requires_grad=True)
    b = tg.randn(3, seed=7, dtype=np.float64, requires_grad=True)
    res = tg.gradcheck(lambda d: {"s": d["a"] * d["b"], "t": [d["a"].exp()]}, {"a": a, "b": b}, raise_exception=False)
    assert res.passed
    assert {(p.input, p.output) for p in res.pairs} == {(i, o) for i in ("d['a']", "d['b']") for o in ("output['s']", "output['t'][0]")}


def test_non_floating_and_non_tensor_inputs_pass_through():
    x = tg.randn(4, 3, seed=8, dtype=np.float64, requires_grad=True)
    labels = np.array([0, 2, 1, 2])
    assert tg.gradcheck(lambda x, y, k: F.cross_entropy(x * k, y), (x, labels, 3))
    idx = tg.Tensor(np.array([2, 0]))
    assert tg.gradcheck(lambda x, i: x[i.data], (x, idx))
    const = tg.randn(4, 3, seed=9, dtype=np.float32)  # floating but not requiring grad: not checked
    res = tg.gradcheck(lambda x, c: x * c, (x, const), raise_exception=False)
    assert res.passed and [lab for lab, _, _ in res.inputs] == ["x"]


def test_float32_inputs_warn_are_promoted_and_stay_valid():
    x = tg.randn(3, 2, seed=10, requires_grad=True)  # float32
    with pytest.warns(GradcheckWarning, match="float32.*float64"):
        res = tg.gradcheck(lambda x: (x * x.sigmoid()).sum(axis=1), (x,), raise_exception=False)
    assert res.passed and res.inputs[0][2] == np.float32 and any("float32" in w for w in res.warnings)
    with pytest.warns(GradcheckWarning):
        bad = tg.gradcheck(WrongSignTanh.apply, (x,), raise_exception=False)
    assert not bad.passed and bad.pair("x").mismatches == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tg.gradcheck(lambda x: x.exp(), (t64(x.data),))


def test_float32_output_is_warned_about():
    x = tg.randn(3, seed=11, dtype=np.float64, requires_grad=True)
    with pytest.warns(GradcheckWarning, match="output is float32"):
        tg.gradcheck(lambda x: x.float() * 2.0, (x,), atol=1e-3, rtol=1e-2, raise_exception=False)


def test_bad_arguments_are_explained():
    x = tg.randn(3, seed=12, dtype=np.float64)
    with pytest.raises(ValueError, match="requires_grad=True"):
        tg.gradcheck(lambda x: x * 2, (x,))
    x.requires_grad_()
    with pytest.raises(ValueError, match="eps"):
        tg.gradcheck(lambda x: x * 2, (x,), eps=0.0)
    with pytest.raises(ValueError, match="no floating-point Tensor"):
        tg.gradcheck(lambda x: 3, (x,))
    with pytest.raises(TypeError, match="callable"):
        tg.gradcheck(None, (x,))


# ---- kinks ----------------------------------------------------------------------------------------
def test_relu_and_abs_at_exactly_zero_are_kinks_not_errors():
    x = t64([[0.0, 1.5], [-0.7, 0.0]])
    res = tg.gradcheck(lambda x: x.relu(), (x,), raise_exception=False)
    assert res.passed
    p = res.pair("x")
    assert p.n_kinks == 2 and p.kink_mask.tolist() == [[True, False], [False, True]]
    k = p.kinks[0]
    assert (k.index, k.left, k.analytical) == ((0, 0), pytest.approx(0.0, abs=1e-9), 0.0) and k.right == pytest.approx(1.0)
    assert "non-differentiable" in str(res) and "x[0, 0]" in str(res)
    # abs'(0) = 0 equals the central difference: nothing fails, so nothing needs explaining.
    res = tg.gradcheck(lambda x: x.abs(), (x,), raise_exception=False)
    assert res.passed and res.pair("x").n_kinks == 0

    class AbsSignConvention(Function):  # abs'(0) = +1: a valid one-sided derivative, not an error
        @staticmethod
        def forward(ctx, x):
            ctx.sign = np.where(x >= 0, 1.0, -1.0)
            return np.abs(x)

        @staticmethod
        def backward(ctx, g):
            return g * ctx.sign

    res = tg.gradcheck(AbsSignConvention.apply, (x,), raise_exception=False)
    assert res.passed and res.pair("x").n_kinks == 2
    assert res.kinks[0].left == pytest.approx(-1.0) and res.kinks[0].right == pytest.approx(1.0)
    strict = tg.gradcheck(lambda x: x.relu(), (x,), raise_exception=False, fail_on_kinks=True)
    assert not strict.passed and strict.pair("x").mismatches == 2 and "fail_on_kinks" in str(strict)


def test_a_kink_within_eps_of_the_point_is_still_a_kink():
    x = t64([3e-7, -4e-7, 2.0])
    res = tg.gradcheck(lambda x: x.relu(), (x,), raise_exception=False)
    assert res.passed and res.pair("x").kink_mask.tolist() == [True, True, False]


def test_max_ties_are_kinks():
    x = t64([[1.0, 1.0, 1.0, 0.2], [0.5, 2.0, 2.0, -1.0]])
    res = tg.gradcheck(lambda x: x.amax(1), (x,), raise_exception=False)
    assert res.passed  # a 3-way tie gets 1/3 each: between the one-sided derivatives 0 and 1
    assert res.pair("x").kink_mask.tolist() == [[True, True, True, False], [False, False, False, False]]


def test_max_pool2d_with_ties_reports_kinks_not_failures():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float64).reshape(2, 1, 4, 4) / 10
    x[0, 0, 0, 0] = x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[0, 0, 1, 1] = 5.0  # a 4-way tie in one window
    x[1, 0, 2, 2] = x[1, 0, 3, 3]  # a tie for the maximum of another window
    res = tg.gradcheck(lambda a: F.max_pool2d(a, 2), (t64(x),), raise_exception=False)
    assert res.passed, str(res)
    km = res.pair("a").kink_mask
    assert km[0, 0, :2, :2].all() and km[1, 0, 2:, 2:].sum() == 2 and km.sum() == 6


def test_a_wrong_gradient_at_a_kink_is_still_an_error():
    class BadReLU(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mask = (x >= 0).astype(x.dtype) * 2.0  # 2 is outside [0, 1], even at 0
            return np.maximum(x, 0)

        @staticmethod
        def backward(ctx, g):
            return g * ctx.mask

    x = t64([0.0, 1.0, -1.0])
    res = tg.gradcheck(BadReLU.apply, (x,), raise_exception=False)
    assert not res.passed and res.pair("x").wrong.tolist() == [True, True, False] and res.pair("x").n_kinks == 0


def test_second_order_kinks_relu_is_piecewise_linear():
    x = t64([0.0, 1.0, -2.0])
    res = tg.gradgradcheck(lambda x: x.relu() * x, (x,), raise_exception=False)
    assert res.passed, str(res)


# ---- fast mode ----------------------------------------------------------------------------------
def test_fast_mode_passes_correct_ops_and_locates_wrong_elements():
    x = tg.randn(2, 3, 5, 5, seed=13, dtype=np.float64, requires_grad=True)
    w = tg.randn(4, 3, 3, 3, seed=14, dtype=np.float64, requires_grad=True)
    assert tg.gradcheck(lambda x, w: F.conv2d(x, w, padding=1).tanh(), (x, w), fast_mode=True, seed=0)
    x = tg.randn(2, 3, 8, 8, seed=13, dtype=np.float64, requires_grad=True)
    res = tg.gradcheck(ChannelBug.apply, (x,), fast_mode=True, raise_exception=False, seed=0)
    p = res.pair("x")
    assert p.mode == "located" and p.wrong[:, 1].all() and p.mismatches == 2 * 64
    # more than 256 output elements: located against the random projection of the outputs
    assert p.output == "sum(v * outputs)" and p.output_shape == () and p.worst.output_index == ()


def test_fast_mode_locates_one_wrong_element_exactly():
    x = tg.randn(6, 7, seed=15, dtype=np.float64, requires_grad=True)
    res = tg.gradcheck(lambda x: OneElementBug.apply(x, bad=23), (x,), fast_mode=True, raise_exception=False, seed=1)
    p = res.pair("x")
    assert p.mode == "located" and p.mismatches == 1 and p.worst.index == np.unravel_index(23, (6, 7))
    assert p.worst.output_index == p.worst.index  # 42 outputs: located against every output element
    full = tg.gradcheck(lambda x: OneElementBug.apply(x, bad=23), (x,), raise_exception=False)
    assert full.pair("x").wrong.tolist() == p.wrong.tolist()


def test_fast_mode_checks_a_large_layer_in_few_evaluations():
    x = tg.randn(2, 16, 16, 16, seed=16, dtype=np.float64, requires_grad=True)
    w = tg.randn(16, 16, 5, 5, seed=17, dtype=np.float64, requires_grad=True)
    b = tg.randn(16, seed=18, dtype=np.float64, requires_grad=True)
    calls = []

    def conv(x, w, b):
        calls.append(1)
        return F.conv2d(x, w, b, padding=2)

    res = tg.gradcheck(conv, (x, w, b), fast_mode=True, raise_exception=False, seed=2)
    assert res.passed and {p.mode for p in res.pairs} == {"fast"}
    # 8,192 + 6,400 + 16 input elements: full mode would evaluate conv twice per element.
    assert len(calls) < 100, len(calls)


# ---- None, determinism, linearity, shapes, dtypes --------------------------------------------------
def test_none_gradient_for_an_input_that_matters_is_reported():
    class ForgetsB(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g * 2.0, None

    a = t64([1.0, 2.0])
    b = t64([2.0, 2.0], name="b")
    res = tg.gradcheck(ForgetsB.apply, (a, b), raise_exception=False)
    assert not res.passed
    assert [q.kind for q in res.problems] == ["none_grad"] and res.problems[0].input == "b"
    assert res.pair("b").mismatches == 2 and "None" in res.pair("b").note
    unused = tg.gradcheck(lambda a, b: a * 2, (a, b), raise_exception=False)
    assert unused.passed and any("'b' got no gradient" in n for n in unused.notes)


def test_nondeterministic_backward_is_caught_and_nondet_tol_allows_it():
    rng = np.random.default_rng(0)

    class Jitter(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3.0

        @staticmethod
        def backward(ctx, g):
            return g * 3.0 + tg.Tensor(rng.standard_normal(g.shape) * 1e-9)

    x = t64([1.0, -2.0, 0.5])
    res = tg.gradcheck(Jitter.apply, (x,), raise_exception=False)
    assert [q.kind for q in res.problems] == ["nondeterministic"] and res.problems[0].input == "x"
    assert tg.gradcheck(Jitter.apply, (x,), nondet_tol=1e-6)


def test_backward_that_is_not_linear_in_grad_output_is_caught():
    class SquaresGrad(Function):  # right for one-hot grad_outputs, wrong for any other
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * g * 2.0 * x

    x = t64([1.0, -2.0, 0.5])
    res = tg.gradcheck(SquaresGrad.apply, (x,), raise_exception=False)
    assert all(p.ok for p in res.pairs) and [q.kind for q in res.problems] == ["nonlinear"]
    assert not tg.gradcheck(SquaresGrad.apply, (x,), raise_exception=False, fast_mode=True, seed=0).passed


def test_backward_returning_wrong_dtype_is_reported_with_its_node():
    class Float32Grad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return (g * 2.0).float()

    x = t64([1.0, 2.0])
    res = tg.gradcheck(lambda x: Float32Grad.apply(x).exp(), (x,), raise_exception=False)
    assert [q.kind for q in res.problems] == ["dtype"] and res.problems[0].input == "x"
    assert "node #0 Float32Grad" in str(res) and "float32 gradient for a float64 input" in str(res)


def test_backward_that_raises_is_reported_and_located():
    class Raises(Function):
        @staticmethod
        def forward(ctx, x):
            return x + 1.0

        @staticmethod
        def backward(ctx, g):
            raise IndexError("boom")

    x = t64([1.0, 2.0], name="x")
    res = tg.gradcheck(lambda x: Raises.apply(x * 2.0).sum(), (x,), raise_exception=False)
    assert [q.kind for q in res.problems] == ["exception"]
    assert "IndexError: boom" in str(res) and "node #1 Raises" in str(res)


def test_forward_error_on_a_perturbed_input_names_the_element():
    def fragile(x):
        if x.data[1] > 2.0:
            raise ValueError("out of range")
        return x * 2

    with pytest.raises(RuntimeError, match=r"x\[1\] was moved by \+1e-06"):
        tg.gradcheck(fragile, (t64([0.0, 2.0]),))


# ---- gradgradcheck ----------------------------------------------------------------------------------
def test_gradgradcheck_with_given_grad_outputs_and_several_outputs():
    x = tg.randn(3, 2, seed=19, dtype=np.float64, requires_grad=True)
    w = tg.randn(2, 2, seed=20, dtype=np.float64, requires_grad=True)
    fn = lambda x, w: ((x @ w).sigmoid(), (x * x).sum())  # noqa: E731
    assert tg.gradgradcheck(fn, (x, w))
    assert tg.gradgradcheck(fn, (x, w), grad_outputs=(np.ones((3, 2)), np.array(2.0)))
    res = tg.gradgradcheck(fn, (x, w), raise_exception=False)
    assert {p.output for p in res.pairs} == {"grad x", "grad w"}
    assert {p.input for p in res.pairs} == {"x", "w", "grad_outputs[0]", "grad_outputs[1]"}
    with pytest.raises(ValueError, match="grad_outputs"):
        tg.gradgradcheck(fn, (x, w), grad_outputs=(np.ones((3, 2)),))


def test_gradgradcheck_fast_mode():
    x = tg.randn(2, 2, 5, 5, seed=21, dtype=np.float64, requires_grad=True)
    assert tg.gradgradcheck(lambda x: F.avg_pool2d(x.tanh(), 2), (x,), fast_mode=True, seed=3)


def conv_weight_grad_off(x, w):
    """conv2d whose weight gradient is 1% too large: small enough to hide in a sum over a layer."""
    return F.conv2d(x, ScaledBackward.apply(w, scale=1.01), padding=1)


def test_fast_mode_tolerance_does_not_grow_with_the_layer(monkeypatch):
    x = tg.randn(2, 4, 8, 8, seed=22, dtype=np.float64, requires_grad=True)
    w = tg.randn(8, 4, 3, 3, seed=23, dtype=np.float64, requires_grad=True)
    res = tg.gradcheck(conv_weight_grad_off, (x, w), fast_mode=True, raise_exception=False, seed=4)
    assert res.wrong_inputs() == ["w"] and res.pair("x").mode == "fast"
    p = res.pair("w")
    assert p.mode == "located" and p.output == "sum(v * outputs)" and p.worst is not None
    monkeypatch.setattr(checker, "LOCATE_MAX_ELEMENTS", 100)  # w has 288 elements: located by bisection
    res = tg.gradcheck(conv_weight_grad_off, (x, w), fast_mode=True, raise_exception=False, seed=4)
    p = res.pair("w")
    # Every element is 1% off: bisection reports the first eight and says there may be more.
    assert not p.ok and p.mode == "located" and p.mismatches == checker.BISECT_MAX_FOUND == int(p.wrong.sum())
    assert "there may be more" in p.note and p.worst.analytical == pytest.approx(1.01 * p.worst.numerical, rel=1e-4)


def test_fast_mode_bisects_a_large_input_down_to_its_wrong_elements():
    w = tg.randn(300, 200, seed=23, dtype=np.float64, requires_grad=True)  # more than LOCATE_MAX_ELEMENTS
    scale = np.ones(w.shape)
    scale.flat[[1234, 40000]] = 50.0, -30.0  # backward wrong at these two elements only
    res = tg.gradcheck(lambda w: ScaledBackward.apply(w, scale=scale).sum(axis=1), (w,), fast_mode=True, raise_exception=False, seed=4)
    p = res.pair("w")
    assert p.mode == "located" and p.mismatches == 2 and "bisection" in p.note and "may be more" not in p.note
    assert np.flatnonzero(p.wrong).tolist() == [1234, 40000]
    assert p.worst.index == (6, 34)  # 1234 = 6 * 200 + 34: reported in the input's shape
    assert p.worst.analytical == pytest.approx(50 * p.worst.numerical, rel=1e-6)
