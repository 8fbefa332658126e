"""SimpleConvNet's chapter API takes every label form the book's code passes: labels (N,),
(N, 1) and one-hot (N, C) give the same loss, accuracy and gradients, equal to the book's own
softmax + cross_entropy_error written out in numpy."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn.models import SimpleConvNet

CONV = {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1}


def small_net(seed=0):
    return SimpleConvNet(input_dim=(1, 6, 6), conv_param=CONV, hidden_size=4, output_size=3, weight_init_std=0.5,
                         dtype=np.float64, seed=seed)


def book_loss(scores, t):
    """The chapter's softmax and cross_entropy_error, without the 1e-7 it adds inside the log
    (a guard against log(0) that shifts the value by about 1e-7 / y)."""
    x = scores - scores.max(axis=1, keepdims=True)
    y = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    if t.size == y.size:
        t = t.argmax(axis=1)
    return -np.sum(np.log(y[np.arange(y.shape[0]), t])) / y.shape[0]


def forms(labels, classes=3):
    one_hot = np.eye(classes)[labels]
    return {"(N,)": labels, "(N, 1)": labels.reshape(-1, 1), "one-hot": one_hot, "one-hot int": one_hot.astype(np.int64),
            "float labels": labels.astype(np.float32), "list": labels.tolist()}


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_all_label_forms_agree_with_each_other_and_the_book(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 6, 6))
    labels = rng.integers(0, 3, n)
    net = small_net(seed)
    base_loss, base_acc, base_grad = net.loss(x, labels), net.accuracy(x, labels, batch_size=3), net.gradient(x, labels)
    assert base_loss == pytest.approx(book_loss(net.predict(x), np.eye(3)[labels]), rel=1e-10)
    assert base_acc == np.mean(net.predict(x).argmax(axis=1) == labels)
    for name, t in forms(labels).items():
        assert net.loss(x, t) == base_loss, name
        assert net.accuracy(x, t, batch_size=3) == base_acc, name
        g = net.gradient(x, t)
        for k in base_grad:
            np.testing.assert_array_equal(g[k], base_grad[k], err_msg=f"{name} {k}")


def test_numerical_gradient_agrees_with_backprop_for_every_form():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 1, 6, 6))
    labels = np.array([0, 2, 1, 2])
    net = small_net(1)
    want = net.gradient(x, labels)
    for name in ("(N,)", "(N, 1)", "one-hot"):
        num = net.numerical_gradient(x, forms(labels)[name])
        for k in want:
            np.testing.assert_allclose(num[k], want[k], rtol=1e-5, atol=1e-8, err_msg=f"{name} {k}")


def test_soft_labels_are_probabilities_and_accuracy_takes_their_argmax():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 1, 6, 6))
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
    net = small_net(2)
    s = net.predict(x)
    logp = s - s.max(1, keepdims=True) - np.log(np.exp(s - s.max(1, keepdims=True)).sum(1, keepdims=True))
    assert net.loss(x, p) == pytest.approx(-(p * logp).sum(1).mean(), rel=1e-12)
    assert net.accuracy(x, p) == net.accuracy(x, p.argmax(1))


@pytest.mark.parametrize("t, match", [
    (np.array([0, 1]), r"t has shape \(2,\); give labels \(N,\) or \(N, 1\).*N = 3"),
    (np.array([0, 1, 3]), r"labels must be in \[0, 3\), got values in \[0, 3\]"),
    (np.array([0.5, 1, 2]), "non-integer values"),
    (np.array([[0, 2, 0], [1, 0, 0], [0, 0, 1]]), "not one-hot rows"),
    (np.zeros((3, 4)), r"t has shape \(3, 4\)"),
])
def test_bad_labels_are_named(t, match):
    x = np.zeros((3, 1, 6, 6))
    with pytest.raises(ValueError, match="SimpleConvNet.loss: .*" + match):
        small_net().loss(x, t)
