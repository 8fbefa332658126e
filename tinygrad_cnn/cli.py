"""The ``tinygrad-cnn`` command line (also ``python -m tinygrad_cnn``)."""
from __future__ import annotations

import argparse
import contextlib
import math
import pathlib
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any


def _number(kind: type, text: str, what: str, ok: Callable[[float], bool]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


# argparse types: a bad number is a usage error (exit 2) naming the option, never a traceback later.
def _positive_int(text: str) -> int:
    return int(_number(int, text, "a positive integer", lambda v: v >= 1))


def _seed(text: str) -> int:
    return int(_number(int, text, "a non-negative integer", lambda v: v >= 0))


def _positive_float(text: str) -> float:
    return _number(float, text, "a finite positive number", lambda v: v > 0)


def _non_negative_float(text: str) -> float:
    return _number(float, text, "a finite number >= 0", lambda v: v >= 0)


def _momentum(text: str) -> float:
    return _number(float, text, "a number in [0, 1)", lambda v: 0 <= v < 1)


# Settings a resumed run may change with --override; the model and its options never (the
# checkpoint's weights belong to them).
OVERRIDABLE = ("lr", "batch_size", "seed", "optimizer", "momentum", "dataset", "normalize", "limit_train", "limit_test")


def _override_keys(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip().lstrip("-").replace("-", "_") for k in text.split(",") if k.strip())
    if not keys or any(k not in OVERRIDABLE for k in keys):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(OVERRIDABLE)}; got {text!r}")
    return keys


def _add_model_options(p: argparse.ArgumentParser) -> None:
    from tinygrad_cnn.train import MODEL_NAMES

    p.add_argument("--model", choices=MODEL_NAMES, default="simpleconvnet", help="network to train (default: simpleconvnet)")
    p.add_argument("--weight-init-std", type=_positive_float, default=0.01, help="SimpleConvNet: std of the initial weights (default 0.01)")
    p.add_argument("--activation", choices=("sigmoid", "tanh", "relu"), default=None, help="LeNet: activation (default: the classic)")
    p.add_argument("--pooling", choices=("avg", "max"), default=None, help="LeNet: subsampling (default: the classic)")
    p.add_argument("--init", choices=("paper", "kaiming"), default=None,
                   help="AlexNet: weight initialisation (default: the paper's; kaiming learns much sooner)")


