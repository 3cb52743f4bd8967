"""The pooling chapter's own example, run with poolnd.

A 4x4 input with one channel and one image, stored as the chapter stores it: H1 x W1 x Depth x N
(layout "HWCN"). Max pooling with K=2, S=2 gives a 2x2 output, (W1 - K)/S + 1 = 2 per side. The
backward pass is a router: each output gradient goes to the one input the forward pass chose.
"""
import numpy as np

import poolnd

x = np.array([[1, 1, 2, 4],
              [5, 6, 7, 8],
              [3, 2, 1, 0],
              [1, 2, 3, 4]], dtype=np.float64).reshape(4, 4, 1, 1)     # H x W x Depth x N

layer = poolnd.MaxPool2d(kernel_size=2, stride=2, layout="HWCN")
y = layer.forward(x)
print("input (H x W):")
print(x[:, :, 0, 0])
print("max pool, K=2, S=2 -> output (H x W):")
print(y[:, :, 0, 0])

dout = np.ones_like(y)
dx = layer.backward(dout)
print("backward of dout = 1: the mask of the inputs the forward chose:")
print(dx[:, :, 0, 0])

print("average pool of the same input:")
print(poolnd.avg_pool2d(x, 2, layout="HWCN")[:, :, 0, 0])
