"""benchmarks/suite.py (`make bench`): a cell run twice renders the same tables, and the docs block
between the markers is replaced without touching the rest of the file; benchmarks/oracle_again.py
takes a suite run's oracle lists as that run made them."""
import os
from dataclasses import replace

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture()
def suite(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(REPO, "benchmarks"))
    monkeypatch.chdir(REPO)  # the suite's model paths are relative to the repository
    import suite

    return suite


TINY_OPTIMIZE = ("--samples", "256", "--validation-samples", "64", "--refine", "0", "--step-counts", "4",
                 "--teacher-samples", "8", "--no-progress")


def test_a_cell_reproduces_its_tables(suite, tmp_path):
    settings = replace(suite.QUICK, samplers=("euler",), nfe=(4,), samples=64, seeds=2, oracle_evaluations=2,
                       oracle_samples=64, optimize_args=TINY_OPTIMIZE)
    sections = []
    for run in ("first", "second"):
        path = suite.bench_one("toy", "euler", settings, str(tmp_path / run))
        assert os.path.isfile(os.path.join(os.path.dirname(os.path.dirname(path)), "timing.json"))
        sections.append(suite.model_section("toy", [path]))
    without_timing = [[line for line in text.splitlines() if not line.startswith("Wall time")] for text in sections]
    assert without_timing[0] == without_timing[1]
    assert "Wall time on this run: optimize" in sections[0]
    assert "AYS: " in sections[0] and "| oracle |" in sections[0]


def test_sizes_give_the_unet_its_own_sample_counts(suite):
    settings = replace(suite.FULL, samples=1000, oracle_samples=512, image_samples=100, image_oracle_samples=200)
    assert settings.sizes("patches") == (100, 200)
    assert settings.sizes("digits") == settings.sizes("toy") == (1000, 512)


def test_docs_block_is_replaced_between_the_markers_only(suite, tmp_path):
    docs = tmp_path / "BENCHMARKS.md"
    docs.write_text(f"# Top\n\nkept\n\n{suite.BEGIN}\nold tables\n{suite.END}\n\n## After\nalso kept\n", encoding="utf-8")
    suite.write_docs(str(docs), "new tables")
    text = docs.read_text(encoding="utf-8")
    assert "old tables" not in text and f"{suite.BEGIN}\nnew tables\n{suite.END}" in text
    assert text.startswith("# Top\n\nkept\n") and text.endswith("## After\nalso kept\n")
    bare = tmp_path / "bare.md"
    bare.write_text("# Benchmarks\n", encoding="utf-8")
    suite.write_docs(str(bare), "tables")
    assert bare.read_text(encoding="utf-8").count(suite.BEGIN) == 1


def test_only_the_whole_suite_rewrites_the_docs_by_default(suite):
    def target(*argv):
        return suite.docs_target(suite.arguments().parse_args(list(argv)))

    assert target() == os.path.join(REPO, "docs", "BENCHMARKS.md")
    assert target("--quick") is None and target("--models", "toy") is None and target("--samplers", "euler") is None
    assert target("--quick", "--docs", "x.md") == "x.md" and target("--no-docs") is None


def test_a_cells_timing_is_read_back_for_the_render_only_header(suite, tmp_path):
    results = tmp_path / "toy" / "euler" / "bench" / "results.json"
    results.parent.mkdir(parents=True)
    assert suite.cell_timing(str(results)) == {} and suite.timing_line(str(results)) == ""
    (tmp_path / "toy" / "euler" / "timing.json").write_text('{"optimize_s": 30.0, "bench_s": 150.0}')
    assert sum(suite.cell_timing(str(results)).values()) == 180.0
    assert suite.timing_line(str(results)) == "optimize 30 s, bench 2.5 min"


def test_oracle_again_benches_the_oracle_lists_as_the_suite_ran_them(suite, tmp_path):
    import json

    import oracle_again

    folder = tmp_path / "toy" / "euler"
    (folder / "bench").mkdir(parents=True)
    config = {"seeds": [1000, 1001, 1002, 1003, 1004], "samples": 1000,
              "oracle": {"euler@4": [80.0, 5.0, 0.5, 0.01, 0.0]}}
    (folder / "bench" / "results.json").write_text(json.dumps({"config": config}), encoding="utf-8")
    (folder / "AYS.json").write_text(json.dumps({"id": "x", "step_schedules": {"4": [80.0, 9.0, 1.0, 0.1]}}),
                                     encoding="utf-8")
    doc, samples = oracle_again.oracle_as_schedule(str(folder), "euler", [4], suite.FULL)
    assert doc["step_schedules"]["4"] == [80.0, 5.0, 0.5, 0.01] and doc["id"] == "x" and samples == 1000
    assert json.loads((folder / "AYS.json").read_text(encoding="utf-8"))["step_schedules"]["4"][1] == 9.0
    with pytest.raises(SystemExit, match="no oracle at 6 NFE"):
        oracle_again.oracle_as_schedule(str(folder), "euler", [6], suite.FULL)
    with pytest.raises(SystemExit, match="--quick"):
        oracle_again.oracle_as_schedule(str(folder), "euler", [4], suite.QUICK)


