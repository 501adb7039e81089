"""16x16 RGB patches of scikit-learn's two sample photographs (china.jpg, flower.jpg): the data of
the bundled UNet checkpoint, a model with headroom (few-step samples are visibly worse than many-step
ones, unlike the 8x8 digits).

Why these: they ship with a dependency we already have, they are natural images (textures, edges,
smooth sky: the wide range of scales that makes few-step sampling hard), and 16x16 keeps a UNet
cheap enough to train and benchmark on two CPU cores.

Split, fixed and independent of any user seed: each photo is cut into 64x64 blocks (6 x 10 per
photo, the last 43 rows unused) coloured like a checkerboard. "train" blocks (row + column even)
feed training and the optimizer (random crops at any offset inside a block); "heldout" blocks
(odd) give the real set every metric compares against (all crops at a stride of 4 inside each
block). No patch of one half overlaps the other, and both halves cover every part of each photo.
"""
import functools

import numpy as np
import torch

from ..errors import AYSError

PATCHES_DATASET = "sklearn-photos-16x16"
PATCH = 16
BLOCK = 64
HELDOUT_STRIDE = 4


@functools.lru_cache(maxsize=1)
def _photos():
    """Both photos as one float32 tensor [2, 3, H, W] in [-1, 1] (each photo cropped to full blocks)."""
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images
    rows = min(image.shape[0] for image in images) // BLOCK * BLOCK
    columns = min(image.shape[1] for image in images) // BLOCK * BLOCK
    stacked = np.stack([image[:rows, :columns] for image in images]).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()


def _corners(part, stride):
    """[n, 3] rows of (photo, top, left) for every patch inside the `part` blocks at `stride`."""
    photos = _photos()
    block_rows, block_columns = photos.shape[2] // BLOCK, photos.shape[3] // BLOCK
    offsets = np.arange(0, BLOCK - PATCH + 1, stride)
    corners = []
    for photo in range(len(photos)):
        for row in range(block_rows):
            for column in range(block_columns):
                if (row + column) % 2 != (0 if part == "train" else 1):
                    continue
                tops, lefts = np.meshgrid(row * BLOCK + offsets, column * BLOCK + offsets, indexing="ij")
                corners.append(np.stack([np.full(tops.size, photo), tops.ravel(), lefts.ravel()], axis=1))
    return torch.from_numpy(np.concatenate(corners))


def crop(corners):
    """The patches [n, 3, 16, 16] whose (photo, top, left) rows are given."""
    photos = _photos()
    span = torch.arange(PATCH)
    rows = (corners[:, 1, None] + span)[:, None, :, None]
    columns = (corners[:, 2, None] + span)[:, None, None, :]
    channels = torch.arange(photos.shape[1])[None, :, None, None]
    return photos[corners[:, 0, None, None, None], channels, rows, columns]


def patches_split(part):
    """All patches of a part at its fixed stride: "heldout" at stride 4 (the scoring set), "train" at
    stride 4 too (for statistics; training and the optimizer draw crops at any offset instead)."""
    if part not in ("train", "heldout"):
        raise AYSError(f"unknown patches split {part!r}: use train or heldout")
    return crop(_corners(part, HELDOUT_STRIDE))


def train_sampler():
    """f(n, generator): n random 16x16 crops (any offset) from the train blocks."""
    corners = _corners("train", 1)

    def sample_data(n, generator=None):
        return crop(corners[torch.randint(len(corners), (n,), generator=generator)])

    return sample_data
