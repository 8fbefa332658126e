from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.autograd.grad_mode import state
from tinygrad_cnn.func import _active, grad, hessian, jacobian, jvp, value_and_grad, vjp
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.pytree import tree_leaves, tree_structure

Pair = namedtuple("Pair", ["w", "b"])


def fd_grad(f, x, eps=1e-6):
    """Central differences of scalar f (numpy in, float out) at float64 array x."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def fd_jac(f, x, eps=1e-6):
    """Central-difference Jacobian of array-valued f: shape f(x).shape + x.shape."""
    y = np.asarray(f(x))
    J = np.zeros(y.shape + x.shape)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        J[(...,) + i] = (np.asarray(f(xp)) - np.asarray(f(xm))) / (2 * eps)
    return J


def model(p, x):
    """A small net: tanh layer then a scalar."""
    h = (x @ p["w"] + p["b"]).tanh()
    return (h * h).sum() + (p["w"] ** 2).sum() * 0.1


def _np(f):
    return lambda a: f(tg.tensor(a)).data


shapes = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))


@given(shapes, st.integers(0, 2**16))
def test_grad_of_pytree_matches_finite_differences(shape, seed):
    n, d, k = shape
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal((n, d)))
    p = {"w": tg.tensor(rng.standard_normal((d, k))), "b": rng.standard_normal(k)}
    g = grad(model)(p, x)
    assert tree_structure(g) == tree_structure(p)
    assert isinstance(g["w"], tg.Tensor) and isinstance(g["b"], np.ndarray)  # types follow the inputs
    assert not g["w"].requires_grad
    fw = fd_grad(lambda w: model({"w": tg.tensor(w), "b": p["b"]}, x).item(), p["w"].data)
    fb = fd_grad(lambda b: model({"w": p["w"], "b": tg.tensor(b)}, x).item(), p["b"])
    np.testing.assert_allclose(g["w"].data, fw, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g["b"], fb, rtol=1e-6, atol=1e-8)
    v, g2 = value_and_grad(model)(p, x)
    np.testing.assert_allclose(v.item(), model(p, x).item())
    np.testing.assert_allclose(g2["w"].data, g["w"].data)


@given(st.integers(1, 5), st.integers(0, 2**16))
def test_jvp_vjp_jacobian_agree_with_finite_differences(n, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n + 1, n))

    def f(x):
        return (tg.tensor(A) @ x).tanh() * x.sum()

    x = rng.standard_normal(n)
    J = fd_jac(_np(f), x)
    np.testing.assert_allclose(jacobian(f)(x), J, rtol=1e-6, atol=1e-8)
    v = rng.standard_normal(n)
    y, t = jvp(f, (x,), (v,))
    np.testing.assert_allclose(y.data, f(tg.tensor(x)).data)
    np.testing.assert_allclose(t.data, J @ v, rtol=1e-6, atol=1e-8)
    u = rng.standard_normal(n + 1)
    y2, vjp_fn = vjp(f, x)
    (gx,) = vjp_fn(u)
    np.testing.assert_allclose(gx, u @ J, rtol=1e-6, atol=1e-8)
    (gx2,) = vjp_fn(tg.tensor(2 * u))  # callable again, Tensor cotangents too
    np.testing.assert_allclose(gx2, 2 * u @ J, rtol=1e-6, atol=1e-8)


def test_grad_of_grad_and_hessian():
    f = lambda x: (x**3).sum() + (x[0] * x[1]).sum()  # noqa: E731
    x = np.array([1.5, -2.0, 0.5])
    d2 = grad(lambda x: grad(f)(x)[2])(x)  # row 2 of the Hessian
    np.testing.assert_allclose(d2, [0, 0, 6 * 0.5])
    H = hessian(f)(x)
    H_fd = fd_jac(lambda a: grad(f)(a), x)
    np.testing.assert_allclose(H, H_fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(H, np.diag(6 * x) + np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    # A third derivative of a scalar function of a Python float.
    assert grad(grad(grad(lambda t: t * t * t * t)))(2.0) == pytest.approx(24 * 2.0)


def test_hessian_of_small_cnn_loss_wrt_a_few_parameters():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 5, 5))
    y = np.array([0, 2])
    w = rng.standard_normal((2, 1, 3, 3)) * 0.5
    fc = rng.standard_normal((3, 18)) * 0.3

    def loss(p):
        h = F.conv2d(tg.tensor(x), tg.tensor(w), p["cb"]).tanh()
        return F.cross_entropy(F.linear(h.reshape(2, 18), tg.tensor(fc), p["fb"]), y)

    p = {"cb": rng.standard_normal(2) * 0.1, "fb": rng.standard_normal(3) * 0.1}
    H = hessian(loss)(p)
    assert H["cb"]["cb"].shape == (2, 2) and H["cb"]["fb"].shape == (2, 3) and H["fb"]["fb"].shape == (3, 3)

    def flat_grad(v):
        g = grad(loss)({"cb": v[:2], "fb": v[2:]})
        return np.concatenate([g["cb"], g["fb"]])

    H_fd = fd_jac(flat_grad, np.concatenate([p["cb"], p["fb"]]))
    full = np.block([[H["cb"]["cb"], H["cb"]["fb"]], [H["fb"]["cb"], H["fb"]["fb"]]])
    np.testing.assert_allclose(full, H_fd, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(full, full.T, atol=1e-12)


def test_argnums_tuple_negative_and_kwargs():
    f = lambda a, b, c=1.0: (a * b * c).sum()  # noqa: E731
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    ga, gb = grad(f, argnums=(0, 1))(a, b, c=2.0)
    np.testing.assert_allclose(ga, 2 * b)
    np.testing.assert_allclose(gb, 2 * a)
    np.testing.assert_allclose(grad(f, argnums=-1)(a, b), a)


def test_structures_and_leaf_types_are_mirrored():
    p = {"pair": Pair(tg.tensor([1.0, 2.0], dtype=np.float64), None), "s": [np.float64(3.0), 4.0], "none": None}
    f = lambda p: (p["pair"].w * p["s"][0] * p["s"][1]).sum()  # noqa: E731
    g = grad(f)(p)
    assert tree_structure(g) == tree_structure(p)
    assert isinstance(g["pair"], Pair) and g["pair"].b is None and g["none"] is None
    assert isinstance(g["s"][0], np.float64) and isinstance(g["s"][1], float)
    np.testing.assert_allclose(g["pair"].w.data, [12.0, 12.0])
    assert g["s"][0] == pytest.approx(12.0) and g["s"][1] == pytest.approx(9.0)


def test_unused_inputs_and_constant_functions_get_zeros():
    g = grad(lambda a, b: (a * 2).sum(), argnums=(0, 1))(np.ones(2), np.ones(3))
    np.testing.assert_array_equal(g[1], np.zeros(3))
    np.testing.assert_array_equal(grad(lambda a: tg.tensor(5.0))(np.ones(2)), np.zeros(2))


def test_has_aux():
    def f(x):
        y = x * x
        return y.sum(), {"y": y}

    (g, aux) = grad(f, has_aux=True)(tg.tensor([1.0, 3.0]))
    np.testing.assert_allclose(g.data, [2, 6])
    np.testing.assert_allclose(aux["y"].data, [1, 9])
    assert not aux["y"].requires_grad
    (v, aux), g = value_and_grad(f, has_aux=True)(tg.tensor([1.0, 3.0]))
    assert v.item() == 10.0
    out, vjp_fn, aux = vjp(lambda x: (x * 2, x.sum()), tg.tensor([1.0]), has_aux=True)
    assert aux.item() == 1.0 and vjp_fn(np.ones(1, np.float32))[0].item() == 2.0
    _, t, aux = jvp(lambda x: (x * 3, "tag"), (tg.tensor([1.0]),), (tg.tensor([1.0]),), has_aux=True)
    assert aux == "tag" and t.item() == 3.0
    jac, aux = jacobian(lambda x: (x * 3, 7), has_aux=True)(tg.tensor([1.0]))
    assert aux == 7 and jac.item() == 3.0


def test_pure_grad_untouched_state_restored_and_no_aliasing():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    x.grad = tg.tensor([7.0, 7.0])
    with tg.no_grad():
        g = grad(lambda a, b: (a + b).sum(), argnums=(0, 1))(x, x)
    assert state().enabled is True
    np.testing.assert_array_equal(x.grad.data, [7.0, 7.0])  # never touched
    assert not g[0].requires_grad  # under no_grad nothing is recorded
    # Add hands one gradient array to both inputs, and sum's backward is a read-only broadcast: results are
    # still independent and writable.
    g[0].data[0] = 100.0
    assert g[1].data[0] == 1.0
    c = np.ones(2, dtype=np.float32)
    (gc,) = vjp(lambda t: t + 0.0, tg.tensor([1.0, 2.0]))[1](c)
    gc.data[0] = 5.0
    assert c[0] == 1.0
    _, tc = jvp(lambda t: t + 0.0, (tg.tensor([1.0, 2.0]),), (c,))
    tc.data[0] = 5.0
    assert c[0] == 1.0
    a = np.ones(3)
    ga = grad(lambda t: t.sum())(a)
    ga += 1
    np.testing.assert_array_equal(a, np.ones(3))
    assert state().enabled and state().scope == ()

    def boom(x):
        raise RuntimeError("inside f")

    with pytest.raises(RuntimeError, match="inside f"):
        grad(lambda x: grad(boom)(x))(x)
    assert _active() == [] and state().enabled


def test_nesting_with_closures_and_plain_backward():
    # d/dx [ d/dy (x * y^2) at y0 ] = 2 y0
    y0 = np.array([3.0, -1.0])
    outer = grad(lambda x: grad(lambda y: (x * y * y).sum())(y0).sum())(np.array([0.5, 2.0]))
    np.testing.assert_allclose(outer, 2 * y0)
    # The outermost result is detached and of the input's type: the inner transform's own leaves
    # do not count as someone who may still differentiate.
    assert type(outer) is np.ndarray
    assert type(grad(lambda x: grad(lambda y: x * y * y)(3.0))(0.5)) is float
    H = hessian(lambda x: (x**3).sum())(tg.tensor([1.0, 2.0]))
    assert not H.requires_grad and H.grad_fn is None
    _, t = jvp(lambda z: z**3, (tg.tensor([1.0]),), (tg.tensor([1.0]),))
    assert not t.requires_grad
    # A gradient of a user's Tensor that requires grad stays differentiable by ordinary backward.
    x = tg.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    g = grad(lambda t: (t**3).sum())(x)
    assert g.requires_grad and x.grad is None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)
    # jvp inside grad: d/dx <J_f(x) v> with f = x^3 elementwise, v = 1: d/dx sum(3x^2) = 6x
    h = grad(lambda x: jvp(lambda z: z**3, (x,), (np.ones(2),))[1].sum())(np.array([1.0, 2.0]))
    np.testing.assert_allclose(h, [6.0, 12.0])
    # vjp inside jacobian (= hessian via vjp)
    H = jacobian(lambda x: vjp(lambda z: (z**3).sum(), x)[1](np.float64(1.0))[0])(np.array([1.0, 2.0]))
    np.testing.assert_allclose(H, np.diag([6.0, 12.0]))


def test_errors():
    x = tg.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"argnums=2 refers to positional argument 2, but f was called with 1"):
        grad(lambda a: a.sum(), argnums=2)(x)
    with pytest.raises(TypeError, match="argnums must be an int"):
        grad(lambda a: a.sum(), argnums="a")
    with pytest.raises(ValueError, match="twice"):
        grad(lambda a: a.sum(), argnums=(0, 0))
    with pytest.raises(ValueError, match=r"shape \(2,\).*vjp.*jacobian"):
        grad(lambda a: a * 2)(x)
    with pytest.raises(TypeError, match="has_aux=True"):
        grad(lambda a: a.sum(), has_aux=True)(x)
    with pytest.raises(TypeError, match=r"\(output, aux\)"):
        grad(lambda a: a.sum(), has_aux=True)(x)
    with pytest.raises(TypeError, match="pass has_aux=True"):
        grad(lambda a: (a.sum(), 1))(x)
    params = {"conv1": {"w": np.ones(2), "b": np.array([1, 2])}}
    with pytest.raises(TypeError, match=r"params\['conv1'\]\['b'\].*int64.*not a floating-point"):
        grad(lambda params: params["conv1"]["w"].sum())(params)
    with pytest.raises(TypeError, match=r"args\[0\]\[1\]"):
        grad(lambda *a: a[0][0].sum())([x, 3])
    # jacobian, jacrev and jacfwd name the differentiated argument by f's own parameter name
    from tinygrad_cnn.func import jacfwd

    def scaled(x, weights):
        return x * weights["w"]

    for jac in (jacobian, jacfwd):
        with pytest.raises(TypeError, match=rf"{jac.__name__}: cannot differentiate with respect to weights\['w'\]: .*int64"):
            jac(scaled, argnums=1)(x, {"w": np.array([1, 2])})
    y, vjp_fn = vjp(lambda p: {"a": p * 2, "b": [p.sum()]}, x)
    with pytest.raises(ValueError, match=r"cotangent\['b'\]: expected a list of length 1, got a list of length 2"):
        vjp_fn({"a": np.ones(2, np.float32), "b": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"cotangent\['a'\] has shape \(3,\) but the output there has shape \(2,\)"):
        vjp_fn({"a": np.ones(3, np.float32), "b": [1.0]})
    with pytest.raises(ValueError, match=r"tangents\[0\]\['w'\] has shape \(3,\)"):
        jvp(lambda p: p["w"] * 2, ({"w": x},), ({"w": np.ones(3)},))
    with pytest.raises(ValueError, match=r"tangents\[0\]: dict keys .*missing keys \['w'\]"):
        jvp(lambda p: p["w"] * 2, ({"w": x},), ({"v": np.ones(2)},))
    with pytest.raises(TypeError, match="tuples of arguments"):
        jvp(lambda a: a, x, x)
    with pytest.raises(ValueError, match="argnums"):
        jacobian(lambda a: a, argnums=1)(x)


def test_jacobian_of_pytree_output_and_argnums_tuple():
    def f(a, b):
        return {"s": (a * b).sum(), "v": [a * 2]}

    a, b = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    J = jacobian(f, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(J["s"][0], b)
    np.testing.assert_allclose(J["s"][1], a)
    np.testing.assert_allclose(J["v"][0][0], 2 * np.eye(2))
    np.testing.assert_allclose(J["v"][0][1], np.zeros((2, 2)))
    assert len(tree_leaves(J)) == 4


# ---- functional_call ------------------------------------------------------------------------
def _mlp():
    from tinygrad_cnn import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(3, 4, dtype=np.float64, seed=0)
            self.fc2 = nn.Linear(4, 2, dtype=np.float64, seed=1)

        def forward(self, x):
            return self.fc2(self.fc1(x).tanh())

    return Net()


def _snapshot(m):
    return {k: (id(v), v.data.copy()) for k, v in m.state_dict(keep_vars=True).items()}


def _same_module(m, snap):
    now = m.state_dict(keep_vars=True)
    assert list(now) == list(snap)
    for k, (i, arr) in snap.items():
        assert id(now[k]) == i
        np.testing.assert_array_equal(now[k].data, arr)


def test_functional_call_uses_given_params_and_restores_module():
    from tinygrad_cnn.func import functional_call, get_params

    m = _mlp()
    snap = _snapshot(m)
    x = np.random.default_rng(0).standard_normal((5, 3))
    p = get_params(m)
    assert list(p) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert all(not v.requires_grad for v in p.values())
    np.testing.assert_allclose(functional_call(m, p, x).data, m(x).data)
    p2 = {k: v * 2 for k, v in p.items()}
    expect = np.tanh(x @ (2 * p["fc1.weight"].data).T + 2 * p["fc1.bias"].data) @ (2 * p["fc2.weight"].data).T + 2 * p["fc2.bias"].data
    np.testing.assert_allclose(functional_call(m, p2, x).data, expect)
    _same_module(m, snap)
    # Only some names given: the others keep the module's own values.
    out = functional_call(m, {"fc2.bias": np.zeros(2)}, x)
    np.testing.assert_allclose(out.data, m(x).data - m.fc2.bias.data)
    # get_params returns copies: changing them leaves the module alone.
    p["fc1.weight"].data[...] = 0
    _same_module(m, snap)


def test_functional_call_restores_on_error_and_checks_names_and_shapes():
    from tinygrad_cnn.func import functional_call, get_params

    m = _mlp()
    snap = _snapshot(m)
    p = get_params(m)
    with pytest.raises(ValueError, match="matmul|shape"):
        functional_call(m, p, np.ones((2, 7)))  # the forward fails
    _same_module(m, snap)
    with pytest.raises(ValueError, match=r"no parameter or buffer named \['fc3.weight'\]"):
        functional_call(m, {"fc3.weight": np.ones(2)}, np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"params\['fc1.bias'\] has shape \(5,\)"):
        functional_call(m, {**p, "fc1.bias": np.ones(5)}, np.ones((1, 3)))
    _same_module(m, snap)
    with pytest.raises(TypeError, match="dict name -> Tensor"):
        functional_call(m, [1.0], np.ones((1, 3)))


def test_grad_through_functional_call_matches_module_backward():
    from tinygrad_cnn.func import functional_call, get_params

    m = _mlp()
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 3)), rng.integers(0, 2, 6)

    def loss(p):
        return F.cross_entropy(functional_call(m, p, x), y)

    g = grad(loss)(get_params(m))
    assert all(q.grad is None for q in m.parameters())  # pure: the module's .grad untouched
    F.cross_entropy(m(x), y).backward()
    for k, q in m.named_parameters():
        np.testing.assert_allclose(g[k].data, q.grad.data, rtol=1e-12)


def test_functional_call_replaces_shared_parameters_everywhere():
    from tinygrad_cnn import nn
    from tinygrad_cnn.func import functional_call, get_params

    a = nn.Linear(2, 2, dtype=np.float64, seed=0)
    m = nn.Sequential(a, a)  # the same layer twice: named_parameters lists it once
    p = get_params(m)
    assert list(p) == ["0.weight", "0.bias"]
    z = {k: np.zeros_like(v.data) for k, v in p.items()}
    np.testing.assert_array_equal(functional_call(m, z, np.ones((1, 2))).data, np.zeros((1, 2)))


def test_functional_call_never_changes_buffers_of_the_module():
    from tinygrad_cnn import nn
    from tinygrad_cnn.func import functional_call, get_params

    m = nn.Sequential(nn.Linear(3, 4, dtype=np.float64, seed=0), nn.BatchNorm1d(4, dtype=np.float64))
    m.train()
    snap = {k: v.data.copy() for k, v in m.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((8, 3))
    functional_call(m, get_params(m), x)  # training mode: BatchNorm updates running statistics
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.data, snap[k])
    # Buffers passed in params receive the updates instead.
    p = get_params(m, buffers=True)
    assert "1.running_mean" in p and "1.num_batches_tracked" in p
    functional_call(m, p, x)
    assert not np.allclose(p["1.running_mean"].data, 0) and int(p["1.num_batches_tracked"].item()) == 1
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.data, snap[k])
    # The same updates as the module's own forward makes.
    m(x)
    np.testing.assert_allclose(m.state_dict()["1.running_mean"].data, p["1.running_mean"].data)
