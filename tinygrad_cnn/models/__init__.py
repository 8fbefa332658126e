"""Reference networks: the chapter's SimpleConvNet, LeNet-5 and AlexNet."""
from .alexnet import AlexNet
from .lenet import LeNet
from .simple_convnet import SimpleConvNet

__all__ = ["AlexNet", "LeNet", "SimpleConvNet"]
