"""Train the bundled photo-patch UNet denoiser (ays_core/assets/patches_unet.safetensors),
reproducibly from a seed, on one CPU thread.

    .venv/bin/python benchmarks/train_patches.py [--seed 0] [--steps 800] [--threads 1] [--out FILE]

Data: 16x16 RGB crops of the "train" blocks of scikit-learn's two sample photographs
(ays_core/models/patches.py); the "heldout" blocks are never seen. Fixed seeds, deterministic
algorithms and a fixed thread count make the weights bit-reproducible on the same machine and
torch build (another thread count changes the order of floating-point sums). Prints the CPU time
(user + sys) it used.
"""
import argparse
import os
import resource
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ays_core.models.digits import BUNDLED_PATCHES_DENOISER, save_network  # noqa: E402
from ays_core.models.patches import PATCH, PATCHES_DATASET, train_sampler  # noqa: E402
from train_digits import train_denoiser  # noqa: E402

CONFIG = {
    "kind": "denoiser", "arch": "unet", "name": "photo-patches-16x16-unet", "dataset": PATCHES_DATASET,
    "data_shape": [3, PATCH, PATCH], "channels": [16, 32, 32], "emb_dim": 64,
    "sigma_data": 0.5, "sigma_min": 0.002, "sigma_max": 80.0,
}


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (part of what makes it reproducible)")
    parser.add_argument("--out", default=BUNDLED_PATCHES_DENOISER)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    denoiser = train_denoiser(CONFIG, train_sampler(), args.steps, args.batch, generator, lr=2e-3)
    save_network(denoiser, args.out)
    print(f"wrote {args.out}; CPU time {cpu_seconds():.0f} s (user + sys)")


if __name__ == "__main__":
    main()
