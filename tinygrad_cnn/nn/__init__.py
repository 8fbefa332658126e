"""Neural-network building blocks: the functional API (``nn.functional``)."""
from . import functional  # noqa: F401
