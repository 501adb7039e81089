"""What an `ays optimize` run will cost before it starts: denoiser evaluations, memory, time.

- Evaluations are counted from the search's own rules (search.py): exact for the fixed parts (the
  fast mode's path table, the early-stopping reference, drawing x0 from the model), a range for
  the iterations (fewest possible to --max-iterations per stage).
- Memory per UNet row is measured, never guessed: on the GPU by running the model once; for a
  model with no weights (`arch:sd15`, `arch:sdxl`, a diffusers folder of configs) by running the
  UNet on PyTorch's meta device and tracking the bytes of live activations (attention counted as
  a fused kernel, as PyTorch's SDPA and xformers run it).
- The batch (UNet rows per forward) is the most that fits the memory budget: the GPU's free
  memory, or 12 GiB where that is unknown, so an SDXL run fits a 12 GB card.
- Time: measured seconds per UNet row on the device when the model is loaded; for a meta model,
  FLOPs (counted on meta) over this device's measured matrix-multiply throughput, given as a
  range (UNets reach roughly 30-60% of it).
"""
import math
import time
import weakref
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .errors import AYSError

GIB = 1 << 30
DEFAULT_MEMORY_BUDGET = 12 * GIB
RESERVE_BYTES = 3 * GIB // 2       # CUDA context, cuDNN/cuBLAS workspaces, allocator slack
HOST_CHUNK_BYTES = 2 * GIB         # fast mode keeps grid x chunk x latent values on the host
UNET_EFFICIENCY = (0.3, 0.6)       # share of matmul throughput a UNet forward reaches
HOST_ROWS = 64                     # rows per forward where memory is not measured (CPU)
MAX_ROWS = 1024                    # beyond this a bigger batch gains nothing


# ---------------------------------------------------------------- evaluation counts

def stage_iteration_bounds(stage, early_stop, patience, max_iterations):
    """Fewest and most iterations of one search stage (search.py's stopping rules)."""
    from .search import MIN_WIDTH, START_WIDTH

    fewest, width = 0, START_WIDTH
    while not width < MIN_WIDTH:  # every pass that moves nothing halves the width
        width /= 2
        fewest += 1
    if stage == 0 and early_stop:
        fewest = min(fewest, patience)
    return min(fewest, max_iterations), max_iterations


@dataclass
class EvaluationCount:
    """Denoiser evaluations (one sample through D) of a run: fixed parts and a range in total."""

    fixed: dict = field(default_factory=dict)
    low: int = 0
    high: int = 0


def count_evaluations(settings, *, plain_data=False, x0_draws=0):
    """Denoiser evaluations of a run with `settings` (settings.RunSettings), as search.py makes
    them. plain_data: the x0 come without conditioning, so early stopping compares samples with x0
    draws instead of a many-step reference run. x0_draws: latents drawn from the model first
    (data-free), each a data_steps-step sampler run."""
    from .samplers import sampler_nfe
    from .search import CANDIDATES
    from .starts import START_BASELINES
    from .validation import VALIDATION_SAMPLES

    steps, mode, samples, refine, solver = settings.steps, settings.mode, settings.samples, settings.refine, settings.solver
    early_stop = settings.early_stop
    validation_samples = settings.validation_samples
    if validation_samples is None:
        validation_samples = VALIDATION_SAMPLES["data" if plain_data else "reference"]
    count = EvaluationCount()
    if mode == "fast":
        count.fixed["path table"] = settings.grid_size * samples
    if x0_draws:
        count.fixed["x0 drawn from the model"] = x0_draws * settings.data_steps
    if settings.solver_stage:
        return _count_solver_stage(count, settings, bool(x0_draws))
    if early_stop and not plain_data:
        count.fixed["early-stopping reference"] = validation_samples * sampler_nfe(solver, settings.reference_steps)
    fixed = sum(count.fixed.values())
    count.low = count.high = fixed
    for stage in range(refine + 1):
        stage_steps = steps * 2 ** stage
        movable = steps - 1 if stage == 0 else stage_steps // 2
        per_iteration = 0
        if mode == "paper":  # 11 windows per movable point, 2 calls per sample, + the full-schedule record
            per_iteration += 2 * samples * (CANDIDATES * movable + 1)
        if stage == 0 and early_stop:
            per_iteration += validation_samples * sampler_nfe(solver, steps)
        fewest, most = stage_iteration_bounds(stage, early_stop, settings.patience, settings.max_iterations)
        # early stopping runs stage 0 once from the paper's start and, with start "all", once from
        # each hand-made one
        descents = 1 + len(START_BASELINES) if stage == 0 and early_stop and settings.start == "all" else 1
        count.low += per_iteration * (fewest + 1) * descents  # +1: the record at each descent's start
        count.high += per_iteration * (most + 1) * descents
    return count


