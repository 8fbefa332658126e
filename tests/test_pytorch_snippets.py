"""Typical PyTorch snippets, each written once as ``snippet(torch)``: the same source runs with
``torch`` being PyTorch and with it being ``tinygrad_cnn`` (``nn``, ``F`` and ``optim`` are looked
up from it). On tinygrad_cnn every snippet must run; where PyTorch is installed its results
(values, gradients, dtypes, shapes, learning rates) must match PyTorch's in float64 (rtol 1e-6).

What cannot run unchanged on purpose is listed in docs/pytorch.md, not here."""

import math

import numpy as np
import pytest

import tinygrad_cnn

try:
    import torch as _torch
except ImportError:  # the comparison is optional; the snippets still run on tinygrad_cnn
    _torch = None

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 4))
Y = RNG.standard_normal((3, 4))
IMG = RNG.standard_normal((2, 3, 6, 6))
LOGITS = RNG.standard_normal((5, 4))
LABELS = np.array([0, 3, 1, 1, 2])
DATA_X = RNG.standard_normal((16, 1, 8, 8))
DATA_Y = RNG.integers(0, 3, 16)
CONV_W = RNG.standard_normal((4, 3, 3, 3)) * 0.3


def libs(torch):
    """``nn``, ``F`` and ``optim`` of the namespace, as a ported script imports them."""
    return torch.nn, torch.nn.functional, torch.optim


def fill_(torch, module, seed):
    """Deterministic float64 parameters (the two libraries draw different random numbers)."""
    rng = np.random.default_rng(seed)
    module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape)) * 0.4))
    return module


def grads(*tensors):
    return [t.grad for t in tensors]


# ---- creation and dtypes ----------------------------------------------------------------------
def creation_inference(torch):
    a, b, c, d = torch.tensor([0, 1]), torch.tensor([1.0, 2]), torch.tensor([True, False]), torch.tensor(3.5)
    e = torch.tensor(X)  # a float64 array keeps float64
    return [t.dtype for t in (a, b, c, d, e)], a, b, c, d, e


def creation_factories(torch):
    return (
        torch.zeros(2, 3), torch.zeros((2, 3)), torch.ones(2, dtype=torch.float64), torch.full((2, 2), 7.0),
        torch.full((2,), 3), torch.arange(5), torch.arange(0, 1, 0.25), torch.arange(1, 7, 2, dtype=torch.float64),
        torch.linspace(0, 1, 5), torch.eye(3), torch.eye(2, 3), torch.empty(2, 2).shape,
        torch.zeros_like(torch.tensor(X)), torch.ones_like(torch.tensor([1, 2])), torch.full_like(torch.tensor(X), 0.5),
    )


def creation_dtype_casts(torch):
    x = torch.tensor([[1.7, -2.2], [0.0, 3.9]])
    return (
        x.float(), x.double(), x.long(), x.int(), x.bool(), x.to(torch.float64), x.to("cpu").dtype,
        x.to("cpu", torch.float64).dtype, x.type(torch.int64), x.to(torch.zeros(1, dtype=torch.int32)).dtype,
        x.half().dtype, x.is_floating_point(), x.long().is_floating_point(),
        torch.float32, torch.float64, torch.int64, torch.int32, torch.bool, torch.float, torch.long, torch.double,
    )


def creation_from_numpy_and_copies(torch):
    a = np.arange(3.0)
    shared, copied = torch.from_numpy(a), torch.tensor(a)
    a[0] = 5.0
    return shared, copied, shared.dtype


def creation_random_shapes(torch):
    torch.manual_seed(0)
    r, n, i = torch.rand(2, 3), torch.randn(4), torch.randint(0, 10, (3, 2))
    g = torch.Generator().manual_seed(1)
    m = torch.randn(2, 2, generator=g)
    return (r.shape, r.dtype, bool(((r >= 0) & (r < 1)).all()), n.shape, i.dtype, i.shape,
            bool(((i >= 0) & (i < 10)).all()), m.shape, torch.rand_like(torch.tensor(X)).dtype)


# ---- Tensor methods ---------------------------------------------------------------------------
def tensor_size_and_shape(torch):
    x = torch.zeros(2, 3, 4)
    return x.size(), x.size(1), x.size(-1), x.shape, x.dim(), x.ndim, x.numel(), len(x), list(x.shape), x.shape[-2:]


def tensor_reductions(torch):
    x = torch.tensor(X, requires_grad=True)
    outs = (x.sum(1, keepdim=True), x.mean(dim=1), x.mean(), x.sum(dim=(0, 1)), x.prod(0), x.var(1), x.std(),
            x.var(1, unbiased=False), x.std(0, keepdim=True), x.var(dim=0, correction=0), x.norm(), x.norm(p=1, dim=1),
            x.logsumexp(1), x.cumsum(1), x.amax(1), x.amin(dim=0, keepdim=True))
    sum(o.sum() * (k + 1) for k, o in enumerate(outs)).backward()
    return outs, x.grad