@contextlib.contextmanager
def _interrupts_delivered() -> Iterator[None]:
    """Python drops an exception raised inside a finalizer (reporting it to ``sys.unraisablehook``),
    and a Ctrl-C's KeyboardInterrupt can land there: raise the signal again so it reaches the loop."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _train(args: argparse.Namespace) -> int:
    """tinygrad-cnn train; Ctrl-C ends it with one line naming the checkpoint to resume from (exit 130)."""
    try:
        with _interrupts_delivered():
            return _run_train(args)
    except KeyboardInterrupt:
        from tinygrad_cnn.train import checkpoints

        found = checkpoints(args.out)
        saved = f"the last checkpoint is {found[-1]} (continue with --resume)" if found else f"no checkpoint in {args.out} yet"
        print(f"tinygrad-cnn train: interrupted; {saved}.", file=sys.stderr)
        return 130


def _run_train(args: argparse.Namespace) -> int:
    """Build model, data and optimizer from the options, then fit()."""
    import tinygrad_cnn as tg
    from tinygrad_cnn.data import DataLoader
    from tinygrad_cnn.serialization import CheckpointError
    from tinygrad_cnn.train import DEFAULT_LR, ResumeConfigError, build_model, fit, load_data, make_optimizer, model_options

    if args.override and not args.resume:
        print("tinygrad-cnn train: --override only applies with --resume (a new run takes the options as given).", file=sys.stderr)
        return 2

    try:
        train_set = load_data(args.dataset, args.model, args.data_root, True, args.limit_train, args.normalize)
        test_set = load_data(args.dataset, args.model, args.data_root, False, args.limit_test, args.normalize)
    except FileNotFoundError as e:
        print(f"tinygrad-cnn train: {e}", file=sys.stderr)
        return 1
    kwargs = model_options(
        args.model, weight_init_std=args.weight_init_std, activation=args.activation, pooling=args.pooling, init=args.init
    )
    lr = DEFAULT_LR[args.optimizer] if args.lr is None else args.lr
    config = {
        "model": args.model, "model_kwargs": kwargs, "dataset": args.dataset, "normalize": args.normalize,
        "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": lr,
        "momentum": args.momentum, "seed": args.seed, "limit_train": args.limit_train, "limit_test": args.limit_test,
    }
    tg.manual_seed(args.seed)
    model = build_model(args.model, **kwargs)
    opt = make_optimizer(args.optimizer, model.parameters(), lr, args.momentum)
    train_loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed)
    test_loader = DataLoader(test_set, args.eval_batch_size)
    print(f"training {args.model} ({model.num_parameters():,} parameters) on {args.dataset}: {len(train_set)} train / "
          f"{len(test_set)} test images from {_data_folders(train_set, test_set)}, {args.optimizer} lr={lr}, "
          f"batch {args.batch_size}, seed {args.seed} -> {args.out}")
    try:
        history = fit(model, opt, train_loader, test_loader, epochs=args.epochs, out_dir=args.out, resume=args.resume,
                      seed=args.seed, progress=not args.no_progress, log_every=args.log_every, config=config,
                      keep_checkpoints=args.keep_checkpoints, overwrite=args.overwrite, override=args.override)
    except (FileExistsError, FileNotFoundError, ResumeConfigError, CheckpointError) as e:
        print(f"tinygrad-cnn train: {e}", file=sys.stderr)
        return 1
    if history:
        last = history[-1]
        print(f"final test accuracy {last['test_acc']:.4f} after {last['epoch']} epoch(s); checkpoints and metrics.jsonl in {args.out}")
    _plot_curves(pathlib.Path(args.out), title=f"{args.model} on {args.dataset}")
    return 0


def _data_folders(train_set: object, test_set: object) -> str:
    """Where the data came from: one folder, or both when the splits were found in different places."""
    train, test = getattr(train_set, "folder", None), getattr(test_set, "folder", None)
    return str(train) if train == test else f"{train} (train) and {test} (test)"


def _plot_curves(out: pathlib.Path, title: str) -> None:
    try:
        from tinygrad_cnn.viz.plots import plot_training_curves

        plot_training_curves(out / "metrics.jsonl", out / "curves.png", title=title)
        print(f"training curves: {out / 'curves.png'}")
    except ImportError:
        print("(matplotlib not installed: no curves.png; pip install matplotlib)")


def _add_train(sub: argparse._SubParsersAction) -> None:
    from tinygrad_cnn.data import DATASETS
    from tinygrad_cnn.train import OPTIMIZER_NAMES

    p = sub.add_parser("train", help="train a CNN on MNIST or Fashion-MNIST", description="Train a CNN; see docs/training.md.")
    _add_model_options(p)
    p.add_argument("--dataset", choices=tuple(DATASETS), default="fashion-mnist")
    p.add_argument("--epochs", type=_positive_int, default=20)
    p.add_argument("--batch-size", type=_positive_int, default=100)
    p.add_argument("--eval-batch-size", type=_positive_int, default=500)
    p.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default="adam")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: 0.01 sgd/momentum/adagrad, 0.001 rmsprop/adam)")
    p.add_argument("--momentum", type=_momentum, default=0.9, help="for --optimizer momentum (default 0.9)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", default="runs/train", help="output folder: checkpoints, metrics.jsonl, curves.png")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--override", type=_override_keys, default=(), metavar="KEY[,KEY...]",
                   help=f"with --resume: continue with these new settings instead of the checkpoint's ({', '.join(OVERRIDABLE)})")
    p.add_argument("--overwrite", action="store_true", help="start afresh even if --out holds checkpoints")
    p.add_argument("--normalize", action="store_true", help="subtract the dataset mean and divide by its std")
    p.add_argument("--data-root", default=None,
                   help="folder with the IDX files, the only place searched (default: $TINYGRAD_CNN_DATA, the cache, the system package)")
    p.add_argument("--limit-train", type=_positive_int, default=None, help="use only the first N training images")
    p.add_argument("--limit-test", type=_positive_int, default=None, help="use only the first N test images")
    p.add_argument("--log-every", type=_positive_int, default=10, help="batches per step record in metrics.jsonl")
    p.add_argument("--keep-checkpoints", type=_positive_int, default=None, help="keep only the newest K checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)


def _eval(args: argparse.Namespace) -> int:
    """tinygrad-cnn eval CHECKPOINT: rebuild the model from the checkpoint's config, test it."""
    from tinygrad_cnn.train import evaluate_checkpoint

    try:
        res = evaluate_checkpoint(args.checkpoint, root=args.data_root, batch_size=args.batch_size, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"tinygrad-cnn eval: {e}", file=sys.stderr)
        return 1
    print(f"{args.checkpoint}: {res['model']} after epoch {res['epoch']} on the {res['dataset']} test set "
          f"({res['n']} images): accuracy {res['acc']:.4f}, loss {res['loss']:.4f}")
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="test accuracy of a training checkpoint")
    p.add_argument("checkpoint", help="an epoch_NNN.npz written by `tinygrad-cnn train`")
    p.add_argument("--data-root", default=None,
                   help="folder with the IDX files (default: $TINYGRAD_CNN_DATA, the cache, the system package)")
    p.add_argument("--batch-size", type=_positive_int, default=500)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_eval)


