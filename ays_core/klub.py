"""KLUB estimators (notes section 1-2).

KLUB(t_0 < ... < t_n) = sum_i  int_{t_{i-1}}^{t_i} t^-3 E||D(x_t, t) - D(x_{t_i}, t_i)||^2 dt,
x_t = x0 + t eps, x_{t_i} = x_t + sqrt(t_i^2 - t^2) eps'.

Two estimators with one interface, `estimator(schedules) -> (values, std_errors)` for a batch of
ascending schedules (rows), both using common random numbers (every row sees the same x0 and noise):

- `ImportanceKLUB` (the paper's Algorithm 2): per sample one t drawn from the Gaussian-data
  integrand, two denoiser calls per sample and per row.
- `PathKLUB` (fast mode): the denoiser is evaluated once along whole noising paths on a fixed
  log-sigma grid, giving E||D_j - D_k||^2 for every grid pair; the KLUB of any schedule is then a
  quadrature over that table, with no further denoiser calls. Each path has the exact joint law of
  (x_t, x_u) for every pair t < u, so the table is unbiased for any denoiser, not only exact ones.
"""
import numpy as np
import torch

from .distributed import chunked_sum

PROPOSAL_C = 0.5            # the paper's Gaussian-data width for the t proposal
PROPOSAL_CELLS = 32         # log-t cells per interval of the proposal
QUADRATURE_NODES = 24       # Gauss-Legendre nodes per interval in PathKLUB
STREAM_KLUB, STREAM_PATHS = 1, 2      # independent random streams per chunk


