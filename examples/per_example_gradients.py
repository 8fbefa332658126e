"""Per-example gradients of SimpleConvNet and LeNet for 100 Fashion-MNIST images with ``vmap(grad)``.

Each model's loss on one image is differentiated with respect to its parameters, and ``vmap``
maps that over the batch in one pass::

    grads = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)   # {name: (100, *shape)}

The result is checked against a Python loop of single-image gradients (float64, to 1e-10) and,
where PyTorch is installed, against ``torch.func.vmap(torch.func.grad(...))`` of the same network
with the same weights (float32, to 1e-5 relative to the largest entry). Then the per-layer
distribution of the per-example gradient norms is drawn with the images pulling hardest on the
weights::

    python examples/per_example_gradients.py [--root DIR] [--out docs/images/per_sample_grad_norms.png]

Fashion-MNIST is found as ``tinygrad-cnn`` finds it (``--root``, $TINYGRAD_CNN_DATA, the user
cache, the system's dataset package) or downloaded.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from tinygrad_cnn import Tensor
from tinygrad_cnn.data import FashionMNIST
from tinygrad_cnn.func import functional_call, get_params, grad, vmap
from tinygrad_cnn.models import LeNet, SimpleConvNet
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.per_sample import per_sample_grad_norms
from tinygrad_cnn.train.registry import load_data

N = 100


def loss_one(model):
    def loss(params, xi, yi):
        return F.cross_entropy(functional_call(model, params, xi.unsqueeze(0)), yi.unsqueeze(0))

    return loss


def torch_net(name: str):
    import torch

    if name == "SimpleConvNet":
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 30, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
            torch.nn.Linear(4320, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10),
        )
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.Sigmoid(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.Sigmoid(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(16, 120, 5), torch.nn.Sigmoid(), torch.nn.Flatten(),
        torch.nn.Linear(120, 84), torch.nn.Sigmoid(), torch.nn.Linear(84, 10),
    )


def against_torch(name: str, model, x: np.ndarray, y: np.ndarray) -> float | None:
    """The largest difference between our float32 per-example gradients and torch.func's,
    relative to the largest entry of each parameter's gradients; None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    params = get_params(model)
    ours = vmap(grad(loss_one(model)), in_dims=(None, 0, 0))(params, Tensor(x), Tensor(y))
    net = torch_net(name)
    tparams = {k: torch.tensor(v.numpy().copy()) for (k, _), v in zip(net.named_parameters(), params.values())}

    def tloss(p, xi, yi):
        return torch.nn.functional.cross_entropy(torch.func.functional_call(net, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    theirs = torch.func.vmap(torch.func.grad(tloss), in_dims=(None, 0, 0))(tparams, torch.tensor(x), torch.tensor(y))
    worst = 0.0
    for g, t in zip(ours.values(), theirs.values()):
        a, b = g.numpy(), t.numpy()
        worst = max(worst, float(np.abs(a - b).max() / np.abs(b).max()))
    return worst


def check(name: str, model, x: np.ndarray, y: np.ndarray) -> dict:
    params = {k: v.double() for k, v in get_params(model).items()}
    loss = loss_one(model)
    xd, yt = Tensor(x.astype(np.float64)), Tensor(y)
    t0 = time.perf_counter()
    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, xd, yt)
    t1 = time.perf_counter()
    worst = 0.0
    for i in range(len(x)):
        gi = grad(loss)(params, xd[i], yt[i])
        worst = max(worst, max(float(np.abs(grads[k].numpy()[i] - gi[k].numpy()).max()) for k in params))
    t2 = time.perf_counter()
    print(f"{name}: {sum(p.numel() for p in params.values()):,} parameters; per-example gradients of {len(x)} images "
          f"(float64) in {t1 - t0:.3f} s with vmap, {t2 - t1:.3f} s as a loop; largest difference {worst:.2e}")
    assert worst <= 1e-10, f"{name}: vmap and the loop differ by {worst}"
    rel = against_torch(name, model, x, y)
    if rel is None:
        print("  PyTorch not installed: no torch.func comparison")
    else:
        print(f"  against torch.func.vmap(grad) in float32: largest relative difference {rel:.2e}")
        assert rel <= 1e-5, f"{name}: torch.func differs by {rel}"
    return grads


def train(model, root, steps: int) -> None:
    """A few Adam steps (lr 1e-3, batch 100) on the training set, so the norms are those of a
    model that has started to learn (an untrained one gives every example nearly the same)."""
    from tinygrad_cnn.data import DataLoader
    from tinygrad_cnn.optim import Adam

    opt = Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(load_data("fashion-mnist", "simpleconvnet", root, train=True), 100, shuffle=True, seed=0)
    done = 0
    while done < steps:
        for xb, yb in loader:
            loss = F.cross_entropy(model(Tensor(np.asarray(xb, dtype=np.float32))), np.asarray(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    print(f"SimpleConvNet trained for {steps} Adam steps (last batch loss {loss.item():.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=None, help="folder holding Fashion-MNIST (default: the usual places)")
    ap.add_argument("--out", default=None, help="write the picture of the per-layer norms here (png)")
    ap.add_argument("--train-steps", type=int, default=300, help="Adam steps on SimpleConvNet before drawing the norms")
    args = ap.parse_args()
    data = load_data("fashion-mnist", "simpleconvnet", args.root, train=True, limit=N)
    x, y = data.get_batch(np.arange(N))
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    simple = SimpleConvNet(seed=0)
    check("SimpleConvNet", simple, x, y)
    check("LeNet", LeNet(seed=0), x, y)
    if args.train_steps:
        train(simple, args.root, args.train_steps)
    norms = per_sample_grad_norms(simple, x, y)
    big = np.argsort(norms["total"])[::-1][:5]
    print("SimpleConvNet per-example gradient norms: median " + ", ".join(f"{k} {np.median(v):.3g}" for k, v in norms.items()))
    print("largest:", ", ".join(f"#{i} ({FashionMNIST.classes[int(y[i])]}) {norms['total'][i]:.3g}" for i in big))
    if args.out:
        from tinygrad_cnn.viz.per_sample import plot_per_sample_grad_norms

        plot_per_sample_grad_norms(norms, args.out, images=x, labels=[FashionMNIST.classes[int(t)] for t in y])
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