def _count_solver_stage(count, settings, data_free):
    """Fast mode with early stopping: the KLUB descents are free (the path table); then the
    teacher (none for deterministic solvers on data-free draws) and the race and refinement."""
    from . import data_figure, refine
    from .samplers import sampler_nfe
    from .starts import START_BASELINES

    teacher = refine.teacher_evaluations(settings.teacher_samples, settings.reference_steps, reused=data_free)
    if teacher:
        count.fixed["teacher"] = teacher
    count.fixed["GITS-style candidate"] = refine.gits_evaluations(settings.teacher_samples)
    descents = 1 + len(START_BASELINES) if settings.start == "all" else 1
    candidates = refine.candidate_count(descents)
    fewest, most = refine.planned_evaluations(refine.judged_solver(settings.solver), settings.tuned_steps(),
                                              candidates, settings.teacher_samples)
    if not data_free:  # x0 are data: candidates are judged and searched on them too (ays_core/data_figure.py)
        gate = data_figure.gate_evaluations(sampler_nfe(refine.TEACHER_SOLVER, settings.reference_steps),
                                            settings.solver, settings.data_search_passes)
        if gate:
            count.fixed["converged samples for the data check"] = gate
        data_fewest, data_most = data_figure.evaluations(settings.solver, settings.tuned_steps(), candidates,
                                                         refine.data_searches(settings.data_search_passes))
        fewest, most = fewest + data_fewest, most + data_most
    fixed = sum(count.fixed.values())
    count.low, count.high = fixed + fewest, fixed + most
    return count


# ---------------------------------------------------------------- measuring a UNet on the meta device

