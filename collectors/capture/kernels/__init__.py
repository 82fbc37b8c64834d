"""The compiled kernels: numba options (jit.py), ahead-of-time build (build.py), choice of
the built or JIT kernels (native.py), loading them before traffic (warm.py)."""
