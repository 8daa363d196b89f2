"""Single-threaded LAPACK (numpy) SVD on the shapes of `benches/svd_backends.rs`, for comparison.

Dev-only; install numpy on demand:  python3 -m pip install numpy threadpoolctl
Run:  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python3 benches/numpy_svd.py
Prints one line per shape: median seconds of `np.linalg.svd(full_matrices=False)` on f32 input.
"""
import os
import statistics
import sys
import time

import numpy as np

shapes = [(576, 576), (192, 576), (1536, 576), (576, 1536), (768, 3072)]
if os.environ.get("LASER_BENCH_LARGE"):
    shapes.append((4096, 4096))
rng = np.random.default_rng(1)
try:
    from threadpoolctl import threadpool_info
    print("# BLAS:", [(i["internal_api"], i.get("num_threads"), i.get("architecture")) for i in threadpool_info()], file=sys.stderr)
except ImportError:
    pass
for m, n in shapes:
    w = rng.standard_normal((m, n)).astype(np.float32)
    times = []
    for _ in range(7):
        t = time.perf_counter()
        np.linalg.svd(w, full_matrices=False)
        times.append(time.perf_counter() - t)
    print(f"{m}x{n}\tthin\t{statistics.median(times):.4f}")
    times = []
    for _ in range(7):
        t = time.perf_counter()
        np.linalg.svd(w, compute_uv=False)
        times.append(time.perf_counter() - t)
    print(f"{m}x{n}\tvalues\t{statistics.median(times):.4f}")
