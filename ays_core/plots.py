"""Pictures of schedules: sigma against step on a log axis, drawn with Pillow.

Pillow rather than matplotlib because `ays plot` is a light command: importing matplotlib alone
takes several times longer than the whole command may (see benchmarks/bench_cli_startup.py).
The layout is computed first (`layout`), as boxes that tests can check, then painted at twice the
size and scaled down, which smooths the lines."""
import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .baselines import karras
from .fileio import atomic_write
from .interp import resample
from .registry import RegistrySet

SIGMA_AXIS = "sigma: noise std. dev. in the model's data units (log scale)"
STEP_AXIS = "step (the final step, to sigma = 0, is not drawn)"
# matplotlib's tab10, then the light shades of tab20 (strong colours first); bench's charts use them too
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
           "#dbdb8d", "#9edae5")
MARKERS = ("circle", "square", "diamond")  # a second and third round of the colours changes the marker
SCALE = 2  # painted at twice the size, then scaled down: smooth lines without an anti-aliasing library
PLOT_WIDTH, PLOT_HEIGHT = 560, 340
PAD, GAP, TEXT_SIZE, TITLE_SIZE = 12, 8, 12, 14
SWATCH = 28  # length of a legend entry's line sample


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def overlaps(self, other):
        return self.left < other.right and other.left < self.right and self.top < other.bottom and other.top < self.bottom

    def inside(self, other):
        return other.left <= self.left and self.right <= other.right and other.top <= self.top and self.bottom <= other.bottom


@dataclass(frozen=True)
class Layout:
    size: tuple        # (width, height) of the picture
    title: Box
    axes: Box
    xlabel: Box
    ylabel: Box
    legend: Box
    last_step: int     # the largest step index any curve has
    x_ticks: tuple     # step indices that get a label
    y_ticks: tuple     # sigmas that get a label (a log axis)
    log_range: tuple   # (log10 low, log10 high) the axes span
    row_height: float  # one line of the legend


@functools.lru_cache(maxsize=None)
def _font(size):
    """(font, upscale): a TrueType font at `size` on the double-size canvas, or, on Pillow < 10.1
    (AUTOMATIC1111 pins 9.5), the built-in bitmap font, whose text is enlarged to the canvas."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size * SCALE), 1
    except TypeError:
        return ImageFont.load_default(), SCALE


def text_mask(text, size):
    """A greyscale mask of `text` at double size, cropped to the ink."""
    from PIL import Image, ImageDraw

    font, upscale = _font(size)
    if upscale > 1:  # the bitmap font knows Latin-1 only
        text = text.encode("latin-1", "replace").decode("latin-1")
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    mask = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font)
    return mask.resize((mask.width * upscale, mask.height * upscale), Image.NEAREST) if upscale > 1 else mask


def _text_size(text, size):
    mask = text_mask(text, size)
    return mask.width / SCALE, mask.height / SCALE


def _positive(sigmas):
    sigmas = np.asarray(sigmas, dtype=np.float64)
    return sigmas[sigmas > 0]  # the final 0 has no logarithm


def log_ticks(low, high):
    """Sigmas worth a label between low and high: decades, and 2 and 5 times them when fewer than
    three decades fall inside."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    decades = [10.0 ** k for k in range(first, last + 1)]
    ticks = [d for d in decades if low <= d <= high]
    if len(ticks) < 3:
        ticks = [d * m for d in decades for m in (1, 2, 5) if low <= d * m <= high]
    return tuple(ticks) or (float(f"{math.sqrt(low * high):.3g}"),)  # a narrow range: one label mid-way


def step_ticks(count):
    """Step indices worth a label: every one up to 12 steps, then a round stride."""
    stride = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if count <= 12 * s)
    return tuple(range(0, count, stride))