def tensor_max_min(torch):
    x = torch.tensor(X, requires_grad=True)
    v, i = x.max(dim=1)
    mn = x.min(0, keepdim=True)
    (v.sum() + mn.values.sum() * 2 + x.max() * 3).backward()
    return v, i, mn.values, mn.indices, x.argmax(), x.argmax(1), x.argmin(dim=0), x.grad


def tensor_shapes(torch):
    x = torch.tensor(X, requires_grad=True)
    outs = (x.view(4, 3), x.view(-1), x.reshape(2, 6), x.t(), x.T, x.mT, x.permute(1, 0), x.transpose(0, 1),
            x.unsqueeze(0).shape, x.unsqueeze(-1).squeeze(-1), x.flatten(), x.reshape(3, 2, 2).flatten(1),
            x.unflatten(1, (2, 2)), x[:1].expand(4, 4), x.repeat(2, 1), x.view_as(torch.zeros(4, 3)), x.contiguous())
    sum((o * k).sum() for k, o in enumerate(outs) if not isinstance(o, tuple)).backward()
    return outs, x.grad


def tensor_index_ops(torch):
    x = torch.tensor(X, requires_grad=True)
    idx = torch.tensor([[0, 2], [1, 1], [3, 0]])
    a, b = x.chunk(2, dim=1)
    parts = x.split([1, 3], dim=1)
    outs = (a, b, parts[0], parts[1], x.gather(1, idx), x.index_select(0, torch.tensor([2, 0])),
            x.masked_fill(x > 0, 0.0), torch.zeros(3, 4, dtype=torch.float64).scatter_add(1, idx, x[:, :2]),
            x[1], x[:, 1:3], x[x > 0], x[torch.tensor([0, 2])], x[..., -1], x[None].shape)
    sum((o * (k + 1)).sum() for k, o in enumerate(outs) if not isinstance(o, tuple)).backward()
    return outs, x.grad


def tensor_elementwise(torch):
    x = torch.tensor(np.abs(X) + 0.1, requires_grad=True)
    y = torch.tensor(Y, requires_grad=True)
    outs = (x.pow(2), x ** 0.5, 2 ** y, x.pow(y), x.exp(), x.log(), x.log1p(), y.expm1(), x.sqrt(), x.rsqrt(), y.abs(),
            y.sign(), y.clamp(-0.5, 0.5), y.clamp(min=0), y.clip(max=0.2), y.sin(), y.cos(), y.tanh(), y.sigmoid(),
            y.relu(), -y, y / x, 1 - y, y * 3, x @ y.t(), abs(y), y.softmax(1), y.log_softmax(dim=0))
    sum((o * (k + 1)).sum() for k, o in enumerate(outs)).backward()
    return outs, x.grad, y.grad


def tensor_compare_sort(torch):
    x, y = torch.tensor(X), torch.tensor(Y)
    v, i = x.topk(2, dim=1)
    s = x.sort(dim=0, descending=True)
    return (v, i, s.values, s.indices, x.sort().values, (x > 0).any(), (x > 0).all(dim=1), x.eq(y), x.ne(x), x.lt(y),
            x.le(0), x.gt(y), x.ge(0), x == x, x != y, torch.tensor([1.0, float("nan")]).isnan(),
            torch.tensor([1.0, float("inf")]).isfinite())


def tensor_python_conversions(torch):
    x = torch.tensor([[1.5, -2.0], [3.0, 4.0]])
    s = x.sum()
    rows = [r for r in x]
    return (s.item(), float(s), int(s), bool(s > 0), abs(x), x.tolist(), x.numpy().dtype.name, len(x), rows,
            x[0, 1].item(), x.argmax().item())


def tensor_inplace_under_no_grad(torch):
    w = torch.tensor(X, requires_grad=True)
    (w * w).sum().backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        w[w > 0.5] = 0.5
        w *= 2
        w += 1
        w /= 4
    w.grad.zero_()
    (w ** 3).sum().backward()
    t = torch.zeros(3)
    t[torch.tensor([True, False, True])] = 1.0
    t.add_(1.0, alpha=2.0).mul_(3)
    return w, w.grad, w.requires_grad, w.is_leaf, t


def tensor_clone_detach(torch):
    x = torch.tensor(X, requires_grad=True)
    c, d = x.clone(), x.detach()
    (c * 2).sum().backward()
    return c, c.requires_grad, d.requires_grad, d.is_leaf, x.grad, c.grad_fn is not None


def tensor_manual_sgd_steps(torch):
    w = torch.tensor(X, requires_grad=True)
    b = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    inp, tgt = torch.tensor(Y), torch.tensor(LABELS[:3])
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(inp @ w.t() @ w + b, tgt)
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
            w.grad = None
            b.grad.zero_()
        losses.append(loss.item())
    return losses, w, b


