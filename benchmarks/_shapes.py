"""The conv and pool cases that ``conv.py`` (against PyTorch) and ``ab_revision.py`` (against an
earlier revision of ours) time: the convs of SimpleConvNet, LeNet-5 and AlexNet, and two pools."""

# name, x shape, w shape, stride, padding, input needs grad
CONVS = [
    ("SimpleConvNet conv", (100, 1, 28, 28), (30, 1, 5, 5), 1, 0, False),
    ("LeNet conv2", (100, 6, 14, 14), (16, 6, 5, 5), 1, 0, True),
    ("AlexNet conv1", (8, 3, 227, 227), (96, 3, 11, 11), 4, 0, False),
    ("AlexNet conv2", (8, 96, 27, 27), (256, 96, 5, 5), 1, 2, True),
]
# name, x shape, kernel, stride
POOLS = [
    ("max_pool2d 2x2/2", (100, 30, 24, 24), 2, 2),
    ("max_pool2d 3x3/2", (8, 96, 55, 55), 3, 2),
]
