"""torch.distributed helpers: the optimizer's samples are split over ranks in fixed chunks.

Each chunk's random numbers depend only on (seed, stream, chunk index), and per-chunk results are
all-reduced into per-chunk slots before being summed in chunk order, so K processes produce
bit-identical sums to one process with the same total samples and seed.
"""
import os
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist


@contextmanager
def process_group():
    """Join the process group torchrun describes (gloo on CPU, nccl on GPUs) for the block; yield
    this process's device. The group is destroyed on the way out, while Python is fully alive:
    gloo's worker threads drop their last reference to a finished collective's tensors whenever
    they are next scheduled, and one that does so after the interpreter began finalizing is killed
    inside a C++ destructor, aborting the process ("terminate called without an active exception")
    after the work is done. Destroying the group joins those threads first."""
    use_cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    joined = int(os.environ.get("WORLD_SIZE", 1)) > 1 and not dist.is_initialized()
    if joined:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    try:
        if use_cuda:
            torch.cuda.set_device(local_rank)
        yield torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    finally:
        if joined:
            dist.destroy_process_group()


def rank_and_size():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main():
    return rank_and_size()[0] == 0


def chunked_sum(n_chunks, chunk_fn, shape, progress=None):
    """Sum of chunk_fn(i) (float64 arrays of `shape`) over i < n_chunks, chunks shared out over ranks.
    `progress`: a description to show a progress bar with (on the main rank), or None."""
    from tqdm import tqdm

    rank, size = rank_and_size()
    slots = torch.zeros((n_chunks,) + tuple(shape), dtype=torch.float64)
    mine = range(rank, n_chunks, size)
    for i in tqdm(mine, desc=progress, unit="chunk", disable=progress is None or rank != 0):
        slots[i] = torch.as_tensor(chunk_fn(i), dtype=torch.float64)
    if size > 1:
        on_gpu = dist.get_backend() == "nccl"
        buffer = slots.cuda() if on_gpu else slots
        dist.all_reduce(buffer)
        slots = buffer.cpu()
    return np.sum(slots.numpy(), axis=0)


def broadcast_object(obj):
    """Rank 0's obj on every rank (used so that all ranks resume from the same state)."""
    rank, size = rank_and_size()
    if size == 1:
        return obj
    box = [obj if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier():
    if rank_and_size()[1] > 1:
        dist.barrier()


def all_sum(value):
    """An integer summed over ranks (evaluation counts)."""
    if rank_and_size()[1] == 1:
        return value
    box = torch.tensor([value], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        box = box.cuda()
    dist.all_reduce(box)
    return int(box.item())