def layout(schedules, title):
    """Where everything goes: axes in the middle, the legend to their right (never over a curve),
    tick labels and axis labels outside the axes, the title on top."""
    curves = [_positive(s) for s in schedules.values()]
    low, high = min(c.min() for c in curves), max(c.max() for c in curves)
    span = max(math.log10(high) - math.log10(low), 1e-3)
    log_range = (math.log10(low) - 0.05 * span, math.log10(high) + 0.05 * span)
    y_ticks = log_ticks(10 ** log_range[0], 10 ** log_range[1])
    steps = max(len(c) for c in curves)

    text_height = _text_size("0123456789", TEXT_SIZE)[1]
    y_label_length, y_label_height = _text_size(SIGMA_AXIS, TEXT_SIZE - 2)  # drawn turned by 90 degrees
    tick_width = max(_text_size(f"{t:g}", TEXT_SIZE)[0] for t in y_ticks)
    title_width, title_height = _text_size(title, TITLE_SIZE)
    legend_width = SWATCH + GAP + max(_text_size(label, TEXT_SIZE)[0] for label in schedules) + 2 * GAP
    row_height = text_height + GAP
    legend_height = len(schedules) * row_height + GAP

    left = PAD + y_label_height + GAP + tick_width + GAP
    top = PAD + title_height + 2 * GAP
    plot_height = max(PLOT_HEIGHT, y_label_length + GAP, legend_height)
    axes = Box(left, top, left + PLOT_WIDTH, top + plot_height)
    legend = Box(axes.right + 2 * GAP, axes.top, axes.right + 2 * GAP + legend_width, axes.top + legend_height)
    xlabel_size = _text_size(STEP_AXIS, TEXT_SIZE)
    xlabel_top = axes.bottom + GAP + text_height + GAP
    xlabel = Box((axes.left + axes.right - xlabel_size[0]) / 2, xlabel_top,
                 (axes.left + axes.right + xlabel_size[0]) / 2, xlabel_top + xlabel_size[1])
    centre_y = (axes.top + axes.bottom) / 2
    ylabel = Box(PAD, centre_y - y_label_length / 2, PAD + y_label_height, centre_y + y_label_length / 2)
    width = max(legend.right, PAD + title_width) + PAD
    title_box = Box((width - title_width) / 2, PAD, (width + title_width) / 2, PAD + title_height)
    return Layout((math.ceil(width), math.ceil(xlabel.bottom + PAD)), title_box, axes, xlabel, ylabel, legend,
                  steps - 1, step_ticks(steps), y_ticks, log_range, row_height)


def _painter(plan):
    """Maps (step, sigma) to pixels of the double-size canvas."""
    axes, (lo, hi), last = plan.axes, plan.log_range, max(plan.last_step, 1)

    def point(step, sigma):  # 10 px of air inside each side of the axes, as on the log axis
        x = axes.left + 10 + (axes.right - axes.left - 20) * step / last
        y = axes.bottom - (axes.bottom - axes.top) * (math.log10(sigma) - lo) / (hi - lo)
        return x * SCALE, y * SCALE
    return point


def _marker(draw, shape, x, y, colour):
    r = 3.5 * SCALE
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif shape == "square":
        draw.rectangle((x - r, y - r, x + r, y + r), fill=colour)
    else:
        draw.polygon(((x, y - r * 1.3), (x + r * 1.3, y), (x, y + r * 1.3), (x - r * 1.3, y)), fill=colour)


def _put_text(image, text, size, x, y, anchor, turned=False):
    """Draw `text` in black with its ink box placed by `anchor` at (x, y) on the double-size canvas:
    'l'/'m'/'r' horizontally, then 't'/'m' vertically, as in Pillow's anchors (placed here, because
    Pillow < 10.1 ignores anchors for its bitmap font)."""
    mask = text_mask(text, size)
    if turned:
        mask = mask.rotate(90, expand=True)
    left = x - {"l": 0, "m": mask.width / 2, "r": mask.width}[anchor[0]]
    top = y - {"t": 0, "m": mask.height / 2}[anchor[1]]
    image.paste("black", (round(left), round(top)), mask)


