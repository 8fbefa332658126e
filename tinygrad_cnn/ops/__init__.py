"""Primitive ops (``Function`` subclasses) by family, and the tensor-level functions over them."""
