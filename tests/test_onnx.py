"""ONNX export (checked by onnx.checker and run by onnxruntime) and import (outputs and gradients
against ours, finite differences and PyTorch), including untrusted and foreign files."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")  # the optional 'onnx' extra
ort = pytest.importorskip("onnxruntime")

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import nn  # noqa: E402
from tinygrad_cnn import onnx as tonnx  # noqa: E402
from tinygrad_cnn.check import gradcheck  # noqa: E402
from tinygrad_cnn.models import LeNet, SimpleConvNet  # noqa: E402
from tinygrad_cnn.nn import functional as F  # noqa: E402


def _x(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _run_ort(path, *xs):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, xs)))


def _ours(model, *xs):
    """Our output in eval mode (what export writes), leaving the model's mode as it was."""
    with tg.no_grad():
        if isinstance(model, tuple):
            return model[1](model[0], *[tg.tensor(x) for x in xs]).numpy()
        was = model.training
        model.eval()
        try:
            return model(*[tg.tensor(x) for x in xs]).numpy()
        finally:
            model.train(was)


def _check_export(model, shape, tmp_path, batches=(2, 5), name="m.onnx"):
    """Export, check with full_check, and compare onnxruntime with our outputs at two batch sizes."""
    path = tmp_path / name
    proto = tonnx.export(model, tg.tensor(_x((1,) + shape[1:])), path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    for b in batches:
        x = _x((b,) + shape[1:], seed=b)
        (got,) = _run_ort(path, x)
        ref = _ours(model, x)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    return proto


def _ops(proto):
    return [n.op_type for n in proto.graph.node]


# ---- export -----------------------------------------------------------------------------------
def test_export_simple_convnet(tmp_path):
    proto = _check_export(SimpleConvNet(seed=0), (1, 1, 28, 28), tmp_path)
    assert _ops(proto) == ["Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm"]
    names = {i.name for i in proto.graph.initializer}
    assert names == {"conv1.weight", "conv1.bias", "affine1.weight", "affine1.bias", "affine2.weight", "affine2.bias"}
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"


@pytest.mark.parametrize("kw", [{}, {"activation": "relu", "pooling": "max"}, {"activation": "tanh", "input_size": 32}])
def test_export_lenet(tmp_path, kw):
    proto = _check_export(LeNet(seed=0, **kw), (1, 1, kw.get("input_size", 28), kw.get("input_size", 28)), tmp_path)
    assert "c1.weight" in {i.name for i in proto.graph.initializer}


def _functional_cnn():
    rng = np.random.default_rng(1)

    def p(*s):
        return tg.tensor((rng.standard_normal(s) * 0.3).astype(np.float32), requires_grad=True)

    params = {"c1": {"w": p(4, 3, 3, 3), "b": p(4)}, "c2": {"w": p(4, 2, 3, 3)}, "fc": {"w": p(5, 4 * 3 * 3), "b": p(5)}}

    def fn(q, x):
        h = F.conv2d(x, q["c1"]["w"], q["c1"]["b"], padding="same")
        h = F.leaky_relu(h, 0.1)
        h = F.conv2d(h, q["c2"]["w"], stride=2, padding=1, dilation=2, groups=2)
        h = F.max_pool2d(h.tanh(), 2, ceil_mode=True)
        h = (h - h * 0.5) / 2.0 + (-h).sigmoid()
        h = F.avg_pool2d(h, 3, stride=1, padding=1, count_include_pad=False)
        y = F.linear(h.flatten(1), q["fc"]["w"], q["fc"]["b"])
        return F.log_softmax(y, dim=1) + F.softmax(y, dim=-1)

    return params, fn


def test_export_functional_cnn(tmp_path):
    model = _functional_cnn()
    proto = _check_export(model, (1, 3, 12, 12), tmp_path)
    ops = _ops(proto)
    for op in ("Conv", "LeakyRelu", "MaxPool", "AveragePool", "Gemm", "LogSoftmax", "Softmax", "Sigmoid", "Neg", "Div", "Sub", "Tanh"):
        assert op in ops, (op, ops)
    assert "Exp" not in ops and "ReduceMax" not in ops  # softmax family as the ONNX ops, not primitives
    assert {"c1.w", "c1.b", "c2.w", "fc.w", "fc.b"} <= {i.name for i in proto.graph.initializer}


def test_export_eval_mode_dropout_and_batch_norm(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, seed=0), nn.BatchNorm2d(3), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(), nn.Linear(12, 2, seed=1))
    model(tg.tensor(_x((4, 2, 4, 4))))  # training step: running statistics move away from 0/1
    proto = _check_export(model, (1, 2, 4, 4), tmp_path)
    assert model.training  # export leaves the mode as it was
    assert "BatchNormalization" in _ops(proto)
    assert {"1.running_mean", "1.running_var", "1.weight", "1.bias"} <= {i.name for i in proto.graph.initializer}