def tensor_arithmetic_extras(torch):
    nn, F, optim = libs(torch)
    x = torch.tensor(X * 3, requires_grad=True)
    y = (x % torch.tensor(np.array([1.5, -2.0, 0.7, 2.0]))) * torch.tensor(Y) + (x % 2) * 3
    y.sum().backward()
    z = x * 2
    z.detach_()
    i = torch.tensor([7, -7, 5])
    acts = nn.Sequential(nn.ReLU(inplace=False), nn.Dropout(0.5, inplace=False)).eval()
    return (y, x.grad, i % 3, i // 3, (x // 2), 5.0 % x.detach(), z.requires_grad, z.is_leaf, x.new_zeros(2, 3),
            x.new_ones(2), x.new_tensor([1, 2]), x.new_full((2,), 7), x.new_empty(2).shape, torch.is_tensor(x),
            torch.is_tensor(X), torch.numel(x), torch.randperm(6).sort().values, acts(x))


def tensor_more_methods(torch):
    x, y = torch.tensor(X * 2, requires_grad=True), torch.tensor(Y, requires_grad=True)
    a, b = x.unbind(0)[:2]
    v, m = torch.var_mean(x, 0)
    s, m2 = torch.std_mean(x, dim=1, keepdim=True)
    outs = (x.add(y, alpha=2), x.sub(y, alpha=0.5), x.mul(y), x.div(y.abs() + 1), x.neg(), x.square(), (x.abs() + 1).log2(),
            (x.abs() + 1).log10(), x.floor() + x, x.ceil() * x, x.round() + x.trunc() + x, x.matmul(y.t()), x.mm(y.t()),
            torch.mm(x, y.t()), torch.bmm(x[None], y.t()[None]), a.dot(b), x.flip(0), x.flip((0, 1)), x.tril(), x.triu(1),
            x.tril(-1), x.narrow(1, 1, 2), x.narrow(0, -2, 2), v, m, s, m2, x.type_as(torch.zeros(1, dtype=torch.float32)))
    sum((o * (k + 1)).sum() for k, o in enumerate(outs)).backward()
    t = torch.tensor(X)
    inplace = (t.clone().relu_(), t.clone().sigmoid_(), t.clone().exp_())
    u = torch.zeros(100, dtype=torch.float64).uniform_(-1, 2)
    n = torch.zeros(3, 4).normal_()
    return (outs, x.grad, y.grad, f"{x.sum():.4f}", f"{torch.tensor(3):d}", x.argsort(), x.argsort(dim=0, descending=True),
            (x > 0).nonzero(), torch.tensor([0, 1, 1]).nonzero(), x.stride(), x.t().stride(), x.t().is_contiguous(),
            x.is_contiguous(), x.element_size(), x.float().element_size(), inplace, bool(((u >= -1) & (u < 2)).all()),
            n.shape, n.dtype)


def grad_mode_bare_decorators(torch):
    @torch.no_grad
    def frozen(t):
        return t * 2

    x = torch.tensor(X, requires_grad=True)
    with torch.no_grad():

        @torch.enable_grad
        def live(t):
            return t * 2

        z = live(x)
    return frozen(x).requires_grad, frozen.__name__, z.requires_grad


# ---- top-level functions ----------------------------------------------------------------------
def toplevel_functions(torch):
    x, y = torch.tensor(X, requires_grad=True), torch.tensor(Y, requires_grad=True)
    outs = (torch.cat([x, y]), torch.cat((x, y), dim=1), torch.concat([x, y], 0), torch.stack([x, y]),
            torch.stack([x, y], dim=-1), torch.where(x > 0, x, y), torch.flatten(torch.stack([x, y]), 1),
            torch.matmul(x, y.t()), torch.einsum("ij,kj->ik", x, y), torch.einsum("ij->j", x), torch.maximum(x, y),
            torch.minimum(x, y), torch.clamp(x, -0.3, 0.3), torch.sum(x, 1), torch.mean(x, dim=0), torch.exp(x),
            torch.softmax(x, 1), torch.log_softmax(x, dim=1), torch.logsumexp(x, 1), torch.sqrt(x * x + 1), torch.tanh(y),
            torch.sigmoid(y), torch.abs(y), torch.max(x), torch.amax(x, dim=1), torch.relu(y), torch.pow(x, 2),
            torch.transpose(x, 0, 1), torch.reshape(x, (4, 3)), torch.squeeze(x[None]), torch.unsqueeze(x, 1),
            torch.permute(x, (1, 0)), torch.norm(x), torch.var(x, 0), torch.std(x, dim=1), torch.prod(x, 1))
    sum((o * (k + 1)).sum() for k, o in enumerate(outs)).backward()
    return (outs, x.grad, y.grad, torch.argmax(x), torch.argmax(x, dim=1), torch.allclose(x, x + 1e-9),
            torch.allclose(x, y), torch.max(x, 1).indices, torch.min(x, dim=0).values)


