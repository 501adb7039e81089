"""Time a real-size SD1.5 / SD2 / SDXL UNet forward (random weights) on this machine's device and
turn it into the GPU time of an `ays optimize` run.

    python benchmarks/time_unet.py                    # sd15 and sdxl, CUDA fp16 if present
    python benchmarks/time_unet.py --arch sdxl --rows 2 8 32 --dtype bf16

For each architecture and batch (UNet rows per forward; a sample with guidance is 2 rows) it
prints ms per forward, ms per row, peak memory (CUDA), the FLOPs counted on the meta device and
the share of the device's measured fp16 matmul rate the UNet reaches. Then the time of a default
`ays optimize` run (fast mode, 4096 samples, data-free x0 from 256 prompts-draws, early stopping):
its denoiser evaluations (ays_core.budget.count_evaluations, fewest to most iterations) times two
rows times the measured time per row at the largest batch. Random weights run exactly as fast as
trained ones: the arithmetic is the same.
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ays_core.budget import count_evaluations, format_seconds, matmul_throughput, meta_flops  # noqa: E402
from ays_core.models.architectures import ARCHITECTURES, build_unet, example_inputs  # noqa: E402
from ays_core.settings import DEFAULT_PROMPT_SAMPLES, RunSettings  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def time_forward(unet, arch, rows, device, dtype, repeats):
    args, kwargs = example_inputs(arch, rows, device, dtype)
    with torch.no_grad():
        unet(*args, **kwargs)  # warm-up (cuDNN autotuning, allocator)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(repeats):
            unet(*args, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / repeats
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return seconds, peak


def default_run_evaluations():
    return count_evaluations(RunSettings(), x0_draws=DEFAULT_PROMPT_SAMPLES)  # the defaults, data-free


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["sd15", "sdxl"], choices=sorted(ARCHITECTURES))
    parser.add_argument("--rows", nargs="+", type=int, help="UNet rows per forward (default: 1 2 8 16 on CUDA, 1 on CPU)")
    parser.add_argument("--dtype", choices=DTYPES, help="default fp16 on CUDA, fp32 on CPU")
    parser.add_argument("--repeats", type=int, help="timed forwards per batch (default 10 on CUDA, 1 on CPU)")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    dtype = DTYPES[args.dtype] if args.dtype else (torch.float16 if cuda else torch.float32)
    rows_list = args.rows or ([1, 2, 8, 16] if cuda else [1])
    repeats = args.repeats or (10 if cuda else 1)
    if cuda:
        torch.backends.cudnn.benchmark = True
    rate = matmul_throughput(device, dtype, size=4096 if cuda else 1024, repeats=20 if cuda else 3)
    print(f"device: {device_name(device)}, torch {torch.__version__}, {str(dtype).replace('torch.', '')}, "
          f"matmul {rate / 1e12:.2f} TFLOP/s")
    evaluations = default_run_evaluations()
    for name in args.arch:
        arch = ARCHITECTURES[name]
        flops = meta_flops(build_unet(arch, "meta"), *example_inputs(arch, 1, "meta"))
        unet = build_unet(arch, device, dtype)
        params = sum(p.numel() for p in unet.parameters())
        print(f"\n{name}: {params / 1e6:,.1f} M parameters, latents {'x'.join(map(str, arch.latent_shape))}, "
              f"{flops / 1e12:.2f} TFLOP per row")
        print("rows | ms/forward | ms/row | peak GiB | share of matmul rate")
        per_row = None
        for rows in rows_list:
            try:
                seconds, peak = time_forward(unet, arch, rows, device, dtype, repeats)
            except torch.cuda.OutOfMemoryError:
                print(f"{rows:4d} | out of memory")
                torch.cuda.empty_cache()
                break
            per_row = seconds / rows
            peak_text = f"{peak / 2**30:8.2f}" if peak is not None else "       -"
            print(f"{rows:4d} | {seconds * 1e3:10.1f} | {per_row * 1e3:6.1f} | {peak_text} | "
                  f"{flops * rows / seconds / rate:.0%}")
        if per_row is not None:
            low, high = (count * 2 * per_row for count in (evaluations.low, evaluations.high))
            print(f"default `ays optimize` run ({evaluations.low:,} to {evaluations.high:,} evaluations, "
                  f"2 rows each with CFG): {format_seconds(low)} to {format_seconds(high)} on this device")
        del unet
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