class _LiveBytes(TorchDispatchMode):
    """Tracks the bytes of tensors created inside it that are still referenced; keeps the peak."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.utils._pytree import tree_flatten

        out = func(*args, **(kwargs or {}))
        if func.is_view:
            return out
        inputs = {id(a) for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)}
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and id(tensor) not in inputs:
                size = tensor.untyped_storage().nbytes()
                self.live += size
                self.peak = max(self.peak, self.live)
                weakref.finalize(tensor, self._free, size)
        return out

    def _free(self, size):
        self.live -= size


def _fused_attention(query, key, value, *args, **kwargs):
    """Meta stand-in for scaled_dot_product_attention: only the output, as fused kernels allocate."""
    return query.new_empty(*query.shape[:-1], value.shape[-1])


def meta_peak_bytes(module, args, kwargs):
    """Peak live activation bytes of one forward on meta tensors, attention fused."""
    import torch.nn.functional as F

    original = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = _fused_attention
    try:
        tracker = _LiveBytes()
        with torch.no_grad(), tracker:
            module(*args, **kwargs)
    finally:
        F.scaled_dot_product_attention = original
    return tracker.peak


def meta_flops(module, args, kwargs):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*args, **kwargs)
    return counter.get_total_flops()


@dataclass
class RowCost:
    """What one UNet row (one latent through the network) costs."""

    weight_bytes: int
    activation_bytes: int           # per row, slope between batches of 1 and 2 rows
    base_bytes: int = 0             # activations that do not grow with the batch
    seconds: float = None           # measured on the device, if the model is loaded
    flops: float = None             # counted on meta
    parameters: int = 0


def unet_row_cost_on_meta(unet, make_inputs, dtype):
    """RowCost of a UNet built on the meta device; make_inputs(rows) -> (args, kwargs) on meta."""
    peaks = [meta_peak_bytes(unet, *make_inputs(rows)) for rows in (1, 2)]
    per_row = max(peaks[1] - peaks[0], 1)
    parameters = sum(p.numel() for p in unet.parameters())
    element = torch.tensor([], dtype=dtype).element_size()
    scale = element / next(unet.parameters()).element_size()  # built in fp32 on meta, run in `dtype`
    return RowCost(weight_bytes=parameters * element, activation_bytes=int(per_row * scale),
                   base_bytes=int(max(peaks[0] - per_row, 0) * scale), flops=meta_flops(unet, *make_inputs(1)),
                   parameters=parameters)


def _probe(denoiser, data_shape, device, samples):
    """One denoiser call on `samples` random latents at a mid-range sigma."""
    sigma = float(math.sqrt(denoiser.sigma_min * denoiser.sigma_max))
    x = torch.randn(samples, *data_shape, device=device)
    return denoiser(x, torch.full((samples,), sigma, device=device))


def _synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measured_row_cost(denoiser, data_shape, device, rows_per_sample):
    """RowCost of a loaded model, by running it: weights counted, and on CUDA the peak memory of
    one and two samples (the difference is what a sample adds). Time: see `measure_seconds`."""
    model = getattr(denoiser, "model", None)
    parameters = list(model.parameters()) if hasattr(model, "parameters") else []
    cost = RowCost(weight_bytes=sum(p.numel() * p.element_size() for p in parameters), activation_bytes=0,
                   parameters=sum(p.numel() for p in parameters))
    if torch.device(device).type != "cuda":
        return cost  # host memory: no budget to fit, batches stay moderate
    peaks = []
    for samples in (1, 2):
        _synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        _probe(denoiser, data_shape, device, samples)
        _synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - before)
    cost.activation_bytes = max((peaks[1] - peaks[0]) // rows_per_sample, 1)
    cost.base_bytes = max(peaks[0] - cost.activation_bytes * rows_per_sample, 0)
    return cost


def measure_seconds(denoiser, data_shape, device, samples, rows_per_sample, repeats=2):
    """Seconds per UNet row at a batch of `samples` (after one warm-up call)."""
    _probe(denoiser, data_shape, device, samples)
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        _probe(denoiser, data_shape, device, samples)
    _synchronize(device)
    return (time.perf_counter() - start) / (repeats * samples * rows_per_sample)


# ---------------------------------------------------------------- batch, chunk and time

def memory_budget(device, limit_bytes=None, loaded_bytes=0):
    """Bytes the run may use on `device`, weights included: the given limit, else the GPU's free
    memory plus the `loaded_bytes` of weights already on it (what else the process holds, say the
    WebUI's other models, stays out), else DEFAULT_MEMORY_BUDGET."""
    if limit_bytes is not None:
        return int(limit_bytes)
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + loaded_bytes)
    return DEFAULT_MEMORY_BUDGET