def toplevel_save_load(torch, tmp_path):
    state = {"w": torch.tensor(X), "labels": torch.tensor(LABELS)}
    torch.save(state, tmp_path / "state.pt")
    back = torch.load(tmp_path / "state.pt")
    return sorted(back), back["w"], back["labels"]


# ---- nn.functional ----------------------------------------------------------------------------
def functional_pad(torch):
    nn, F, optim = libs(torch)
    x = torch.tensor(IMG[:1, :1, :4, :4], requires_grad=True)
    outs = (F.pad(x, (1, 1)), F.pad(x, (1, 2, 0, 1)), F.pad(x, (1, 1, 1, 1), value=2.0), F.pad(x, (2, 1, 1, 2), mode="reflect"),
            F.pad(x, (1, 1, 2, 0), mode="replicate"), F.pad(x, (1, 2, 1, 1), mode="circular"), F.pad(x, (0, 0, 0, 0, 1, 1)))
    sum((o * (k + 1)).sum() for k, o in enumerate(outs)).backward()
    return outs, x.grad


def functional_classification_losses(torch):
    nn, F, optim = libs(torch)
    z = torch.tensor(LOGITS, requires_grad=True)
    t = torch.tensor(LABELS)
    w = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    probs = torch.tensor(np.full((5, 4), 0.25))
    outs = (F.cross_entropy(z, t), F.cross_entropy(z, t, reduction="sum"), F.cross_entropy(z, t, reduction="none"),
            F.cross_entropy(z, t, weight=w), F.cross_entropy(z, torch.tensor([0, -100, 1, 1, 2]), ignore_index=-100),
            F.cross_entropy(z, t, label_smoothing=0.1), F.cross_entropy(z, probs), F.nll_loss(F.log_softmax(z, dim=1), t),
            F.nll_loss(F.log_softmax(z, 1), t, weight=w, reduction="sum"),
            F.cross_entropy(z.reshape(5, 4, 1, 1), t.reshape(5, 1, 1)), nn.CrossEntropyLoss()(z, t), nn.NLLLoss()(z.log_softmax(1), t))
    sum(o.sum() * (k + 1) for k, o in enumerate(outs)).backward()
    return outs, z.grad


def functional_binary_and_regression_losses(torch):
    nn, F, optim = libs(torch)
    z = torch.tensor(X, requires_grad=True)
    y = torch.tensor(Y, requires_grad=True)
    t = torch.tensor((Y > 0).astype(np.float64))
    p = torch.sigmoid(z)
    outs = (F.binary_cross_entropy(p, t), F.binary_cross_entropy_with_logits(z, t),
            F.binary_cross_entropy_with_logits(z, t, pos_weight=torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)),
            F.binary_cross_entropy(p, t, weight=t + 1, reduction="sum"), F.mse_loss(z, y), F.mse_loss(z, y, reduction="none"),
            F.l1_loss(z, y), F.smooth_l1_loss(z, y), F.smooth_l1_loss(z, y, beta=0.5), nn.MSELoss(reduction="sum")(z, y),
            nn.BCEWithLogitsLoss()(z, t), nn.L1Loss()(z, y))
    sum(o.sum() * (k + 1) for k, o in enumerate(outs)).backward()
    return outs, z.grad, y.grad


def functional_one_hot(torch):
    nn, F, optim = libs(torch)
    return F.one_hot(torch.tensor(LABELS)), F.one_hot(torch.tensor([0, 2]), num_classes=4), F.one_hot(torch.tensor(LABELS)).dtype


def functional_activations(torch):
    nn, F, optim = libs(torch)
    x = torch.tensor(X * 2, requires_grad=True)
    outs = (F.relu(x), F.gelu(x), F.gelu(x, approximate="tanh"), F.silu(x), F.leaky_relu(x), F.leaky_relu(x, 0.2),
            F.elu(x), F.elu(x, alpha=0.5), F.hardtanh(x), F.hardtanh(x, -0.5, 0.5), F.softmax(x, dim=-1),
            F.log_softmax(x, dim=0), torch.sigmoid(x), torch.tanh(x), F.dropout(x, 0.5, training=False), F.dropout(x, p=0.0))
    sum(o.sum() * (k + 1) for k, o in enumerate(outs)).backward()
    return outs, x.grad