def render(schedules, title):
    """PNG bytes of {label: sampling sigmas} (see `layout`)."""
    from PIL import Image, ImageDraw

    plan = layout(schedules, title)
    width, height = plan.size
    image = Image.new("RGB", (width * SCALE, height * SCALE), "white")
    draw = ImageDraw.Draw(image)
    box = lambda b: tuple(v * SCALE for v in (b.left, b.top, b.right, b.bottom))  # noqa: E731
    point = _painter(plan)
    axes, grid = plan.axes, "#e6e6e6"
    for sigma in plan.y_ticks:
        _, y = point(0, sigma)
        draw.line((axes.left * SCALE, y, axes.right * SCALE, y), fill=grid, width=SCALE)
        _put_text(image, f"{sigma:g}", TEXT_SIZE, (axes.left - GAP) * SCALE, y, "rm")
    for step in plan.x_ticks:
        x, _ = point(step, 10 ** plan.log_range[0])
        draw.line((x, axes.top * SCALE, x, axes.bottom * SCALE), fill=grid, width=SCALE)
        _put_text(image, str(step), TEXT_SIZE, x, (axes.bottom + GAP) * SCALE, "mt")
    draw.rectangle(box(axes), outline="black", width=SCALE)
    swatch_left = (plan.legend.left + GAP) * SCALE
    for i, (label, sigmas) in enumerate(schedules.items()):
        colour, shape = COLOURS[i % len(COLOURS)], MARKERS[(i // len(COLOURS)) % len(MARKERS)]
        points = [point(step, sigma) for step, sigma in enumerate(_positive(sigmas))]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2 * SCALE, joint="curve")
        for x, y in points:
            _marker(draw, shape, x, y, colour)
        mid = (plan.legend.top + GAP + i * plan.row_height + (plan.row_height - GAP) / 2) * SCALE
        draw.line((swatch_left, mid, swatch_left + SWATCH * SCALE, mid), fill=colour, width=2 * SCALE)
        _marker(draw, shape, swatch_left + SWATCH / 2 * SCALE, mid, colour)
        _put_text(image, label, TEXT_SIZE, swatch_left + (SWATCH + GAP) * SCALE, mid, "lm")
    draw.rectangle(box(plan.legend), outline="#b0b0b0", width=SCALE)
    _put_text(image, title, TITLE_SIZE, (plan.title.left + plan.title.right) / 2 * SCALE, plan.title.top * SCALE, "mt")
    _put_text(image, STEP_AXIS, TEXT_SIZE, (plan.xlabel.left + plan.xlabel.right) / 2 * SCALE,
              plan.xlabel.top * SCALE, "mt")
    _put_text(image, SIGMA_AXIS, TEXT_SIZE - 2, plan.ylabel.left * SCALE, (plan.ylabel.top + plan.ylabel.bottom) / 2 * SCALE,
              "lm", turned=True)
    buffer = io.BytesIO()
    image.resize((width, height), Image.LANCZOS).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def plot_schedules(schedules, path, title="Sampling schedules"):
    """Draw {label: sampling sigmas} on a log-sigma axis against step index and save it as a PNG."""
    atomic_write(Path(path), render(schedules, title))
    return Path(path)


def plot_against_baselines(doc, steps, registry_roots, path):
    """The new schedule at `steps` steps beside the family's stored schedule and karras (rho 7),
    all over the model's range; returns the PNG path (None when it cannot be drawn)."""
    model = doc["model"]
    lo, hi = model["sigma_min"], model["sigma_max"]
    curves = {f"new ({doc['id']})": resample(doc["sigmas"], steps)}
    family = RegistrySet(registry_roots).find(family=model["family"])
    if family is not None:
        curves[f"family ({family.ref})"] = family.resample(steps, sigma_min=lo, sigma_max=hi)
    curves["karras (rho 7)"] = karras(steps, lo, hi)
    try:
        return plot_schedules(curves, path, title=f"{steps}-step schedules for {model.get('name', model['family'])}")
    except Exception as exc:  # a plot is a nicety; the schedule is already made
        print(f"AYS: could not draw the schedule plot ({type(exc).__name__}: {exc})")
        return None
