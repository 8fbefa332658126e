"""Typical PyTorch module/optimizer snippets, written once against a library handle `lib` and run
with `lib = torch` and `lib = tinygrad_cnn` (the port is a rename): the tutorial CNN training
loop with per-group optimizer options and a scheduler, a custom Module with buffers and hooks,
weight initialisation by `apply`, and a checkpoint round trip. Values and gradients are compared
with PyTorch in float64 (rtol 1e-6); without PyTorch the snippets still run."""
import numpy as np
import pytest

import tinygrad_cnn

try:
    import torch
except ImportError:  # pragma: no cover - torch is only a reference
    torch = None

RTOL = 1e-6


def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 8, 8))
    y = rng.integers(0, 3, n)
    x[np.arange(n), 0, 2 * y + 1, :] += 2.0  # learnable: a bright row per class
    return x, y


class Box:
    """Holds what a snippet returns, keyed by name, as numpy arrays."""

    def __init__(self):
        self.values = {}

    def put(self, name, v):
        self.values[name] = np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, dtype=np.float64)


# ---- the snippets (only `lib.` differs between the two runs) ------------------------------------
def tutorial_cnn_loop(lib, out):
    nn, F = lib.nn, lib.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(4)
            self.pool = nn.MaxPool2d(2, 2)
            self.fc1 = nn.Linear(4 * 4 * 4, 16)
            self.drop = nn.Dropout(0.0)
            self.fc2 = nn.Linear(16, 3)

        def forward(self, x):
            x = self.pool(F.relu(self.bn1(self.conv1(x))))
            x = lib.flatten(x, 1)
            return self.fc2(self.drop(F.relu(self.fc1(x))))

    lib.manual_seed(0)
    model = Net().double()
    model.load_state_dict(out.init)  # both libraries start from the same weights
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and "bn" not in n]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "bn" in n]
    optimizer = lib.optim.SGD([{"params": decay, "weight_decay": 1e-3}, {"params": no_decay}], lr=0.05, momentum=0.9, nesterov=True)
    scheduler = lib.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    x_all, y_all = lib.tensor(out.x, dtype=lib.float64), lib.tensor(out.y)
    losses, lrs = [], []
    for _epoch in range(4):
        model.train()
        for i in range(0, len(x_all), 16):
            inputs, labels = x_all[i : i + 16], y_all[i : i + 16]
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    model.eval()
    with lib.no_grad():
        logits = model(x_all)
        correct = (logits.argmax(dim=1) == y_all).sum().item()
    out.put("losses", losses)
    out.put("lrs", lrs)
    out.put("logits", logits)
    out.put("correct", correct)
    for name, t in model.state_dict().items():
        out.put("final." + name, t)
    x = x_all[:4].clone().requires_grad_(True)
    F.cross_entropy(model(x), y_all[:4]).backward()
    out.put("input_grad", x.grad)


def custom_module_buffers_hooks(lib, out):
    nn = lib.nn

    class Scaler(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.weight = nn.Parameter(lib.ones(n, dtype=lib.float64))
            self.register_buffer("calls", lib.zeros(1, dtype=lib.float64))
            self.register_buffer("scratch", lib.zeros(n, dtype=lib.float64), persistent=False)

        def forward(self, x):
            with lib.no_grad():
                self.calls += 1
            return x * self.weight

    m = nn.Sequential(nn.Linear(3, 3).double(), Scaler(3), nn.Tanh())
    m.load_state_dict(out.init)
    seen = []
    handle = m[1].register_forward_hook(lambda mod, args, output: seen.append(output.sum().item()))
    pre = m[0].register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    x = lib.tensor(out.x[:2, 0, 0, :3], dtype=lib.float64, requires_grad=True)
    y = m(x)
    y.sum().backward()
    handle.remove()
    pre.remove()
    m(x)
    out.put("y", y)
    out.put("x_grad", x.grad)
    out.put("w_grad", m[1].weight.grad)
    out.put("seen", seen)
    out.put("calls", m[1].calls)
    out.put("keys", [len(k) for k in m.state_dict()])
    out.put("buffers", [len(n) for n, _ in m.named_buffers()])


def init_by_apply(lib, out):
    nn = lib.nn
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))

    def init_weights(m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.constant_(m.weight, 0.1)
            nn.init.zeros_(m.bias)

    model.apply(init_weights)
    model.double()
    x = lib.ones(1, 2, 4, 4, dtype=lib.float64)
    out.put("y", model(x))
    out.put("n_params", sum(p.numel() for p in model.parameters() if p.requires_grad))


SNIPPETS = {f.__name__: f for f in (tutorial_cnn_loop, custom_module_buffers_hooks, init_by_apply)}


def run(lib, name, init):
    out = Box()
    out.x, out.y = data()
    out.init = init(lib)
    SNIPPETS[name](lib, out)
    return out.values


def initial_state(name):
    """The same starting weights for both libraries, as numpy arrays keyed like state_dict()."""
    rng = np.random.default_rng(1)
    shapes = {
        "tutorial_cnn_loop": {"conv1.weight": (4, 1, 3, 3), "conv1.bias": (4,), "bn1.weight": (4,), "bn1.bias": (4,),
                              "bn1.running_mean": (4,), "bn1.running_var": (4,), "bn1.num_batches_tracked": (),
                              "fc1.weight": (16, 64), "fc1.bias": (16,), "fc2.weight": (3, 16), "fc2.bias": (3,)},
        "custom_module_buffers_hooks": {"0.weight": (3, 3), "0.bias": (3,), "1.weight": (3,), "1.calls": (1,)},
        "init_by_apply": {},
    }[name]
    arrays = {}
    for k, s in shapes.items():
        if k.endswith("num_batches_tracked"):
            arrays[k] = np.array(0, dtype=np.int64)
        elif k.endswith("running_var") or k == "1.weight":
            arrays[k] = np.ones(s)
        elif k.endswith("running_mean") or k == "1.calls":
            arrays[k] = np.zeros(s)
        else:
            arrays[k] = rng.standard_normal(s) * 0.3

    def for_lib(lib):
        return {k: lib.tensor(v) for k, v in arrays.items()}

    return for_lib


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippet_runs_ported_and_matches_torch(name):
    ours = run(tinygrad_cnn, name, initial_state(name))
    if torch is None:
        pytest.skip("PyTorch is not installed: the ported snippet ran, nothing to compare with")
    theirs = run(torch, name, initial_state(name))
    assert ours.keys() == theirs.keys()
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=RTOL, atol=1e-9, err_msg=f"{name}: {k}")