def functional_conv_pool(torch):
    nn, F, optim = libs(torch)
    x = torch.tensor(IMG, requires_grad=True)
    w = torch.tensor(CONV_W, requires_grad=True)
    b = torch.tensor(np.arange(4.0), requires_grad=True)
    wt = torch.tensor(np.linspace(-1, 1, 3 * 2 * 2 * 2).reshape(3, 2, 2, 2), requires_grad=True)
    outs = (F.conv2d(x, w, b), F.conv2d(x, w, stride=2, padding=1), F.conv2d(x, w, padding=2, dilation=2),
            F.conv_transpose2d(x, wt, stride=2), F.max_pool2d(x, 2), F.max_pool2d(x, 3, stride=2, padding=1),
            F.avg_pool2d(x, 2), F.avg_pool2d(x, 3, stride=1, padding=1), F.adaptive_avg_pool2d(x, 1),
            F.adaptive_avg_pool2d(x, (3, 2)), F.linear(x.flatten(1)[:, :4], w.flatten(1)[:, :4], b))
    sum(o.sum() * (k + 1) for k, o in enumerate(outs)).backward()
    return outs, x.grad, w.grad, b.grad, wt.grad


def functional_interpolate(torch):
    nn, F, optim = libs(torch)
    x = torch.tensor(IMG[:, :, :4, :5], requires_grad=True)
    outs = (F.interpolate(x, scale_factor=2), F.interpolate(x, size=(7, 3)), F.interpolate(x, scale_factor=2, mode="nearest"),
            F.interpolate(x, size=(6, 8), mode="bilinear"), F.interpolate(x, size=(6, 8), mode="bilinear", align_corners=True),
            F.interpolate(x, scale_factor=0.5, mode="bilinear"))
    sum(o.sum() * (k + 1) for k, o in enumerate(outs)).backward()
    return outs, x.grad


def functional_normalization(torch):
    nn, F, optim = libs(torch)
    x = torch.tensor(IMG, requires_grad=True)
    g = torch.tensor(np.array([1.0, 2.0, 0.5]), requires_grad=True)
    b = torch.tensor(np.array([0.1, -0.2, 0.3]), requires_grad=True)
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    outs = (F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.2), F.batch_norm(x, rm, rv, g, b, training=False),
            F.batch_norm(x, None, None, training=True), F.layer_norm(x, (6, 6)), F.layer_norm(x, (6,), eps=1e-3))
    sum(o.sum() * (k + 1) + (o * o).sum() for k, o in enumerate(outs)).backward()
    return outs, rm, rv, x.grad, g.grad, b.grad


# ---- nn ---------------------------------------------------------------------------------------
class _Net:
    """The tutorial CNN, built from either library's ``nn``."""

    @staticmethod
    def build(torch):
        nn, F, optim = libs(torch)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
                self.pool = nn.MaxPool2d(2, 2)
                self.conv2 = nn.Conv2d(4, 6, 3)
                self.fc1 = nn.Linear(6 * 2 * 2, 10)
                self.fc2 = nn.Linear(10, 3)

            def forward(self, x):
                x = self.pool(F.relu(self.conv1(x)))
                x = F.relu(self.conv2(x))
                x = torch.flatten(x, 1)
                return self.fc2(F.relu(self.fc1(x)))

        return Net()


def nn_tutorial_training_loop(torch):
    nn, F, optim = libs(torch)
    net = fill_(torch, _Net.build(torch), 0)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    inputs_all, labels_all = torch.tensor(DATA_X), torch.tensor(DATA_Y)
    trainloader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs_all, labels_all), batch_size=4)
    history = []
    for _epoch in range(2):
        running_loss = 0.0
        for inputs, labels in trainloader:
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        history.append(running_loss)
    net.eval()
    correct = 0
    with torch.no_grad():
        outputs = net(inputs_all)
        _, predicted = torch.max(outputs, 1)
        correct += (predicted == labels_all).sum().item()
    return history, correct, [p for p in net.parameters()], outputs


def nn_custom_module_buffers_hooks(torch):
    nn, F, optim = libs(torch)

    class Scaler(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.lin = nn.Linear(n, n)
            self.register_buffer("scale", torch.ones(n, dtype=torch.float64) * 2)
            self.register_buffer("calls", torch.zeros(1, dtype=torch.float64))

        def forward(self, x):
            self.calls += 1
            return self.lin(x) * self.scale

    m = fill_(torch, Scaler(4), 1)
    seen, grads_seen = [], []

    def fwd_hook(module, inputs, output):
        seen.append(output.detach().clone())
        output.register_hook(lambda g: grads_seen.append(g.clone()))  # backward hook on the output
        return output * 0.5

    def pre_hook(module, inputs):
        return (inputs[0] + 1,)

    h1 = m.register_forward_hook(fwd_hook)
    h2 = m.register_forward_pre_hook(pre_hook)
    x = torch.tensor(X, requires_grad=True)
    y = m(x)
    y.pow(2).sum().backward()
    h1.remove()
    h2.remove()
    y2 = m(x)
    names = ([n for n, _ in m.named_parameters()], [n for n, _ in m.named_buffers()], [n for n, _ in m.named_modules()],
             sorted(m.state_dict()))
    m2 = Scaler(4).double()
    m2.load_state_dict(m.state_dict())
    return names, y, y2, seen, grads_seen, x.grad, m.lin.weight.grad, m.calls, m2(torch.tensor(Y)), m2.calls


def nn_containers(torch):
    nn, F, optim = libs(torch)
    seq = fill_(torch, nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2), nn.Identity()), 2)
    ml = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
    md = nn.ModuleDict({"a": nn.Linear(4, 3), "b": nn.Tanh()})
    fill_(torch, ml, 3)
    fill_(torch, md, 4)
    x = torch.tensor(X)
    h = x
    for layer in ml:
        h = layer(h)
    names = []
    seq.apply(lambda mod: names.append(type(mod).__name__))
    return (seq(x), seq[0](x), seq[:2](x), len(seq), h, md["b"](md["a"](x)), len(ml), sorted(md.keys()), sorted(names),
            nn.Flatten()(torch.tensor(IMG)).shape, nn.Flatten(0, 1)(torch.tensor(IMG)).shape)