def chunk_generator(seed, stream, index):
    """A torch.Generator determined by (seed, stream, chunk index) only."""
    state = np.random.SeedSequence([int(seed), int(stream), int(index)]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def x0_sampler(source):
    """Normalise an x0 source: a tensor of data (rows drawn with replacement) or `f(n, generator)`."""
    if callable(source):
        return source
    data = torch.as_tensor(source)

    def sample(n, generator):
        return data[torch.randint(len(data), (n,), generator=generator)]
    return sample


class _ChunkedEstimator:
    """Samples split into fixed chunks; counts denoiser evaluations (one per sample per call)."""

    def __init__(self, denoiser, x0_source, samples, seed, chunk_size, device, max_batch):
        self.denoiser, self.sample_x0 = denoiser, x0_sampler(x0_source)
        self.samples, self.seed, self.chunk_size = int(samples), int(seed), int(chunk_size)
        self.device, self.max_batch = device, int(max_batch)
        self.evaluations = 0
        self._cond = {}  # per-sample conditioning of the chunk being evaluated (see _draw)

    @property
    def n_chunks(self):
        return -(-self.samples // self.chunk_size)

    def _chunk_count(self, index):
        return min(self.chunk_size, self.samples - index * self.chunk_size)

    def _draw(self, stream, index):
        """x0 and a generator positioned after it, for one chunk. A source may also return
        (x0, cond): per-sample conditioning, a dict of tensors with one row per sample (e.g. the
        prompt index of each latent), handed to the denoiser with its rows."""
        gen = chunk_generator(self.seed, stream, index)
        drawn = self.sample_x0(self._chunk_count(index), gen)
        x0, self._cond = drawn if isinstance(drawn, tuple) else (drawn, {})
        return torch.as_tensor(x0).float(), gen

    def _rows_cond(self, start, count):
        """Conditioning for denoiser rows start..start+count. Both estimators lay rows out
        sample-innermost, so row r belongs to sample r mod (samples in the chunk)."""
        if not self._cond:
            return {}
        rows = torch.arange(start, start + count) % len(next(iter(self._cond.values())))
        return {key: value[rows] for key, value in self._cond.items()}

    def _denoise(self, x, sigma):
        """D(x, sigma) in sub-batches of max_batch rows, on the estimator's device, float64 out."""
        outs = []
        for start in range(0, len(x), self.max_batch):
            xb = x[start:start + self.max_batch].to(self.device)
            sb = sigma[start:start + self.max_batch].to(self.device, torch.float32)
            with torch.no_grad():
                outs.append(self.denoiser(xb, sb, **self._rows_cond(start, len(xb))).double().cpu())
        self.evaluations += len(x)
        return torch.cat(outs).reshape(len(x), -1)


def gaussian_shape(t, u, c=PROPOSAL_C):
    """E||D_t - D_u||^2 of Gaussian data N(0, c^2), up to a factor: 1/(t^2+c^2) - 1/(u^2+c^2)."""
    return 1.0 / (t ** 2 + c ** 2) - 1.0 / (u ** 2 + c ** 2)


def _proposal(schedules, c=PROPOSAL_C, cells=PROPOSAL_CELLS):
    """Piecewise-constant (in log t) proposal over each ascending schedule row.

    Cell masses follow t^-2 (1/(t^2+c^2) - 1/(u^2+c^2)) (the notes' pi in log t), u the upper end of
    the cell's interval. Returns left log-t, log width, upper end u and normalised mass per cell.
    """
    log_s = np.log(schedules)                                        # [M, n+1]
    frac = np.arange(cells + 1) / cells
    edges = log_s[:, :-1, None] + (log_s[:, 1:] - log_s[:, :-1])[:, :, None] * frac  # [M, n, cells+1]
    left, width = edges[..., :-1], np.diff(edges, axis=-1)
    t_mid = np.exp(left + width / 2)
    upper = np.broadcast_to(schedules[:, 1:, None], t_mid.shape)
    density = t_mid ** -2 * gaussian_shape(t_mid, upper, c)
    mass = density * width
    m = len(schedules)
    mass = mass.reshape(m, -1)
    return left.reshape(m, -1), width.reshape(m, -1), upper.reshape(m, -1), mass / mass.sum(1, keepdims=True)


def _draw_times(proposal, uniforms):
    """Inverse-CDF draw of t per (row, sample); returns t, its interval's upper end and q(log t)."""
    left, width, upper, mass = proposal
    cdf = np.cumsum(mass, axis=1)
    cdf[:, -1] = 1.0
    cell = np.stack([np.searchsorted(row, uniforms, side="right") for row in cdf])
    cell = np.minimum(cell, mass.shape[1] - 1)
    rows = np.arange(len(mass))[:, None]
    below = cdf[rows, cell] - mass[rows, cell]
    within = np.clip((uniforms[None, :] - below) / mass[rows, cell], 0.0, 1.0)
    log_t = left[rows, cell] + within * width[rows, cell]
    return np.exp(log_t), upper[rows, cell], mass[rows, cell] / width[rows, cell]


class ImportanceKLUB(_ChunkedEstimator):
    """The paper's Monte Carlo KLUB estimator with importance sampling in t (notes section 2)."""

    def __call__(self, schedules):
        schedules = np.atleast_2d(np.asarray(schedules, dtype=np.float64))
        proposal = _proposal(schedules)
        m = len(schedules)

        def chunk(index):
            x0, gen = self._draw(STREAM_KLUB, index)
            b = len(x0)
            eps = torch.randn(x0.shape, generator=gen)
            eps_up = torch.randn(x0.shape, generator=gen)
            uniforms = torch.rand(b, generator=gen, dtype=torch.float64).numpy()
            t, up, q = _draw_times(proposal, uniforms)                    # [M, B] each
            t_col = torch.from_numpy(t).reshape(m, b, *[1] * (x0.ndim - 1))
            extra = torch.from_numpy(np.sqrt(up ** 2 - t ** 2)).reshape(t_col.shape)
            x_t = (x0 + t_col * eps).float()
            x_up = (x_t + extra * eps_up).float()
            x = torch.cat([x_t.reshape(m * b, *x0.shape[1:]), x_up.reshape(m * b, *x0.shape[1:])])
            sig = torch.cat([torch.from_numpy(t).reshape(-1), torch.from_numpy(up).reshape(-1)])
            d = self._denoise(x, sig)
            sq = ((d[:m * b] - d[m * b:]) ** 2).sum(1).reshape(m, b).numpy()
            values = sq / t ** 2 / q
            return np.stack([values.sum(1), (values ** 2).sum(1)])

        total, total_sq = chunked_sum(self.n_chunks, chunk, (2, m))
        mean = total / self.samples
        var = np.maximum(total_sq / self.samples - mean ** 2, 0.0) / max(self.samples - 1, 1)
        return mean, np.sqrt(var)


class PathKLUB(_ChunkedEstimator):
    """Fast mode: a table of E||D(x_j, g_j) - D(x_k, g_k)||^2 over a log grid, then quadrature."""

    def __init__(self, denoiser, x0_source, samples, seed, chunk_size, device, max_batch,
                 sigma_min, sigma_max, grid_size=96, table=None, progress=False):
        super().__init__(denoiser, x0_source, samples, seed, chunk_size, device, max_batch)
        self.grid = np.geomspace(sigma_min, sigma_max, int(grid_size))
        self.table = self._build_table(progress) if table is None else np.asarray(table, dtype=np.float64)
        self._ratio = self._shape_ratio()

    def _build_table(self, progress=False):
        g = len(self.grid)
        grid = torch.from_numpy(self.grid)
        steps = torch.sqrt(torch.diff(grid ** 2, prepend=torch.zeros(1)))  # path increments

        def chunk(index):
            x0, gen = self._draw(STREAM_PATHS, index)
            b = len(x0)
            noise = torch.randn((g,) + tuple(x0.shape), generator=gen, dtype=torch.float64)
            increments = steps.reshape((g,) + (1,) * x0.ndim) * noise
            x = (x0.double() + torch.cumsum(increments, dim=0)).float()
            d = self._denoise(x.reshape(g * b, *x0.shape[1:]), grid.repeat_interleave(b))
            d = d.reshape(g, b, -1).transpose(0, 1)                          # [B, G, dim]
            norms = (d ** 2).sum(-1)
            sq = norms[:, :, None] + norms[:, None, :] - 2 * torch.bmm(d, d.transpose(1, 2))
            return sq.clamp_min(0).sum(0).numpy()

        what = f"path table ({self.samples} paths x {g} noise levels)" if progress else None
        table = chunked_sum(self.n_chunks, chunk, (g, g), progress=what) / self.samples
        np.fill_diagonal(table, 0.0)
        return table

    def _shape_ratio(self):
        """table / h on the grid; the 0/0 diagonal takes its neighbour's value."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = self.table / gaussian_shape(self.grid[:, None], self.grid[None, :])
        idx = np.arange(len(self.grid))
        ratio[idx, idx] = ratio[np.maximum(idx - 1, 0), np.maximum(idx, 1)]
        return ratio

    def pair_mean(self, t, u):
        """Interpolated E||D_t - D_u||^2 for t <= u.

        What is interpolated is the ratio to the Gaussian-data shape h(t, u) of the proposal (exact
        for Gaussian data, smooth otherwise), linearly on triangles of (log u, log u - log t)."""
        log_g = np.log(self.grid)
        h = log_g[1] - log_g[0]
        last = len(self.grid) - 2
        pu = (np.log(u) - log_g[0]) / h
        pd = np.maximum(np.log(u) - np.log(t), 0.0) / h
        k = np.clip(np.floor(pu), 0, last).astype(int)
        m = np.clip(np.floor(pd), 0, last).astype(int)
        p, q = np.clip(pu - k, 0, 1), np.clip(pd - m, 0, 1)

        def at(ku, md):  # ratio for upper index ku and gap md (clamped to the valid triangle)
            return self._ratio[np.maximum(ku - md, 0), ku]

        lower = (1 - p) * at(k, m) + (p - q) * at(k + 1, m) + q * at(k + 1, m + 1)
        upper = (1 - q) * at(k, m) + (q - p) * at(k, m + 1) + p * at(k + 1, m + 1)
        return np.where(q <= p, lower, upper) * gaussian_shape(t, u)

    def __call__(self, schedules):
        schedules = np.atleast_2d(np.asarray(schedules, dtype=np.float64))
        nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
        lo, hi = np.log(schedules[:, :-1]), np.log(schedules[:, 1:])      # [M, n]
        log_t = (lo + hi)[..., None] / 2 + (hi - lo)[..., None] / 2 * nodes
        t = np.exp(log_t)
        u = np.broadcast_to(schedules[:, 1:, None], t.shape)
        integrand = t ** -2 * self.pair_mean(t, u)                          # per unit log t
        values = ((hi - lo) / 2 * (integrand * weights).sum(-1)).sum(1)
        return values, np.full(len(values), np.nan)