def test_other_evaluation_seeds_judge_the_same_cells_apart_and_never_write_the_docs(suite, tmp_path, capsys):
    parser = suite.arguments()
    args = parser.parse_args(["--eval-seed", "2000"])
    settings = suite.suite_settings(parser, args)
    argv = suite.bench_argv("toy", "euler", settings, ["AYS"], "out")
    assert argv[argv.index("--seed") + 1] == "2000" and argv[argv.index("--seeds") + 1] == str(suite.FULL.seeds)
    assert replace(settings, seed=suite.FULL.seed) == suite.FULL
    assert suite.docs_target(args) is None and args.out == os.path.join(REPO, "out", "suite-seed2000")
    for bad, words in ((["--eval-seed", "2000", "--docs", "x.md"], "the docs hold the verdicts on the suite's own"),
                       (["--eval-seed", "0"], "would reach the optimizer's (0)"),
                       (["--eval-seed", "6999999"], "or the peers' own (7000000..)")):
        with pytest.raises(SystemExit):
            suite.suite_settings(parser, parser.parse_args(bad))
        assert words in capsys.readouterr().err
    # results judged on other seeds are never rendered as the suite's own
    results = tmp_path / "results.json"
    results.write_text('{"config": {"seeds": [2000, 2001]}}')
    suite.check_seeds(parser, [str(results)], 2000)
    with pytest.raises(SystemExit):
        suite.check_seeds(parser, [str(results)], suite.FULL.seed)
    assert "judged on evaluation seeds from 2000, not 1000; give --eval-seed 2000" in capsys.readouterr().err


def test_the_criteria_count_each_cell_at_6_to_10_nfe_from_paired_seeds(suite):
    from types import SimpleNamespace

    from ays_core.scoring import Metric

    # per schedule, per NFE: values on 3 seeds (lower is better); 4 NFE is not judged
    table = {
        4: {"AYS": [9, 9, 9], "karras": [1, 1, 1], "exponential": [1, 1, 1], "gits": [1, 1, 1], "oracle": [0, 0, 0]},
        6: {"AYS": [1.0, 2.0, 3.0], "karras": [2.0, 3.0, 4.0], "exponential": [2.1, 3.1, 4.1],
            "gits": [1.5, 2.5, 3.5], "oracle": [1.0, 2.01, 2.99]},          # meets all three
        8: {"AYS": [2.0, 3.0, 4.0], "karras": [3.0, 4.0, 5.0], "exponential": [2.1, 2.9, 4.05],
            "gits": [1.0, 2.0, 3.0], "oracle": [0.5, 1.5, 2.5]},            # beaten by gits, not beyond
                                                                           # exponential, oracle far better
    }
    rows = [{"seed": seed, "sampler": "euler", "nfe": nfe, "schedule": name, "m": value}
            for nfe, cell in table.items() for name, values in cell.items() for seed, value in enumerate(values)]
    result = SimpleNamespace(rows=rows, metrics=(Metric("m", "metric"),), config={"candidate": "AYS"})
    counts = {name: (met, judged, missed) for name, met, judged, missed in suite.criteria([result])}
    assert counts["never beaten"] == (1, 2, ["euler 8 (by gits)"])
    assert counts["better than karras and exponential"] == (1, 2, ["euler 8"])
    met, judged, missed = counts["within the oracle's CI or better"]
    assert (met, judged) == (1, 2) and missed[0].startswith("euler 8 (1.5 ± 0")
    lines = suite.criteria_lines([result])
    assert lines[0] == "never beaten: 1 / 2 (missed: euler 8 (by gits))"
    # a cell is judged only on the criteria whose columns it has, and only with a CI (two seeds or more)
    partial = [row for row in rows if row["schedule"] not in ("oracle", "karras")]
    single = [row for row in rows if row["seed"] == 0]
    for kept, judged in ((partial, (2, 0, 0)), (single, (0, 0, 0))):
        counts = suite.criteria([SimpleNamespace(rows=kept, metrics=result.metrics, config=result.config)])
        assert tuple(count[2] for count in counts) == judged