def nn_layers(torch):
    nn, F, optim = libs(torch)
    x = torch.tensor(IMG, requires_grad=True)
    layers = [nn.LayerNorm(6), nn.LayerNorm([3, 6, 6]), nn.GELU(), nn.SiLU(), nn.LeakyReLU(0.1), nn.ELU(), nn.Hardtanh(),
              nn.Dropout2d(0.3), nn.Dropout(0.5), nn.AdaptiveAvgPool2d((2, 3)), nn.Upsample(scale_factor=2),
              nn.Upsample(size=(4, 4), mode="bilinear"), nn.BatchNorm2d(3), nn.Conv2d(3, 2, 3, stride=2, padding=1, bias=False),
              nn.MaxPool2d(2), nn.AvgPool2d(2), nn.Softmax(dim=1), nn.LogSoftmax(dim=1), nn.Sigmoid(), nn.Tanh(), nn.ReLU()]
    outs = []
    for k, layer in enumerate(layers):
        fill_(torch, layer, 10 + k)
        layer.eval()
        outs.append(layer(x))
    sum(o.sum() * (k + 1) for k, o in enumerate(outs)).backward()
    return outs, x.grad


def nn_train_eval_batchnorm(torch):
    nn, F, optim = libs(torch)
    bn = fill_(torch, nn.BatchNorm2d(3, momentum=0.3), 5)
    x = torch.tensor(IMG)
    y_train = bn(x)
    y_train2 = bn(x * 2)
    bn.eval()
    y_eval = bn(x)
    drop = nn.Dropout(0.5).eval()
    return y_train, y_train2, y_eval, bn.running_mean, bn.running_var, bn.num_batches_tracked, bn.training, drop(x)


def nn_init_and_freezing(torch):
    nn, F, optim = libs(torch)
    lin = nn.Linear(4, 3).double()
    nn.init.zeros_(lin.bias)
    nn.init.ones_(lin.weight)
    nn.init.constant_(lin.bias, 0.25)
    lin.weight.requires_grad_(False)
    out = lin(torch.tensor(X)).sum()
    out.backward()
    shapes = [tuple(p.shape) for p in lin.parameters()]
    trainable = [n for n, p in lin.named_parameters() if p.requires_grad]
    return lin.weight, lin.bias, lin.weight.grad, lin.bias.grad, shapes, trainable, sum(p.numel() for p in lin.parameters())


def nn_utils_clip(torch):
    nn, F, optim = libs(torch)
    model = fill_(torch, nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)), 6)
    (model(torch.tensor(X)) ** 2).sum().backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
    after_norm = [p.grad.clone() for p in model.parameters()]
    nn.utils.clip_grad_value_(model.parameters(), clip_value=0.05)
    vec = nn.utils.parameters_to_vector(model.parameters())
    return total, after_norm, [p.grad for p in model.parameters()], vec


def nn_zero_grad(torch):
    nn, F, optim = libs(torch)
    lin = fill_(torch, nn.Linear(4, 2), 7)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    lin(torch.tensor(X)).sum().backward()
    lin(torch.tensor(X)).sum().backward()  # gradients accumulate
    accumulated = lin.weight.grad.clone()
    opt.zero_grad()
    after_opt = lin.weight.grad is None
    lin(torch.tensor(X)).sum().backward()
    lin.zero_grad()
    return accumulated, after_opt, lin.weight.grad is None, lin.bias.grad is None


# ---- optim ------------------------------------------------------------------------------------
def _regression(torch, seed):
    nn, F, optim = libs(torch)
    model = fill_(torch, nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1)), seed)
    x, y = torch.tensor(X), torch.tensor(Y[:, :1])
    return model, (lambda: F.mse_loss(model(x), y))


