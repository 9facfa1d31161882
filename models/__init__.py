"""The event-driven SNN core: NIR graphs as flat arrays, numba kernels, accounting."""
