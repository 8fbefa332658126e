"""`tinygrad-cnn --version`, every command's `--help` (a description, the defaults), usage errors for bad values."""
import argparse
import pathlib
import re

import pytest

import tinygrad_cnn
from tinygrad_cnn.cli import build_parser, main


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"tinygrad-cnn {tinygrad_cnn.__version__}"
    # The distribution's version is read from the same attribute, so the two cannot drift apart.
    text = (pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]$', text, re.M) and not re.search(r"^version = \"", text, re.M)
    assert re.search(r'^version = \{attr = "tinygrad_cnn.__version__"\}$', text, re.M)


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in _commands():
        assert name in out


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_has_a_description_and_shows_its_defaults(name, capsys):
    sp = _commands()[name]
    assert sp.description and "\n" not in sp.description.strip(), f"{name}: no one-line description"
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert sp.description.strip().split()[0] in text
    for action in sp._actions:
        if not action.option_strings or action.default in (None, argparse.SUPPRESS) or action.default is False or action.default == ():
            continue
        if action.help and "default" in action.help:  # the help text explains its default itself
            assert " ".join(action.help.split()) in text
        else:
            assert f"{action.option_strings[-1]}" in text and f"(default: {action.default})" in text, (name, action.dest)


def test_flags_and_unset_options_show_no_meaningless_default(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "default: False" not in out and "default: None" not in out
    assert "(default: demo-output)" in out and "(default: 1)" in out and "(default: 0)" in out  # --out, --epochs, --seed


@pytest.mark.parametrize("bad", ["2,x", "2,", "x", "2,,3", "2.5", "0,3", "2,-3", ""])
def test_gradcheck_bad_shape_is_a_usage_error_naming_the_value(bad, capsys):
    with pytest.raises(SystemExit) as e:
        main(["gradcheck", "some_module:op", "--shape", bad])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--shape" in err and repr(bad) in err


@pytest.mark.parametrize(("text", "shape"), [("2,3,8,8", (2, 3, 8, 8)), ("2x3", (2, 3)), (" 4 ", (4,)), ("2, 3", (2, 3))])
def test_gradcheck_shape_forms(text, shape):
    args = build_parser().parse_args(["gradcheck", "m:f", "--shape", text, "--shape", "5"])
    assert args.shape == [shape, (5,)]


@pytest.mark.parametrize("bad", ["1", "a,b", "2,1", "0,inf"])
def test_gradcheck_bad_range_is_a_usage_error(bad, capsys):
    with pytest.raises(SystemExit) as e:
        main(["gradcheck", "m:f", "--shape", "2", "--range", bad])
    assert e.value.code == 2
    assert "--range" in capsys.readouterr().err
    assert build_parser().parse_args(["gradcheck", "m:f", "--shape", "2", "--range", "0.1,2"]).range == (0.1, 2.0)