def optim_per_group(torch):
    nn, F, optim = libs(torch)
    model, loss_fn = _regression(torch, 8)
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = optim.SGD([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "lr": 0.05}], lr=0.1, momentum=0.9, nesterov=True)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [g["lr"] for g in opt.param_groups], [g["weight_decay"] for g in opt.param_groups], list(model.parameters())


def optim_adam_family(torch):
    nn, F, optim = libs(torch)
    results = []
    makers = [lambda p: optim.Adam(p, lr=0.01), lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True),
              lambda p: optim.AdamW(p, lr=0.01), lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5),
              lambda p: optim.Adagrad(p, lr=0.1), lambda p: optim.SGD(p, lr=0.1, dampening=0.1, momentum=0.5)]
    for k, make in enumerate(makers):
        model, loss_fn = _regression(torch, 20 + k)
        opt = make(model.parameters())
        for _ in range(3):
            opt.zero_grad()
            loss_fn().backward()
            opt.step()
        results.append((loss_fn(), list(model.parameters())))
    return results


def optim_add_param_group_and_state(torch):
    nn, F, optim = libs(torch)
    model, loss_fn = _regression(torch, 9)
    first, second = list(model[0].parameters()), list(model[2].parameters())
    opt = optim.Adam(first, lr=0.01)
    opt.add_param_group({"params": second, "lr": 0.001})
    for _ in range(2):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    state = opt.state_dict()
    opt2 = optim.Adam(list(model[0].parameters()), lr=0.01)
    opt2.add_param_group({"params": list(model[2].parameters()), "lr": 0.001})
    opt2.load_state_dict(state)
    opt2.zero_grad()
    loss_fn().backward()
    opt2.step()
    return len(opt.param_groups), [g["lr"] for g in opt2.param_groups], sorted(state), list(model.parameters())


def optim_lr_schedulers(torch):
    nn, F, optim = libs(torch)
    S = optim.lr_scheduler

    def run(make, steps=8, metric=None):
        p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = optim.SGD([p], lr=0.1, momentum=0.9)
        sched = make(opt)
        lrs = []
        for k in range(steps):
            opt.step()
            if metric is None:
                sched.step()
            else:
                sched.step(metric[k])
            lrs.append(opt.param_groups[0]["lr"])
        return lrs

    return [
        run(lambda o: S.StepLR(o, step_size=3, gamma=0.5)),
        run(lambda o: S.MultiStepLR(o, milestones=[2, 5], gamma=0.1)),
        run(lambda o: S.ExponentialLR(o, gamma=0.9)),
        run(lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.01), steps=12),
        run(lambda o: S.LambdaLR(o, lr_lambda=lambda e: 1 / (e + 1))),
        run(lambda o: S.LinearLR(o, start_factor=0.25, total_iters=4)),
        run(lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=8)),
        run(lambda o: S.OneCycleLR(o, max_lr=0.5, epochs=2, steps_per_epoch=4, anneal_strategy="linear", three_phase=True)),
        run(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3), S.ExponentialLR(o, gamma=0.8)], milestones=[3])),
        run(lambda o: S.ReduceLROnPlateau(o, patience=1, factor=0.5), metric=[1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7]),
    ]


def optim_scheduler_state_dict(torch):
    nn, F, optim = libs(torch)
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        opt.step()
        sched.step()
    state = sched.state_dict()
    opt2 = optim.SGD([p], lr=0.1)
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = sched.get_last_lr()[0]
    lrs = []
    for _ in range(3):
        opt2.step()
        sched2.step()
        lrs.append(sched2.get_last_lr())
    return sched.get_last_lr(), sched.last_epoch, lrs, sched2.last_epoch


# ---- hooks and grad mode ----------------------------------------------------------------------
def hooks_tensor(torch):
    x = torch.tensor(X, requires_grad=True)
    h = x.register_hook(lambda g: g * 2)
    y = x * 3
    y.retain_grad()
    z = (y * y).sum()
    z.backward()
    h.remove()
    first = x.grad.clone()
    x.grad = None
    (x * 3).sum().backward()
    return first, y.grad, x.grad, y.retains_grad, z.is_leaf


def grad_mode(torch):
    x = torch.tensor(X, requires_grad=True)
    with torch.no_grad():
        a = x * 2
        with torch.enable_grad():
            b = x * 2
    torch.set_grad_enabled(False)
    c = x * 2
    off = torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    with torch.set_grad_enabled(False):
        d = x * 2

    @torch.no_grad()
    def f(t):
        return t * 2

    with torch.inference_mode():
        e = x * 2
    return (a.requires_grad, b.requires_grad, c.requires_grad, off, d.requires_grad, torch.is_grad_enabled(),
            f(x).requires_grad, e.requires_grad, (x * 2).requires_grad)