def test_export_unsupported_op_names_op_module_and_list(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3, seed=0)

        def forward(self, x):
            return self.fc(x).cumsum(1)

    with pytest.raises(NotImplementedError, match=r"CumSum.*created in the top level.*Supported ops:.*Conv2d"):
        tonnx.export(Net(), tg.tensor(_x((1, 3))), tmp_path / "x.onnx")

    class Inner(nn.Module):
        def forward(self, x):
            return x.cumsum(1)

    net = nn.Sequential(nn.Linear(3, 3, seed=0), Inner())
    with pytest.raises(NotImplementedError, match=r"CumSum \(created in 1\)"):
        tonnx.export(net, tg.tensor(_x((1, 3))), tmp_path / "x.onnx")


# ---- import and round trip --------------------------------------------------------------------
def _grads(model_fn, params, x):
    xt = tg.tensor(x, requires_grad=True)
    out = model_fn(params, xt)
    (out * tg.tensor(_x(out.shape, seed=7))).sum().backward()
    return xt.grad.numpy(), {k: v.grad.numpy() for k, v in params.items()}


@pytest.mark.parametrize("make", [lambda: SimpleConvNet(seed=0), lambda: LeNet(activation="relu", pooling="max", seed=0)])
def test_round_trip_outputs_and_gradients(tmp_path, make):
    model = make()
    path = tmp_path / "m.onnx"
    tonnx.export(model, tg.tensor(_x((1, 1, 28, 28))), path)
    params, fn = tonnx.load(path)
    assert set(params) == {n for n, _ in model.named_parameters()}
    x = _x((3, 1, 28, 28), seed=3)
    np.testing.assert_allclose(fn(params, tg.tensor(x)).numpy(), _ours(model, x), rtol=1e-6, atol=1e-7)
    gx, gp = _grads(fn, params, x)
    rx, rp = _grads(lambda p, xt: model(xt), dict(model.named_parameters()), x)
    np.testing.assert_allclose(gx, rx, rtol=1e-6, atol=1e-7)
    for k in rp:
        np.testing.assert_allclose(gp[k], rp[k], rtol=1e-6, atol=1e-7 * np.abs(rp[k]).max())


def test_round_trip_functional_model(tmp_path):
    model = _functional_cnn()
    path = tmp_path / "f.onnx"
    tonnx.export(model, tg.tensor(_x((1, 3, 12, 12))), path)
    params, fn = tonnx.load(path)
    x = _x((2, 3, 12, 12), seed=4)
    np.testing.assert_allclose(fn(params, tg.tensor(x)).numpy(), _ours(model, x), rtol=1e-6, atol=1e-6)


def test_loaded_model_gradcheck_as_module_and_draw(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, seed=0), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 3, seed=1)).double()
    path = tmp_path / "small.onnx"
    tonnx.export(model, tg.tensor(_x((1, 1, 4, 4), dtype=np.float64)), path)
    loaded = tonnx.load(path)
    params, fn = loaded
    x = tg.tensor(_x((2, 1, 4, 4), seed=5, dtype=np.float64), requires_grad=True)
    assert gradcheck(lambda xx, w, b: fn({**params, "0.weight": w, "0.bias": b}, xx), (x, params["0.weight"], params["0.bias"]))
    net = loaded.as_module()
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "4.weight", "4.bias"]
    np.testing.assert_allclose(net(x).numpy(), model(x).numpy(), rtol=1e-12)
    # Fine-tuning the module moves the loss down.
    from tinygrad_cnn.optim import SGD

    opt = SGD(net.parameters(), lr=0.1)
    target = tg.tensor(np.array([0, 2]))
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    from tinygrad_cnn.viz import draw_model

    g = draw_model(net, x.detach())
    assert "Conv2d" in g.source


def test_load_lists_every_unsupported_op(tmp_path):
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok"),
        helper.make_node("Hardmax", ["a"], ["b"], name="hm"),
        helper.make_node("Einsum", ["b", "b"], ["y"], name="es", equation="ij,ij->ij"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])])
    path = tmp_path / "u.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(NotImplementedError, match=r"Hardmax \(node 'hm'\), Einsum \(node 'es'\)") as e:
        tonnx.load(path)
    assert "Relu (node" not in str(e.value)
