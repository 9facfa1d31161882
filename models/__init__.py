"""The event-driven SNN core: NIR graphs as flat arrays, numba kernels, accounting."""

# Layer kinds beyond graph.py / stages.py / reference.py register themselves on
# import: Conv1d/Conv2d/SumPool2d/AvgPool2d/Flatten and the ALIF extension node.
from . import alif, conv_kinds, conv_stages, reference_alif, reference_conv  # noqa: F401