def grad_accumulate_and_higher_order(torch):
    x = torch.tensor(X, requires_grad=True)
    y = (x ** 3).sum()
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    z = (x * x).sum()
    z.backward(retain_graph=True)
    z.backward()
    u = x.sin()
    u.backward(torch.ones_like(u))
    return g, gg, x.grad


def custom_function(torch):
    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            ctx.save_for_backward(inp)
            return inp * inp * inp

        @staticmethod
        def backward(ctx, grad):
            (inp,) = ctx.saved_tensors
            return grad * 3 * inp * inp

    x = torch.tensor(X, requires_grad=True)
    y = Cube.apply(x)
    y.sum().backward()
    return y, x.grad


SNIPPETS = [
    creation_inference, creation_factories, creation_dtype_casts, creation_from_numpy_and_copies, creation_random_shapes,
    tensor_size_and_shape, tensor_reductions, tensor_max_min, tensor_shapes, tensor_index_ops, tensor_elementwise,
    tensor_compare_sort, tensor_python_conversions, tensor_arithmetic_extras, tensor_more_methods, grad_mode_bare_decorators,
    tensor_inplace_under_no_grad, tensor_clone_detach, tensor_manual_sgd_steps,
    toplevel_functions, toplevel_save_load,
    functional_pad, functional_classification_losses, functional_binary_and_regression_losses, functional_one_hot,
    functional_activations, functional_conv_pool, functional_interpolate, functional_normalization,
    nn_tutorial_training_loop, nn_custom_module_buffers_hooks, nn_containers, nn_layers, nn_train_eval_batchnorm,
    nn_init_and_freezing, nn_utils_clip, nn_zero_grad,
    optim_per_group, optim_adam_family, optim_add_param_group_and_state, optim_lr_schedulers, optim_scheduler_state_dict,
    hooks_tensor, grad_mode, grad_accumulate_and_higher_order, custom_function,
]
IDS = [s.__name__ for s in SNIPPETS]


# ---- the runner -------------------------------------------------------------------------------
def _call(snippet, lib, tmp_path):
    return snippet(lib, tmp_path) if snippet.__code__.co_argcount == 2 else snippet(lib)


def _plain(v):
    """Either library's result as plain Python/numpy: tensors -> (dtype name, array), dtypes ->
    their name, sizes and named tuples -> tuples, containers recursively."""
    if isinstance(v, tinygrad_cnn.Tensor) or (_torch is not None and isinstance(v, _torch.Tensor)):
        a = v.detach().numpy()
        return ["tensor", str(v.dtype).replace("torch.", ""), np.array(a, copy=True)]
    if isinstance(v, np.dtype) or (_torch is not None and isinstance(v, _torch.dtype)):
        return ["dtype", str(v).replace("torch.", "")]
    if isinstance(v, np.ndarray):
        return ["array", v.dtype.name, v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    assert v is None or isinstance(v, str), f"unexpected result type {type(v).__name__}"
    return v


def _assert_same(ours, theirs, where="result"):
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and sorted(ours) == sorted(theirs), where
        for k in theirs:
            _assert_same(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{where}: {ours!r} vs {theirs!r}"
        for k, (a, b) in enumerate(zip(ours, theirs)):
            _assert_same(a, b, f"{where}[{k}]")
    elif isinstance(theirs, np.ndarray):
        assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} vs torch's {theirs.shape}"
        if theirs.dtype.kind == "f":
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-12, err_msg=where)
        else:
            np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(theirs, (int, float)) and not isinstance(theirs, bool):
        assert isinstance(ours, (int, float)) and not isinstance(ours, bool), f"{where}: {ours!r} vs torch's {theirs!r}"
        assert math.isclose(ours, theirs, rel_tol=1e-6, abs_tol=1e-12), f"{where}: {ours} vs torch's {theirs}"
    else:
        assert type(ours) is type(theirs) and ours == theirs, f"{where}: {ours!r} vs torch's {theirs!r}"


_OURS: dict = {}


def _ours(snippet, tmp_path):
    if snippet.__name__ not in _OURS:
        _OURS[snippet.__name__] = _plain(_call(snippet, tinygrad_cnn, tmp_path))
    return _OURS[snippet.__name__]


@pytest.mark.parametrize("snippet", SNIPPETS, ids=IDS)
def test_snippet_runs_on_tinygrad_cnn(snippet, tmp_path):
    out = _ours(snippet, tmp_path)
    assert out is not None


@pytest.mark.parametrize("snippet", SNIPPETS, ids=IDS)
def test_snippet_matches_pytorch(snippet, tmp_path):
    if _torch is None:
        pytest.skip("PyTorch is not installed: the snippets ran on tinygrad_cnn only")
    ours = _ours(snippet, tmp_path)
    (tmp_path / "torch").mkdir()
    theirs = _plain(_call(snippet, _torch, tmp_path / "torch"))
    _assert_same(ours, theirs)
