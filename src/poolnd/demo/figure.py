"""The demo's one figure: a test digit, a feature map after the first conv and ReLU, the map
poolnd's max pool makes of it, the backward routing mask (which inputs a gradient of ones
reaches: the chapter's router), and test accuracy against shift for both networks."""
from __future__ import annotations

import numpy as np

import poolnd


def write_figure(path, net, x_test, accuracies, names, shifts):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    digit = x_test[:1]
    conv, relu = net.layers[0], net.layers[1]
    fmap = relu.forward(conv.forward(digit))                       # (1, 28, 28, C)
    channel = int(np.argmax(fmap[0].reshape(-1, fmap.shape[-1]).std(axis=0)))
    pool = poolnd.MaxPool2d(2, layout="NHWC")
    pooled = pool.forward(fmap)
    mask = pool.backward(np.ones_like(pooled)) != 0                 # inputs that get gradient

    fig = plt.figure(figsize=(13, 6.2))
    grid = fig.add_gridspec(2, 4, height_ratios=[1, 1.05])
    panels = [(digit[0, :, :, 0], "input digit (28x28)", "gray_r"),
              (fmap[0, :, :, channel], f"feature map, channel {channel} (28x28)", "viridis"),
              (pooled[0, :, :, channel], "after 2x2 max pool (14x14)", "viridis"),
              (mask[0, :, :, channel], "backward routing: inputs given gradient", "gray_r")]
    for i, (img, title, cmap) in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(img, cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[1, :])
    for acc, name, marker in zip(accuracies, names, ("o", "s")):
        ax.plot(shifts, [100 * a for a in acc], marker=marker, label=name)
    ax.set_xlabel("shift of the test images (pixels; mean over right, left, down, up)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(list(shifts))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.suptitle("poolnd demo: max pooling in a NumPy CNN", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
