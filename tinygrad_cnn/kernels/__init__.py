"""The numpy kernels under the conv and pool ops: ndarrays in, ndarrays out (no Tensor, no graph,
no grad mode). This is the boundary another array backend would plug in at.

- :mod:`.geometry`: argument pairs, the sliding :class:`~.geometry.Window`, output sizes;
- :mod:`.im2col`: im2col / col2im and the strided views they copy from;
- :mod:`.conv_rows`: convolution by output rows over a width-unfolded input;
- :mod:`.conv`: the conv kernels (forward, transposed, weight gradient), either algorithm;
- :mod:`.pool`: max and average pooling and their backward scatters;
- :mod:`.matmul`: matrix products with their rows on the thread pool;
- :mod:`.parallel`: the thread pool the kernels run their chunks on, and its work thresholds;
- :mod:`.workspace`: large scratch buffers reused from call to call, and the C library's reuse
  of freed memory (:func:`~.workspace.retain_freed_memory`, set on import);
- :mod:`.settings`: which conv algorithm to use.

>>> import tinygrad_cnn.kernels as K
>>> with K.conv_algorithm("im2col"):       # force one algorithm (the default is "auto")
...     K.get_conv_algorithm()
('im2col', 'auto')
"""
import os

from .parallel import get_num_threads, set_num_threads
from .settings import conv_algorithm, get_conv_algorithm, set_conv_algorithm
from .workspace import RETAIN_ENV_VAR, empty_cache, retain_freed_memory

__all__ = [
    "conv_algorithm", "empty_cache", "get_conv_algorithm", "get_num_threads", "retain_freed_memory",
    "set_conv_algorithm", "set_num_threads",
]

if os.environ.get(RETAIN_ENV_VAR, "1") != "0":
    retain_freed_memory()
