"""Shared test helpers: random configurations and layout transposes (no poolnd internals)."""
import numpy as np

SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


def canonical(k, batched=True):
    return ("NC" if batched else "C") + SPATIAL[k]


def to_layout(x_cf, layout, k):
    """Channels-first array -> the same data with axes in ``layout`` order (a view)."""
    canon = canonical(k, "N" in layout)
    return np.transpose(x_cf, [canon.index(c) for c in layout])


def from_layout(y, layout, k):
    canon = canonical(k, "N" in layout)
    return np.transpose(y, [layout.index(c) for c in canon])


def random_layout(rng, k, batched):
    letters = list(canonical(k, batched))
    r = rng.random()
    if r < 0.4:
        return None
    if r < 0.6:                       # channels-last
        return ("N" if batched else "") + SPATIAL[k] + "C"
    rng.shuffle(letters)
    return "".join(letters)


def as_torch_arg(t):
    """A per-dim tuple as the user would write it: an int when all equal."""
    return t[0] if len(set(t)) == 1 else tuple(t)


def random_config(rng, mode, k=None, max_size=9):
    """A random pooling configuration, PyTorch-expressible (symmetric int padding)."""
    k = int(rng.integers(1, 4)) if k is None else k
    kernel = tuple(int(v) for v in rng.integers(1, 5, size=k))
    stride = None if rng.random() < 0.25 else tuple(int(v) for v in rng.integers(1, 4, size=k))
    dilation = (tuple(int(v) for v in rng.integers(1, 4, size=k))
                if mode == "max" and rng.random() < 0.5 else (1,) * k)
    padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in kernel)
    ceil_mode = bool(rng.random() < 0.5)
    eff = [(kk - 1) * d + 1 for kk, d in zip(kernel, dilation)]
    size = tuple(int(rng.integers(max(1, e - 2 * p - 1), e + max_size)) for e, p in
                 zip(eff, padding))
    batched = rng.random() < 0.85
    n = int(rng.choice([0, 1, 2, 3], p=[0.05, 0.35, 0.4, 0.2]))
    c = int(rng.integers(1, 4))
    dtype = rng.choice(["float32", "float64", "float16"], p=[0.55, 0.3, 0.15])
    cfg = dict(k=k, kernel=kernel, stride=stride, dilation=dilation, padding=padding,
               ceil_mode=ceil_mode, size=size, batched=batched, n=n, c=c, dtype=str(dtype),
               layout=random_layout(rng, k, batched))
    if mode == "avg":
        cfg["count_include_pad"] = bool(rng.random() < 0.6)
        cfg["divisor_override"] = (None if rng.random() < 0.8
                                   else int(rng.choice([-3, -1, 1, 2, 5])))
    return cfg


def make_input(rng, cfg):
    shape = ((cfg["n"],) if cfg["batched"] else ()) + (cfg["c"],) + cfg["size"]
    x = rng.standard_normal(shape) * 4
    return x.astype(cfg["dtype"])
