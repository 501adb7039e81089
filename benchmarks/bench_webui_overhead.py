"""Per-request cost of the AYS scheduler inside the WebUI (stand-in WebUI from tests/webui_stub).

Times the scheduler function exactly as KDiffusionSampler.get_sigmas calls it (keywords n,
sigma_min, sigma_max, inner_model, device) with the registry already cached, next to the WebUI's
own "Align Your Steps" and "Karras" schedulers in the same process, plus the one-off cost of the
first call after a model or registry change (reading and validating the registry files).

    .venv/bin/python benchmarks/bench_webui_overhead.py [--steps 20] [--repeat 2000]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "webui_stub"))

import webui_harness  # noqa: E402


def per_call_us(function, repeat):
    function()  # warm up
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            function()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="sampling steps per request (default 20)")
    parser.add_argument("--repeat", type=int, default=2000, help="calls per timing round (default 2000)")
    args = parser.parse_args()

    webui = webui_harness.start_webui(sd_model=webui_harness.FakeSDModel("sdxl"))
    from modules import sd_samplers_kdiffusion

    wrap = sd_samplers_kdiffusion.ModelWrap(webui.shared.sd_model)
    sigma_min, sigma_max = wrap.sigmas[0].item(), wrap.sigmas[-1].item()
    schedulers = webui.sd_schedulers.schedulers_map

    def call(label):
        scheduler = schedulers[label]
        kwargs = {"inner_model": wrap} if scheduler.need_inner_model else {}
        return lambda: scheduler.function(n=args.steps, sigma_min=sigma_min, sigma_max=sigma_max, device="cpu", **kwargs)

    adapter = webui.ays.ADAPTER
    start = time.perf_counter()
    adapter.selector.invalidate()
    call("AYS")()
    cold_ms = (time.perf_counter() - start) * 1e3

    ays = per_call_us(call("AYS"), args.repeat)
    builtin = per_call_us(call("Align Your Steps"), args.repeat)
    karras = per_call_us(call("Karras"), args.repeat)
    print(f"steps={args.steps}, SDXL model, registry cached (best of 5 x {args.repeat} calls)")
    print(f"  AYS (this extension)         {ays:8.1f} us per request")
    print(f"  Align Your Steps (built-in)  {builtin:8.1f} us per request   AYS / built-in = {ays / builtin:.2f}")
    print(f"  Karras (built-in)            {karras:8.1f} us per request   AYS / Karras   = {ays / karras:.2f}")
    print(f"  first request after a model or registry change: {cold_ms:.1f} ms (reads and validates the registry)")
    webui_harness.stop_webui()


if __name__ == "__main__":
    main()