def _demo(args: argparse.Namespace) -> int:
    """tinygrad-cnn demo: SimpleConvNet on Fashion-MNIST for one epoch, then pictures of it."""
    from tinygrad_cnn.demo import run_demo

    try:
        run_demo(args.out, epochs=args.epochs, seed=args.seed, root=args.data_root, limit_train=args.limit_train,
                 limit_test=args.limit_test, progress=not args.no_progress)
    except FileNotFoundError as e:
        print(f"tinygrad-cnn demo: {e}", file=sys.stderr)
        return 1
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the README's main job: train SimpleConvNet on Fashion-MNIST, draw what it learned")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--epochs", type=_positive_int, default=1)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--data-root", default=None,
                   help="folder with the IDX files (default: $TINYGRAD_CNN_DATA, the cache, the system package)")
    p.add_argument("--limit-train", type=_positive_int, default=None, help="use only the first N training images")
    p.add_argument("--limit-test", type=_positive_int, default=None, help="use only the first N test images")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)


def _parse_shape(text: str) -> tuple[int, ...]:
    """``"2,3,8,8"`` (or ``"2x3x8x8"``) -> ``(2, 3, 8, 8)``. Every part must be a positive integer, so
    ``"2,x"`` or ``"2,"`` is a usage error rather than a silent ``(2,)``."""
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    if not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers like 2,3,8,8 (or 2x3x8x8), got {text!r}")
    shape = tuple(int(p) for p in parts)
    if any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(f"expected positive dimensions, got {text!r}")
    return shape


def _range(text: str) -> tuple[float, float]:
    """``"0.1,2"`` -> ``(0.1, 2.0)``: two finite numbers, LO < HI."""
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers LO,HI like 0.1,2, got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(f"expected finite numbers LO < HI, got {text!r}")
    return lo, hi


def _load_target(spec: str) -> Callable[..., Any]:
    """``module:attr`` (attr may be dotted) -> the callable; a Function subclass gives its apply."""
    import importlib
    import os

    from tinygrad_cnn.autograd import Function

    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"target must look like my_module:my_op (module, colon, function or Function class), got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:  # the console script does not see the cwd
        sys.path.insert(0, os.getcwd())
    try:
        obj: object = importlib.import_module(mod_name)
    except ImportError as e:
        raise ValueError(f"cannot import module {mod_name!r}: {e}. Run from its folder or add it to PYTHONPATH.") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, type) and issubclass(obj, Function):
        obj = obj.apply
    if not callable(obj):
        raise ValueError(f"{spec} is a {type(obj).__name__}, not a function or Function class")
    return obj


def _gradcheck(args: argparse.Namespace) -> int:
    """tinygrad-cnn gradcheck: check a user's op on random inputs of the given shapes; print the report."""
    import warnings

    import numpy as np

    import tinygrad_cnn as tg
    from tinygrad_cnn.check import GradcheckWarning

    try:
        fn = _load_target(args.target)
    except ValueError as e:
        print(f"tinygrad-cnn gradcheck: {e}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    arrays = [rng.uniform(args.range[0], args.range[1], s) if args.range else rng.standard_normal(s) for s in args.shape]
    inputs = tuple(tg.Tensor(np.asarray(a, dtype=args.dtype), requires_grad=True) for a in arrays)
    opts = {"eps": args.eps, "atol": args.atol, "rtol": args.rtol, "fast_mode": args.fast, "seed": args.seed}
    opts["fail_on_kinks"] = args.fail_on_kinks
    shapes = ", ".join(str(s) for s in args.shape)
    print(f"checking {args.target} on {args.dtype} inputs of shape {shapes}")
    ok = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradcheckWarning)  # the report lists them
        checks: list[Callable[..., Any]] = [tg.gradcheck] + ([tg.gradgradcheck] if args.double else [])
        for check in checks:
            try:
                res = check(fn, inputs, raise_exception=False, **opts)
            except Exception as e:  # noqa: BLE001 - a user's forward failing is reported, not a traceback
                print(f"tinygrad-cnn gradcheck: calling {args.target} on inputs of shape {shapes} raised {type(e).__name__}: {e}",
                      file=sys.stderr)
                return 2
            print(res)
            ok = ok and res.passed
    return 0 if ok else 1


