"""`make demo`: optimize a 10-step schedule for the bundled digits checkpoint, publish it to your
registry (the per-user one, or $AYS_REGISTRY; never the shipped registry/) as its next version, and
benchmark it against the hand-made schedules. Everything else it writes goes under --out.

    .venv/bin/python benchmarks/demo.py [--seed 0] [--out out/demo]

Both steps are the user-facing commands (`ays optimize`, `ays bench`), run in-process; the
checkpoint loads like any user's (`--model FILE`). Deterministic given the seed: the bench uses
noise seeds disjoint from the optimizer's (seed + 1000 onwards).
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from ays_core.cli import main as ays  # noqa: E402
from ays_core.models.digits import BUNDLED_DENOISER  # noqa: E402

BASELINES = "karras,exponential,kl_optimal,sd15"  # sd15: the paper's SD1.5 list, rescaled to the model's range


def run(*argv):
    print("$ ays " + " ".join(argv), flush=True)
    status = ays(list(argv))
    if status:
        sys.exit(status)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(REPO, "out", "demo"))
    parser.add_argument("--solver", default="dpmpp_2m", help="the sampler the schedule is optimized for")
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    model = os.path.relpath(BUNDLED_DENOISER)
    schedule_id = "digits-8x8-mlp"
    run("optimize", "--model", model, "--steps", "10", "--solver", args.solver, "--seed", str(args.seed),
        "--id", schedule_id, "--out", os.path.join(args.out, f"{schedule_id}.json"), "--publish")
    bench_dir = os.path.join(args.out, "bench")
    run("bench", "--model", model, "--schedules", f"{schedule_id},{BASELINES}", "--samplers", "euler,dpmpp_2m",
        "--nfe", "6,8,10", "--samples", "1000", "--seeds", "3", "--seed", str(args.seed + 1000), "--out", bench_dir)
    print(f"\ndemo done: table {os.path.join(bench_dir, 'results.md')}, plots {bench_dir}/*.png")
    print_verdict(os.path.join(bench_dir, "results.json"))


def print_verdict(results_json):
    """The verdict of every cell in plain words, then the summary lines."""
    from ays_core.bench_report import read_result, summary_lines, verdict_words

    result = read_result(results_json)
    print(f"\nVerdict (main metric {result.metrics[0].label}, paired 95% confidence intervals over "
          f"{len(result.config['seeds'])} seeds; the optimized schedule against each hand-made one):")
    for sentence in verdict_words(result):
        print(f"  {sentence}")
    for line in summary_lines(result):
        print(f"  {line}")


if __name__ == "__main__":
    main()
