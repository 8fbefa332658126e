"""DP-SGD (Abadi et al. 2016) training SimpleConvNet on Fashion-MNIST, per-example gradients by ``vmap(grad)``.

Each step draws a batch by Poisson sampling (every training image independently with
probability ``q = batch / N``), computes each example's gradient
(:func:`tinygrad_cnn.per_sample.per_sample_grads`), clips each to L2 norm ``C``, sums them, adds
Gaussian noise of standard deviation ``noise_multiplier * C`` and divides by the expected batch
size ``q N`` (:func:`~tinygrad_cnn.per_sample.clip_and_noise`); an optimizer then takes that as
the gradient (SGD with momentum by default; any optimizer keeps the privacy, being post-processing).

The privacy guarantee is (epsilon, delta)-DP with epsilon from the Renyi-DP accountant of the
sampled Gaussian mechanism (:func:`~tinygrad_cnn.per_sample.dp_epsilon`, integer orders 2..256,
``epsilon = min_a steps * rdp(a) + log(1/delta) / (a - 1)``), printed after every epoch with
the test accuracy::

    python examples/dp_sgd.py [--epochs 3] [--noise 1.1] [--clip 1.0] [--batch 256] [--delta 1e-5] [--root DIR]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from tinygrad_cnn import Tensor, no_grad
from tinygrad_cnn.models import SimpleConvNet
from tinygrad_cnn.optim import SGD, Adam
from tinygrad_cnn.per_sample import clip_and_noise, dp_epsilon, per_sample_grads
from tinygrad_cnn.train.registry import load_data


def accuracy(model, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    hits = 0
    with no_grad():
        for i in range(0, len(x), batch):
            hits += int((model(Tensor(x[i:i + batch])).numpy().argmax(1) == y[i:i + batch]).sum())
    return hits / len(x)


def arrays(ds) -> tuple[np.ndarray, np.ndarray]:
    x, y = ds.get_batch(np.arange(len(ds)))
    return np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256, help="expected batch size (q = batch / N)")
    ap.add_argument("--noise", type=float, default=1.1, help="noise multiplier sigma")
    ap.add_argument("--clip", type=float, default=1.0, help="per-example clipping norm C")
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    ap.add_argument("--lr", type=float, default=None, help="default: 1e-3 for Adam, 0.1 for SGD (momentum 0.9)")
    ap.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--root", default=None, help="folder holding Fashion-MNIST (default: the usual places)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    x, y = arrays(load_data("fashion-mnist", "simpleconvnet", args.root, train=True, limit=args.limit_train))
    xt, yt = arrays(load_data("fashion-mnist", "simpleconvnet", args.root, train=False))
    n = len(x)
    q = args.batch / n
    steps_per_epoch = int(round(1 / q))
    model = SimpleConvNet(seed=args.seed)
    params = dict(model.named_parameters())
    if args.optimizer == "adam":
        opt = Adam(model.parameters(), lr=args.lr or 1e-3)
    else:
        opt = SGD(model.parameters(), lr=args.lr or 0.1, momentum=0.9)
    rng = np.random.default_rng(args.seed)
    print(f"DP-SGD on Fashion-MNIST: {n} training images, SimpleConvNet, {args.optimizer} lr {opt.param_groups[0]['lr']}; "
          f"Poisson sampling q = {q:.5f} (expected batch {args.batch}), clip C = {args.clip}, noise multiplier {args.noise}")
    steps = 0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        clipped = []
        for _ in range(steps_per_epoch):
            idx = np.flatnonzero(rng.random(n) < q)
            steps += 1
            if idx.size == 0:  # an empty draw still costs privacy: only noise
                g = {k: rng.normal(0.0, args.noise * args.clip, p.shape).astype(p.dtype) / args.batch for k, p in params.items()}
            else:
                per = per_sample_grads(model, x[idx], y[idx])
                g, norms = clip_and_noise(per, args.clip, args.noise, args.batch, rng=rng)
                clipped.append(float((norms > args.clip).mean()))
            for k, p in params.items():
                p.grad = Tensor(g[k])
            opt.step()
        eps, order = dp_epsilon(q, args.noise, steps, args.delta)
        acc = accuracy(model, xt, yt)
        print(f"epoch {epoch}: test accuracy {acc:.4f}; ({eps:.2f}, {args.delta:g})-DP after {steps} steps (RDP order {order}); "
              f"{100 * np.mean(clipped):.0f}% of examples clipped; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
