"""fp32 matrix-multiply peak of this CPU, the ceiling the network's achieved GFLOP/s is compared to.
Needs a numpy linked to an optimised BLAS (pip's numpy ships OpenBLAS; Debian's links the reference BLAS)."""
import json
import time

import numpy as np

n = 2048
a = np.random.rand(n, n).astype(np.float32)
b = np.random.rand(n, n).astype(np.float32)
a @ b
best = 0.0
for _ in range(5):
    t = time.perf_counter()
    a @ b
    best = max(best, 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
print(json.dumps({'gflops': round(best, 1), 'numpy': np.__version__, 'size': n}))
