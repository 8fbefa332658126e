"""ONNX export (checked by onnx.checker and run by onnxruntime) and import (outputs and gradients
against ours, finite differences and PyTorch), including untrusted and foreign files."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")  # the optional 'onnx' extra
ort = pytest.importorskip("onnxruntime")

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import nn  # noqa: E402
from tinygrad_cnn import onnx as tonnx  # noqa: E402
from tinygrad_cnn.check import gradcheck  # noqa: E402
from tinygrad_cnn.models import AlexNet, LeNet, SimpleConvNet  # noqa: E402
from tinygrad_cnn.nn import functional as F  # noqa: E402
from tinygrad_cnn.onnx import OnnxFileError  # noqa: E402


def _model(graph, opset):
    """A model of ``graph`` at ``opset``, with the oldest IR version that opset allows (as the
    exporter writes them), so that onnxruntime releases older than the onnx package read it."""
    helper = onnx.helper
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))


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
    for value in (proto.graph.input[0], proto.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim[1:]] == [10]


@pytest.mark.parametrize("kw", [{}, {"activation": "relu", "pooling": "max"}, {"activation": "tanh", "input_size": 32}])
def test_export_lenet(tmp_path, kw):
    proto = _check_export(LeNet(seed=0, **kw), (1, 1, kw.get("input_size", 28), kw.get("input_size", 28)), tmp_path)
    assert "c1.weight" in {i.name for i in proto.graph.initializer}


def _functional_cnn():
    rng = np.random.default_rng(1)

    def p(*s):
        return tg.tensor((rng.standard_normal(s) * 0.3).astype(np.float32), requires_grad=True)

    params = {"c1": {"w": p(4, 3, 3, 3), "b": p(4)}, "c2": [{"w": p(4, 2, 3, 3)}], "fc": {"w": p(5, 4 * 3 * 3), "b": p(5)}}

    def fn(q, x):
        h = F.conv2d(x, q["c1"]["w"], q["c1"]["b"], padding="same")
        h = F.leaky_relu(h, 0.1)
        h = F.conv2d(h, q["c2"][0]["w"], stride=2, padding=1, dilation=2, groups=2)
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
    assert {"c1.w", "c1.b", "c2.0.w", "fc.w", "fc.b"} <= {i.name for i in proto.graph.initializer}


def test_export_eval_mode_dropout_and_batch_norm(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, seed=0), nn.BatchNorm2d(3), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(), nn.Linear(12, 2, seed=1))
    model(tg.tensor(_x((4, 2, 4, 4))))  # training step: running statistics move away from 0/1
    proto = _check_export(model, (1, 2, 4, 4), tmp_path)
    assert model.training  # export leaves the mode as it was
    assert "BatchNormalization" in _ops(proto)
    assert {"1.running_mean", "1.running_var", "1.weight", "1.bias"} <= {i.name for i in proto.graph.initializer}
    # Loaded back, the running statistics are buffers and the state_dict keys are the model's.
    net = tonnx.load(tmp_path / "m.onnx").as_module()
    assert {n for n, _ in net.named_buffers()} == {"1.running_mean", "1.running_var"}
    assert set(net.state_dict()) == set(model.state_dict()) - {"1.num_batches_tracked"}
    x = _x((3, 2, 4, 4), seed=8)
    np.testing.assert_allclose(net(tg.tensor(x)).numpy(), _ours(model, x), rtol=1e-6, atol=1e-6)


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
    with pytest.raises(NotImplementedError, match=r"op CumSum \(created in 1\) has"):
        tonnx.export(net, tg.tensor(_x((1, 3))), tmp_path / "x.onnx")

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 3, seed=0), Inner()

        def forward(self, x):
            return self.b(self.a(x)).prod(1) + x.cumsum(1).sum(1)

    listed = r"ops CumSum \(created in b\), Prod \(created in the top level\), CumSum \(created in the top level\) have"
    with pytest.raises(NotImplementedError, match=listed):
        tonnx.export(Two(), tg.tensor(_x((1, 3))), tmp_path / "x.onnx")


def _many_ops_model():
    rng = np.random.default_rng(2)

    def p(*s):
        return tg.tensor((rng.standard_normal(s) * 0.3).astype(np.float32), requires_grad=True)

    params = {"ct": p(3, 4, 3, 3), "ctb": p(4), "c": p(4, 4, 3, 3)}

    def fn(q, x):
        h = F.conv_transpose2d(x, q["ct"], q["ctb"], stride=2, padding=1, output_padding=1)
        h = F.gelu(h)
        h = F.pad(h, (1, 2, 0, 1))
        h = F.pad(h, (1, 1, 1, 1), mode="reflect")
        h = F.conv2d(h, q["c"], padding=1)
        h = F.local_response_norm(h, 3, alpha=1e-2, beta=0.75, k=1.5)
        a = F.adaptive_avg_pool2d(h, (3, 3))
        g = F.adaptive_avg_pool2d(h, 1)
        s = tg.cat([a[:, :2].flatten(1), g.squeeze(-1).squeeze(-1), a[:, :, 1:, ::-1].sum((2, 3))], dim=1)
        s = s + a.mean(dim=(2, 3)).amax(dim=1, keepdim=True) - h[:, 1, 2:5, 0].unsqueeze(1).sum(-1)
        s = tg.index_select(s, 1, tg.tensor(np.array([0, 3, 5, 1])))
        return s**2 * 0.5

    return params, fn


def test_export_many_ops(tmp_path):
    model = _many_ops_model()
    proto = _check_export(model, (1, 3, 5, 5), tmp_path, batches=(2, 3))
    ops = set(_ops(proto))
    expect = {"ConvTranspose", "Gelu", "Pad", "Slice", "Concat", "Conv", "MatMul", "GlobalAveragePool", "ReduceSum", "ReduceMax",
              "ReduceMean", "Squeeze", "Unsqueeze", "Gather", "Pow", "Flatten"}
    assert expect <= ops, expect - ops
    assert "Erf" not in ops
    params, fn = tonnx.load(tmp_path / "m.onnx")
    x = _x((2, 3, 5, 5), seed=9)
    np.testing.assert_allclose(fn(params, tg.tensor(x)).numpy(), _ours(model, x), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_export_alexnet(tmp_path):
    # The full 227x227 network (its input size is fixed); ten classes keep fc8 small.
    proto = _check_export(AlexNet(num_classes=10, seed=0), (1, 3, 227, 227), tmp_path, batches=(1, 2))
    assert _ops(proto) == ["Conv", "Relu", "LRN", "MaxPool", "Conv", "Relu", "LRN", "MaxPool", "Conv", "Relu", "Conv", "Relu",
                           "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm"]
    assert "features.conv1.weight" in {i.name for i in proto.graph.initializer}


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
    onnx.save(_model(graph, 17), str(path))
    with pytest.raises(NotImplementedError, match=r"Hardmax \(node 'hm'\), Einsum \(node 'es'\)") as e:
        tonnx.load(path)
    assert "Relu (node" not in str(e.value)



def test_loaded_model_names_its_inputs_and_outputs():
    from onnx import TensorProto, helper

    from tinygrad_cnn.onnx.importer import from_proto

    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Relu", ["s"], ["r"])], "g",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("a", "b")],
                              [helper.make_tensor_value_info("r", TensorProto.FLOAT, [2])])
    model = from_proto(_model(graph, 17))
    assert (model.input_names, model.output_names) == (("a", "b"), ("r",))
    np.testing.assert_array_equal(model.fn(model.params, np.array([1.0, -3.0], np.float32), np.ones(2, np.float32)).data, [2.0, 0.0])


def test_unsqueeze_without_axes_names_the_node():
    # The reader's checker refuses such a file; a ModelProto given to from_proto is not checked.
    from onnx import TensorProto, helper

    from tinygrad_cnn.onnx.importer import from_proto

    graph = helper.make_graph([helper.make_node("Unsqueeze", ["x"], ["y"], name="unsq")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    params, fn = from_proto(_model(graph, 17), "u.onnx")
    with pytest.raises(ValueError, match=r"u\.onnx: node 'unsq' \(Unsqueeze\): Unsqueeze has no axes"):
        fn(params, _x((2,)))

# ---- untrusted files --------------------------------------------------------------------------
def _tiny_model(initializer, dims=(2, 2)):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(dims))],
        initializer=[initializer],
    )
    return _model(graph, 17)


def _external(name, location, length=16, offset=0, dims=(2, 2)):
    from onnx import TensorProto

    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims), data_location=TensorProto.EXTERNAL)
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def test_truncated_and_corrupted_files_raise_one_error_naming_the_file(tmp_path):
    path = tmp_path / "lenet.onnx"
    tonnx.export(LeNet(seed=0), tg.tensor(_x((1, 1, 28, 28))), path)
    data = path.read_bytes()
    for name, content in (("half.onnx", data[: len(data) // 2]), ("tail.onnx", data[:-7]), ("noise.onnx", bytes(range(256)) * 8),
                          ("empty.onnx", b"")):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(OnnxFileError, match=name):
            tonnx.load(bad)
    with pytest.raises(OnnxFileError, match="missing.onnx"):
        tonnx.load(tmp_path / "missing.onnx")


def test_tensor_sizes_are_checked_before_allocation(tmp_path):
    from onnx import TensorProto

    # dims promising 2**40 floats with 16 bytes present: refused without allocating 4 TiB.
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**20, 2**20], raw_data=b"\0" * 16)
    onnx.save(_tiny_model(huge), str(tmp_path / "huge.onnx"))
    with pytest.raises(OnnxFileError, match=r"huge\.onnx.*'w'.*needs 4398046511104 bytes, the file holds 16"):
        tonnx.load(tmp_path / "huge.onnx")
    few = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 2], float_data=[1.0, 2.0])
    onnx.save(_tiny_model(few), str(tmp_path / "few.onnx"))
    with pytest.raises(OnnxFileError, match="needs 4 values, the file holds 2"):
        tonnx.load(tmp_path / "few.onnx")
    (tmp_path / "short.bin").write_bytes(b"\0" * 8)
    onnx.save(_tiny_model(_external("w", "short.bin")), str(tmp_path / "short.onnx"))
    with pytest.raises(OnnxFileError, match=r"short\.onnx.*needs 16 bytes at offset 0 of 'short\.bin', which holds only 8"):
        tonnx.load(tmp_path / "short.onnx")
    onnx.save(_tiny_model(_external("w", "short.bin", length=2**40)), str(tmp_path / "lies.onnx"))
    with pytest.raises(OnnxFileError, match="needs 16 bytes but its external data says 1099511627776"):
        tonnx.load(tmp_path / "lies.onnx")


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "link.bin").symlink_to(secret)
    for name, location in (("up.onnx", "../secret.bin"), ("abs.onnx", str(secret)), ("link.onnx", "link.bin"), ("nul.onnx", "w\x00.bin")):
        onnx.save(_tiny_model(_external("w", location)), str(folder / name))
        with pytest.raises(OnnxFileError, match=rf"{name}.*'w'.*(outside the model's folder|not a path relative)"):
            tonnx.load(folder / name)
    # The same data inside the folder loads.
    (folder / "w.bin").write_bytes(secret.read_bytes())
    onnx.save(_tiny_model(_external("w", "w.bin")), str(folder / "ok.onnx"))
    params, fn = tonnx.load(folder / "ok.onnx")
    np.testing.assert_array_equal(fn(params, np.ones((2, 2), np.float32)).numpy(), 1 + np.arange(4.0).reshape(2, 2))


def test_model_saved_with_external_data_round_trips(tmp_path):
    model = SimpleConvNet(seed=0)
    proto = tonnx.export(model, tg.tensor(_x((1, 1, 28, 28))), tmp_path / "a.onnx")
    onnx.save(proto, str(tmp_path / "b.onnx"), save_as_external_data=True, location="b.data", size_threshold=0)
    params, fn = tonnx.load(tmp_path / "b.onnx")
    x = _x((2, 1, 28, 28))
    np.testing.assert_array_equal(fn(params, tg.tensor(x)).numpy(), _ours(model, x))


# ---- a model from another framework -----------------------------------------------------------
def _torch_lenet(torch):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(1, 6, 5, padding=2)
            self.bn = torch.nn.BatchNorm2d(6)
            self.c2 = torch.nn.Conv2d(6, 16, 5)
            self.f1 = torch.nn.Linear(16 * 5 * 5, 32)
            self.f2 = torch.nn.Linear(32, 10)

        def forward(self, x):
            x = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.c1(x))), 2)
            x = torch.nn.functional.avg_pool2d(torch.tanh(self.c2(x)), 2)
            x = x.view(x.size(0), -1)
            return torch.log_softmax(self.f2(torch.sigmoid(self.f1(x))), 1)

    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_import_lenet_exported_by_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    import warnings

    net = _torch_lenet(torch)
    path = tmp_path / "torch_lenet.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Without constant folding the exporter keeps BatchNormalization (and c1.weight) as they are.
        torch.onnx.export(net, (torch.randn(2, 1, 28, 28),), str(path), dynamo=False, do_constant_folding=False,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    params, fn = tonnx.load(path)
    assert {"c1.weight", "bn.running_var", "f2.bias"} <= set(params)
    assert "BatchNormalization" in [n.op_type for n in onnx.load(str(path)).graph.node]
    x = _x((3, 1, 28, 28), seed=11)
    xt = tg.tensor(x, requires_grad=True)
    y = fn(params, xt)
    tx = torch.tensor(x, requires_grad=True)
    ty = net(tx)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    cot = _x(ty.shape, seed=12)
    (y * tg.tensor(cot)).sum().backward()
    (ty * torch.tensor(cot)).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    tparams = dict(net.named_parameters())
    for name in ("c1.weight", "bn.weight", "bn.bias", "c2.bias", "f1.weight", "f2.bias"):
        np.testing.assert_allclose(params[name].grad.numpy(), tparams[name].grad.numpy(), rtol=1e-4, atol=1e-6)


# ---- command line -----------------------------------------------------------------------------
def test_cli_export_checkpoint(tmp_path, capsys):
    from tinygrad_cnn.cli import main
    from tinygrad_cnn.train import save_checkpoint
    from tinygrad_cnn.train.registry import build_model

    model = build_model("lenet", activation="relu", seed=3)
    ck = save_checkpoint(tmp_path / "epoch_001.npz", model, epoch=1, config={"model": "lenet", "model_kwargs": {"activation": "relu"}})
    out = tmp_path / "lenet.onnx"
    assert main(["export", "lenet", "--checkpoint", str(ck), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    x = _x((2, 1, 32, 32))
    (got,) = _run_ort(out, x)
    np.testing.assert_allclose(got, _ours(model, x), rtol=1e-5, atol=1e-6)
    assert main(["export", "alexnet", "--checkpoint", str(ck), "-o", str(tmp_path / "a.onnx")]) == 2
    assert "holds a lenet, not a alexnet" in capsys.readouterr().err


def test_cli_export_functional_factory(tmp_path, capsys, monkeypatch):
    from tinygrad_cnn.cli import main

    (tmp_path / "my_models.py").write_text(
        "import numpy as np\nimport tinygrad_cnn as tg\nfrom tinygrad_cnn.nn import functional as F\n\n"
        "def make():\n"
        "    w = tg.tensor(np.ones((2, 1, 3, 3), np.float32), requires_grad=True)\n"
        "    return {'w': w}, lambda p, x: F.relu(F.conv2d(x, p['w']))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "f.onnx"
    assert main(["export", "my_models:make", "--shape", "1,1,5,5", "-o", str(out)]) == 0
    (got,) = _run_ort(out, np.ones((3, 1, 5, 5), np.float32))
    np.testing.assert_array_equal(got, np.full((3, 2, 3, 3), 9.0, np.float32))
    assert main(["export", "my_models:make", "-o", str(out)]) == 2
    assert "--shape" in capsys.readouterr().err


def test_docs_op_table_lists_every_mapping():
    import pathlib

    from tinygrad_cnn.onnx.importer import IMPORTERS

    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "onnx.md").read_text()
    table = text[text.index("## The op table") :]
    for ours in tonnx.supported_ops():
        assert f"`{ours}`" in table, ours
    for op in IMPORTERS:
        assert f"`{op}`" in table, op


def test_export_opset_and_several_inputs(tmp_path):
    w = tg.tensor(_x((3, 4)), requires_grad=True)

    def fn(p, a, b):
        return F.gelu(a @ p["w"]) * b

    # leaky_relu straight on an input (a leaf, not a node) is still LeakyRelu.
    proto = _check_export(({"w": w}, lambda p, a: F.leaky_relu(a, 0.2) @ p["w"]), (1, 3), tmp_path, name="lr.onnx")
    assert _ops(proto) == ["LeakyRelu", "MatMul"]
    with pytest.raises(ValueError, match="opset 13 is not supported; use 18 to"):
        tonnx.export(({"w": w}, fn), (_x((1, 3)), _x((1, 4))), tmp_path / "x.onnx", opset=13)
    for opset, gelu in ((18, "Erf"), (20, "Gelu")):
        path = tmp_path / f"g{opset}.onnx"
        proto = tonnx.export(({"w": w}, fn), (_x((1, 3)), _x((1, 4))), path, opset=opset, input_names=["a", "b"])
        assert gelu in _ops(proto) and [i.name for i in proto.graph.input] == ["a", "b"]
        a, b = _x((5, 3), seed=1), _x((5, 4), seed=2)
        (got,) = _run_ort(path, a, b)
        np.testing.assert_allclose(got, _ours(({"w": w}, fn), a, b), rtol=1e-5, atol=1e-6)
        params, f = tonnx.load(path)
        np.testing.assert_allclose(f(params, a, b).numpy(), _ours(({"w": w}, fn), a, b), rtol=1e-6, atol=1e-7)


def test_import_softmax_of_an_old_opset_takes_the_input_as_2d(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])])
    path = tmp_path / "old.onnx"
    onnx.save(_model(graph, 11), str(path))
    x = _x((2, 3, 4))
    (ref,) = _run_ort(path, x)
    params, fn = tonnx.load(path)
    np.testing.assert_allclose(fn(params, x).numpy(), ref, rtol=1e-6)
    e = np.exp(x.reshape(2, 12) - x.reshape(2, 12).max(1, keepdims=True))
    np.testing.assert_allclose(ref, (e / e.sum(1, keepdims=True)).reshape(2, 3, 4), rtol=1e-5)


def test_export_refuses_values_frozen_from_the_example(tmp_path):
    w = tg.tensor(_x((4, 4)), requires_grad=True)

    def masked(p, x):  # the mask is numpy on the example's data: a constant in any graph
        return (x @ p["w"]) * tg.tensor((x.data > 0).astype(np.float32))

    path = tmp_path / "m.onnx"
    for batch in (1, 3):
        with pytest.raises(ValueError, match="does not reproduce the model on an input other than the example"):
            tonnx.export(({"w": w}, masked), _x((batch, 4)), path)
        assert not path.exists()
    tonnx.export(({"w": w}, masked), _x((3, 4)), path, dynamic_batch=False, check=False)
    assert path.exists()


@settings(max_examples=15)
@given(stride=st.integers(1, 2), padding=st.integers(0, 2), dilation=st.integers(1, 2), groups=st.sampled_from([1, 2]),
       bias=st.booleans(), size=st.integers(5, 8), start=st.integers(0, 2), step=st.sampled_from([1, 2, -1]))
def test_export_conv_and_slices_match_onnxruntime(tmp_path_factory, stride, padding, dilation, groups, bias, size, start, step):
    rng = np.random.default_rng(size)
    params = {"w": tg.tensor(rng.standard_normal((4, 4 // groups, 3, 3)).astype(np.float32), requires_grad=True)}
    if bias:
        params["b"] = tg.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)

    def fn(p, x):
        y = F.conv2d(x, p["w"], p.get("b"), stride=stride, padding=padding, dilation=dilation, groups=groups)
        return y[:, start:, ::step, None, -1] * 2.0

    path = tmp_path_factory.mktemp("conv") / "c.onnx"
    _check_export((params, fn), (1, 4, size, size), path.parent, batches=(2, 3), name=path.name)


@settings(max_examples=20)
@given(kind=st.sampled_from(["max", "avg"]), k=st.integers(2, 3), s=st.integers(1, 3), p=st.integers(0, 1), d=st.integers(1, 2),
       ceil=st.booleans(), include=st.booleans(), size=st.integers(6, 7))
def test_export_pooling_matches_onnxruntime(tmp_path_factory, kind, k, s, p, d, ceil, include, size):
    d = d if kind == "max" else 1
    a = {"a": tg.tensor(np.float32(1.5), requires_grad=True)}

    def fn(q, x):
        if kind == "max":
            return F.max_pool2d(x * q["a"], k, s, p, d, ceil_mode=ceil)
        return F.avg_pool2d(x * q["a"], k, s, p, ceil_mode=ceil, count_include_pad=include)

    folder = tmp_path_factory.mktemp("pool")
    proto = _check_export((a, fn), (1, 2, size, size), folder, batches=(2, 3))
    assert _ops(proto)[-1] in ("MaxPool", "AveragePool", "GlobalAveragePool")


def _helper_graph(dtype):
    """A CNN written with onnx.helper the way other exporters write it: auto_pad, asymmetric pads,
    ONNX's defaults (stride 1, count_include_pad 0), a Shape/Gather/Concat/Reshape flatten,
    Constant nodes, Gemm with alpha/beta, and assorted shape ops."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE

    def init(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.4).astype(dtype), name)

    ints = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("zero", [0]), ("minus1", [-1]), ("ax1", [1]),
                                                                             ("starts", [1]), ("ends", [100]), ("axes3", [3]))]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], auto_pad="SAME_UPPER", kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], pads=[0, 0, 1, 1]),        # stride 1, asymmetric pads
        helper.make_node("Conv", ["p1", "w2"], ["c2"], pads=[1, 0, 0, 1], group=2),
        helper.make_node("AveragePool", ["c2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Slice", ["p2", "starts", "ends", "axes3"], ["s2"]),
        helper.make_node("Shape", ["s2"], ["shp"]),
        helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "minus1"], ["flat_shape"], axis=0),
        helper.make_node("Reshape", ["s2", "flat_shape"], ["flat"]),
        helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.array(2.0, dtype))),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["g"], alpha=0.5, beta=2.0, transB=1),
        helper.make_node("Mul", ["g", "two"], ["g2"]),
        helper.make_node("Clip", ["g2", "lo", "hi"], ["cl"]),
        helper.make_node("Unsqueeze", ["cl", "ax1"], ["u"]),
        helper.make_node("Transpose", ["u"], ["t"]),
        helper.make_node("ReduceMean", ["t"], ["m"], keepdims=1),
        helper.make_node("Sub", ["u", "m"], ["d"]),
        helper.make_node("Squeeze", ["d", "ax1"], ["sq"]),
        helper.make_node("Dropout", ["sq"], ["dr"]),
        helper.make_node("Softmax", ["dr"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "helper_cnn",
        [helper.make_tensor_value_info("x", elem, ["N", 2, 9, 9])], [helper.make_tensor_value_info("y", elem, ["N", 5])],
        initializer=[init("w1", 4, 2, 3, 3), init("b1", 4), init("w2", 4, 2, 2, 2), init("wf", 5, 4 * 3 * 2), init("bf", 5),
                     numpy_helper.from_array(np.array(-3.0, dtype), "lo"), numpy_helper.from_array(np.array(3.0, dtype), "hi"), *ints],
    )
    return _model(graph, 17)


def test_import_helper_built_cnn_matches_onnxruntime_and_gradcheck(tmp_path):
    path = tmp_path / "helper.onnx"
    onnx.save(_helper_graph(np.float32), str(path))
    params, fn = tonnx.load(path)
    for n in (1, 3):
        x = _x((n, 2, 9, 9), seed=n)
        (ref,) = _run_ort(path, x)
        np.testing.assert_allclose(fn(params, x).numpy(), ref, rtol=1e-5, atol=1e-6)
    path64 = tmp_path / "helper64.onnx"
    onnx.save(_helper_graph(np.float64), str(path64))
    p, f = tonnx.load(path64)
    x = tg.tensor(_x((2, 2, 9, 9), seed=4, dtype=np.float64), requires_grad=True)
    assert gradcheck(lambda xx, w1, wf: f({**p, "w1": w1, "wf": wf}, xx)[:, :3], (x, p["w1"], p["wf"]))


def test_clear_error_when_onnx_is_missing(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the package were not installed
    with pytest.raises(ImportError, match=r"pip install 'tinygrad_cnn\[onnx\]'"):
        tonnx.export  # noqa: B018
    with pytest.raises(ImportError, match=r"pip install 'tinygrad_cnn\[onnx\]'"):
        tonnx.load  # noqa: B018


def test_export_module_with_backward_hooks_writes_identities(tmp_path):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, a, b):
            return self.lin(a) * b, b.exp()

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.two = Two()

        def forward(self, a, b):
            p, q = self.two(a.tanh(), b.sigmoid())  # inputs that are graph nodes, so both hook ops are recorded
            return p.sum(1) + q.sum(1)

    model = Outer()
    model.two.register_full_backward_hook(lambda m, gin, gout: None)
    model.two.register_full_backward_pre_hook(lambda m, gout: None)
    path = tmp_path / "hooked.onnx"
    proto = tonnx.export(model, (_x((1, 3)), _x((1, 2))), path)
    assert sum(n.op_type == "Identity" and not n.name.startswith("output_") for n in proto.graph.node) == 4
    a, b = _x((4, 3), seed=1), _x((4, 2), seed=2)
    (got,) = _run_ort(path, a, b)
    np.testing.assert_allclose(got, model(tg.tensor(a), tg.tensor(b)).numpy(), rtol=1e-5, atol=1e-6)