def rows_that_fit(cost, budget_bytes):
    """UNet rows per forward that fit the budget next to the weights and the reserve (>= 1 or AYSError)."""
    room = budget_bytes - cost.weight_bytes - RESERVE_BYTES - cost.base_bytes
    rows = min(int(room // max(cost.activation_bytes, 1)), MAX_ROWS)
    if rows < 1:
        raise AYSError(f"the model does not fit: {format_bytes(cost.weight_bytes)} of weights + "
                       f"{format_bytes(cost.activation_bytes)} per UNet row + {format_bytes(RESERVE_BYTES)} reserve "
                       f"exceed the {format_bytes(budget_bytes)} memory budget (load the model in fp16, ?dtype=fp16 in its spec, or allow more memory)")
    return rows


def host_chunk_size(grid_size, latent_values, samples):
    """Samples per chunk of the fast mode's path table so its host-side tensors (float32 paths,
    float64 denoiser outputs: 12 bytes per value) stay under HOST_CHUNK_BYTES."""
    fits = HOST_CHUNK_BYTES // max(grid_size * latent_values * 12, 1)
    return int(max(1, min(256, fits, samples)))


def matmul_throughput(device, dtype, size=1024, repeats=3):
    """Measured FLOP/s of a square matmul on `device` (a few hundred ms at most)."""
    device = torch.device(device)
    if device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32  # CPU half matmuls are emulated; the run would not use them
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def seconds_per_row(cost, device, dtype):
    """(fastest, slowest) seconds per UNet row: measured when known, else FLOPs over throughput."""
    if cost.seconds is not None:
        return cost.seconds, cost.seconds
    rate = matmul_throughput(device, dtype)
    return cost.flops / (rate * UNET_EFFICIENCY[1]), cost.flops / (rate * UNET_EFFICIENCY[0])


def format_bytes(count):
    return f"{count / GIB:.2f} GiB" if count >= GIB / 10 else f"{count / (1 << 20):.1f} MiB"


def format_seconds(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class RunPlan:
    evaluations: EvaluationCount
    rows_per_sample: int
    cost: RowCost
    budget_bytes: int
    rows_per_batch: int
    seconds: tuple  # (low, high) for the whole run
    device: str

    def report(self):
        """The lines the CLI prints before a run (and alone for --dry-run)."""
        ev, cost = self.evaluations, self.cost
        lines = ["denoiser evaluations (one sample through the model):"]
        lines += [f"  {name}: {value:,}" for name, value in ev.fixed.items()]
        lines.append(f"  total: {ev.low:,} to {ev.high:,} (fewest to most iterations the stopping rules allow)")
        lines.append(f"UNet rows per evaluation: {self.rows_per_sample}"
                     + (" (classifier-free guidance: conditional + unconditional)" if self.rows_per_sample == 2 else ""))
        if cost.parameters:
            lines.append(f"model: {cost.parameters / 1e6:,.1f} M parameters, {format_bytes(cost.weight_bytes)} of weights")
        if cost.activation_bytes > 1:
            peak = cost.weight_bytes + RESERVE_BYTES + cost.base_bytes + self.rows_per_batch * cost.activation_bytes
            lines.append(f"memory: {format_bytes(cost.activation_bytes)} of activations per UNet row; batches of "
                         f"{self.rows_per_batch} rows fit the {format_bytes(self.budget_bytes)} budget "
                         f"(peak about {format_bytes(peak)})")
        if cost.flops:
            lines.append(f"compute: {cost.flops / 1e12:.2f} TFLOP per UNet row")
        low, high = self.seconds
        how = "measured" if cost.seconds is not None else "estimated from FLOPs and this device's matmul speed"
        lines.append(f"time on {self.device} ({how}): {format_seconds(low)} to {format_seconds(high)}")
        return "\n".join(lines)


def fit_rows(denoiser, device, budget_bytes=None):
    """(UNet rows per forward, RowCost, budget) for a loaded latent model on `device`: the most
    rows that fit the memory budget beside the model (HOST_ROWS off the GPU)."""
    cost = measured_row_cost(denoiser, denoiser.data_shape, device, denoiser.rows_per_sample)
    budget = memory_budget(device, budget_bytes, loaded_bytes=cost.weight_bytes)
    rows = rows_that_fit(cost, budget) if cost.activation_bytes > 1 else HOST_ROWS
    return rows, cost, budget


def plan_run(evaluations, cost, rows_per_sample, device, dtype, budget_bytes=None):
    budget = memory_budget(device, budget_bytes)
    rows = rows_that_fit(cost, budget) if cost.activation_bytes > 1 else HOST_ROWS
    fast, slow = seconds_per_row(cost, device, dtype)
    seconds = (evaluations.low * rows_per_sample * fast, evaluations.high * rows_per_sample * slow)
    return RunPlan(evaluations, rows_per_sample, cost, budget, rows, seconds, str(device))
