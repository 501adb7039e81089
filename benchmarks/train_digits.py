"""Train the bundled digits denoiser and its feature network, reproducibly from a seed, on CPU.

    .venv/bin/python benchmarks/train_digits.py [--seed 0] [--steps 6000] [--out-dir ays_core/assets]

The denoiser learns the "train" half of scikit-learn's 8x8 digits with the EDM loss; the feature
network (a digit classifier) learns the "heldout" half, and its accuracy is reported on the train
half. See ays_core/models/digits.py for the split and the checkpoint format.
"""
import argparse
import copy
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ays_core.models.digits import (  # noqa: E402
    ASSETS_DIR, DIGITS_DATASET, EDMDenoiser, FeatureClassifier, digits_split, rows_sampler, save_network,
)

DENOISER_CONFIG = {
    "kind": "denoiser", "name": "digits-8x8-mlp", "dataset": DIGITS_DATASET, "data_shape": [1, 8, 8],
    "width": 256, "depth": 4, "emb_dim": 64, "sigma_data": 0.75, "sigma_min": 0.002, "sigma_max": 80.0,
}
FEATURES_CONFIG = {
    "kind": "classifier", "name": "digits-8x8-classifier", "dataset": DIGITS_DATASET, "data_shape": [1, 8, 8],
    "width": 256, "feature_dim": 64, "classes": 10,
}


def cosine_lr(step, steps, peak, warmup=200):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def train_denoiser(config, sample_data, steps, batch, generator, p_mean=-1.2, p_std=1.2, ema_decay=0.999, lr=1e-3):
    """EDM training of the denoiser `config` describes on x0 = sample_data(batch, generator):
    log-normal noise levels, Adam with cosine decay, EMA weights returned."""
    model = EDMDenoiser(config)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        x0 = sample_data(batch, generator)
        sigma = (p_mean + p_std * torch.randn(batch, generator=generator)).exp()
        noise = torch.randn(x0.shape, generator=generator)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, lr)
        loss = model.loss(x0, sigma, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for target, source in zip(ema.parameters(), model.parameters()):
                target.lerp_(source, 1 - ema_decay)
        if step % 100 == 0 or step == steps - 1:
            print(f"denoiser step {step:5d}  loss {loss.item():.4f}", flush=True)
    return ema


def train_classifier(images, labels, steps, batch, generator, noise_std=0.1):
    """Cross-entropy with light input noise so features stay smooth around real digits."""
    model = FeatureClassifier(FEATURES_CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    for step in range(steps):
        index = torch.randint(len(images), (batch,), generator=generator)
        x = images[index] + noise_std * torch.randn(images[index].shape, generator=generator)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, 2e-3, warmup=50)
        loss = torch.nn.functional.cross_entropy(model(x), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=6000, help="denoiser training steps")
    parser.add_argument("--classifier-steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--out-dir", default=ASSETS_DIR)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    train_images, train_labels = digits_split("train")
    heldout_images, heldout_labels = digits_split("heldout")
    os.makedirs(args.out_dir, exist_ok=True)

    start = time.time()
    denoiser = train_denoiser(DENOISER_CONFIG, rows_sampler(train_images), args.steps, args.batch, generator)
    save_network(denoiser, os.path.join(args.out_dir, "digits_denoiser.safetensors"))
    print(f"denoiser trained in {time.time() - start:.0f} s")

    start = time.time()
    classifier = train_classifier(heldout_images, heldout_labels, args.classifier_steps, args.batch, generator)
    with torch.no_grad():
        accuracy = (classifier(train_images).argmax(1) == train_labels).float().mean().item()
    save_network(classifier, os.path.join(args.out_dir, "digits_features.safetensors"))
    print(f"feature network trained in {time.time() - start:.0f} s; accuracy on the other half {accuracy:.3f}")


if __name__ == "__main__":
    main()