def _add_gradcheck(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gradcheck", help="check the gradients of your op or function against finite differences")
    p.add_argument("target", help="module:function or module:FunctionClass, importable from the current folder or PYTHONPATH")
    p.add_argument("--shape", type=_parse_shape, action="append", required=True,
                   help="shape of one input, e.g. 2,3,8,8; repeat once per positional input")
    p.add_argument("--double", action="store_true", help="also check second derivatives (gradgradcheck, double backward)")
    p.add_argument("--fast", action="store_true", help="fast mode: random projections v^T J u instead of whole Jacobians")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="dtype of the random inputs (checked in float64)")
    p.add_argument("--range", type=_range, default=None, metavar="LO,HI",
                   help="draw inputs uniformly from [LO, HI] instead of a standard normal (e.g. 0.1,2 for log)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--eps", type=_positive_float, default=1e-6)
    p.add_argument("--atol", type=_non_negative_float, default=1e-5)
    p.add_argument("--rtol", type=_non_negative_float, default=1e-3)
    p.add_argument("--fail-on-kinks", action="store_true", help="count non-differentiable points as errors")
    p.set_defaults(func=_gradcheck)


def add_graph_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``tinygrad-cnn graph``."""
    from tinygrad_cnn.viz.graph import FORMATS
    from tinygrad_cnn.viz.model_graphs import MODELS

    p.add_argument("model", choices=MODELS, help="the network to draw")
    p.add_argument("--view", choices=("forward", "backward"), default="forward", help="ops as written, or the gradient functions")
    p.add_argument("--depth", type=int, default=None, help="fold modules nested deeper than N into single nodes (0 = the whole model)")
    p.add_argument("--format", choices=FORMATS + ("dot",), default=None, help="svg, png, pdf or dot (DOT text); default: from -o, else svg")
    p.add_argument("-o", "--output", default=None, help="output file (default: <model>_<view>.<format>)")
    p.add_argument("--values", action="store_true", help="show min/max/mean of values and gradient norms")
    p.add_argument("--batch", type=int, default=1, help="batch size of the random example input (default 1)")


def graph_command(args: argparse.Namespace) -> int:
    """tinygrad-cnn graph: draw a reference model's computation graph (see docs/graphs.md); prints the path."""
    from tinygrad_cnn.viz import GraphvizNotFoundError
    from tinygrad_cnn.viz.model_graphs import write_model_graph

    if args.depth is not None and args.depth < 0:
        print(f"tinygrad-cnn graph: --depth must be >= 0, got {args.depth}.", file=sys.stderr)
        return 2
    try:
        path = write_model_graph(args.model, args.output, args.format, view=args.view, depth=args.depth,
                                 show_values=args.values, batch=args.batch)
    except GraphvizNotFoundError as e:
        print(f"tinygrad-cnn graph: {e} Or write the DOT source with --format dot.", file=sys.stderr)
        return 1
    print(path)
    return 0


