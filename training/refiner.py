"""The learned band refiner (issue 11): learns what the classic engine gets wrong in its uncertain band.

Input: one tile of the 12 channels of src/matte/refine.ts (image RGB, plate RGB, classic alpha,
F-hat RGB, fallback, band), NCHW in [0, 1], side = tile + 2 * pad. Output: alpha (N, 1, side, side),
classic alpha plus a learned correction inside the band, clamped to [0, 1]; only the band pixels of the
tile's centre are used. Fully convolutional (3x3 convolutions, dilations 1-2-4-1): receptive radius 8
pixels, so a tile needs pad >= 8 of real context, and a whole image gives the same result as its tiles.
The differences I - B' and I - F-hat (the compositing equation's two terms) are formed inside the model.
"""
import torch
import torch.nn as nn

RADIUS = 8


class Refiner(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.width = width
        self.body = nn.Sequential(
            nn.Conv2d(18, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, 1),
        )
        # Start as the identity: the refiner begins where the classic engine is.
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x):
        image, plate, alpha, fhat, band = x[:, 0:3], x[:, 3:6], x[:, 6:7], x[:, 7:10], x[:, 11:12]
        h = torch.cat([x, image - plate, image - fhat], 1)
        return (alpha + band * self.body(h)).clamp(0, 1)