def _add_graph(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("graph", help="draw a model's computation graph (forward or backward view) with Graphviz")
    add_graph_arguments(p)
    p.set_defaults(func=graph_command)


# Example input shapes of the named models as `train` builds them (LeNet 32x32, AlexNet 227x227, grey).
_EXPORT_SHAPES = {"simpleconvnet": (1, 1, 28, 28), "lenet": (1, 1, 32, 32), "alexnet": (1, 1, 227, 227)}


def _export(args: argparse.Namespace) -> int:
    """tinygrad-cnn export MODEL [--checkpoint PATH] -o model.onnx: write the model as ONNX (docs/onnx.md)."""
    import numpy as np

    from tinygrad_cnn.train.registry import MODEL_NAMES, build_model, model_options

    def fail(msg: str) -> int:
        print(f"tinygrad-cnn export: {msg}", file=sys.stderr)
        return 2

    try:
        from tinygrad_cnn import onnx as tonnx

        tonnx.require_onnx()
    except ImportError as e:
        return fail(str(e))
    if args.model in MODEL_NAMES:
        if args.checkpoint:
            from tinygrad_cnn.train import load_checkpoint

            try:
                ck = load_checkpoint(args.checkpoint)
            except (OSError, ValueError) as e:
                return fail(str(e))
            cfg = ck["config"]
            if cfg.get("model", args.model) != args.model:
                return fail(f"{args.checkpoint} holds a {cfg['model']}, not a {args.model}; "
                            f"export it as `tinygrad-cnn export {cfg['model']}`.")
            model = build_model(args.model, **cfg.get("model_kwargs", model_options(args.model)))
            model.load_state_dict(ck["model"])
        else:
            model = build_model(args.model, seed=0, **model_options(args.model))
        shape = args.shape or _EXPORT_SHAPES[args.model]
    else:
        if args.checkpoint:
            return fail("--checkpoint works with the named models only; load your weights in your factory function.")
        if args.shape is None:
            return fail("give the example input shape of your model with --shape, e.g. --shape 1,1,28,28.")
        try:
            model = _load_target(args.model)()
        except ValueError as e:
            return fail(f"MODEL must be one of {', '.join(MODEL_NAMES)} or module:factory returning a Module or (params, fn): {e}")
        shape = args.shape
    from tinygrad_cnn.tensor import Tensor

    dtype = np.float32
    x = Tensor(np.random.default_rng(0).standard_normal(shape).astype(dtype))
    out = args.output or f"{args.model.split(':')[-1]}.onnx"
    try:
        tonnx.export(model, x, out, opset=args.opset, dynamic_batch=not args.static_batch)
    except (NotImplementedError, ValueError, TypeError) as e:
        return fail(str(e))
    print(out)
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model (optionally a training checkpoint's weights) as an ONNX file",
                       description="Export a model to ONNX; see docs/onnx.md.")
    p.add_argument("model", help="simpleconvnet, lenet, alexnet, or module:factory returning a Module or (params, fn)")
    p.add_argument("--checkpoint", default=None, help="an epoch_NNN.npz written by `tinygrad-cnn train` (default: fresh weights)")
    p.add_argument("-o", "--output", default=None, help="the ONNX file to write (default: <model>.onnx)")
    p.add_argument("--shape", type=_parse_shape, default=None, help="example input shape, e.g. 1,1,28,28 (named models know theirs)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 20)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch dimension instead of a symbolic one")
    p.set_defaults(func=_export)


# Each command registers itself here: one `_add_<command>(sub)` function per command.
COMMANDS = [_add_train, _add_eval, _add_demo, _add_gradcheck, _add_graph, _add_export]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, also for options without a help text; a help text that
    already explains its default (or a flag, or a default of None) is left as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or not action.option_strings or action.default is None or action.default is False \
                or action.default is argparse.SUPPRESS or action.default == ():
            return text
        return f"{text} (default: %(default)s)".lstrip()

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and self._get_help_string(action):
            action.help = self._get_help_string(action)  # argparse prints nothing for an empty help text
        return super()._format_action(action)


class _Commands(argparse._SubParsersAction):
    """Subcommands whose ``--help`` uses HelpFormatter and opens with their one-line ``help`` as the
    description, unless a command gives a description of its own."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("formatter_class", HelpFormatter)
        if kwargs.get("description") is None and kwargs.get("help"):
            text = kwargs["help"]
            kwargs["description"] = text[0].upper() + text[1:] + "."
        return super().add_parser(name, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The ``tinygrad-cnn`` argument parser with every command of ``COMMANDS``.

    Example: ``build_parser().parse_args(["eval", "runs/train/epoch_001.npz"]).batch_size`` is 500.
    """
    from tinygrad_cnn import __version__

    parser = argparse.ArgumentParser(prog="tinygrad-cnn", description="tinygrad_cnn command line: train, evaluate and draw CNNs, "
                                     "check gradients. `tinygrad-cnn COMMAND --help` describes a command.", formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, action=_Commands, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: sys.argv[1:]); return the exit status.

    Example: ``main(["graph", "lenet", "--format", "dot", "-o", "lenet.dot"])``.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # Ctrl-C is the user's choice, not an error: one line, the shell's 128 + SIGINT
        print(f"tinygrad-cnn {args.command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
