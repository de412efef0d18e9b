"""``ddim-book bench``: the quick mode on a tiny U-Net writes a complete JSON and a Markdown report that renders.

No timing is asserted (the machine may be busy); the tests check structure, that every figure is a positive
finite number, and the things that are exact: the baselines compute the same samples as ``ddim_sample``.
"""

import json
import math
import sys

import pytest
import torch

from ddim_book import cli
from ddim_book.bench import report as bench_report
from ddim_book.bench import speed, timing
from ddim_book.bench import versus_diffusers as bench_diffusers
from ddim_book.samplers import ddim_sample

EXPECTED_SECTIONS = ("overhead", "sampling", "training", "optimisations", "diffusers")


def _numbers(rows):
    for row in rows:
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                yield key, value


def _check_tables(markdown: str) -> int:
    """Every table has a header, a separator and rows with the header's number of cells; returns the count."""
    lines, tables, i = markdown.splitlines(), 0, 0
    while i < len(lines):
        if lines[i].startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            cells = [len(line.strip().strip("|").split("|")) for line in block]
            assert len(block) >= 3, block
            assert set(block[1].strip("|").split("|")) == {"---"}, block[1]
            assert len(set(cells)) == 1, block
            tables += 1
        i += 1
    return tables


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    args = ["--quick", "--config", "mnist-tiny", "--device", "cpu", "--out-dir", str(out)]
    code = cli.main(["bench", *args])
    return code, out, json.loads((out / "bench.json").read_text()), (out / "bench.md").read_text()


def test_quick_mode_writes_every_section_with_positive_finite_figures(quick_run):
    code, _, results, _ = quick_run
    assert code == 0
    assert set(EXPECTED_SECTIONS) <= set(results)
    assert results["machine"]["cores"] >= 1 and results["machine"]["torch"] == torch.__version__
    for name in EXPECTED_SECTIONS:
        section = results[name]
        if "skipped" in section:
            continue
        assert section["rows"], name
        for key, value in _numbers(section["rows"] + [r for more in section.get("more", []) for r in more["rows"]]):
            assert math.isfinite(value) and (value > 0 or "diff" in key), (name, key, value)
        assert section["run"]["settings"]["batch"] == 8
    samplers = {r["sampler"] for r in results["sampling"]["rows"]}
    assert samplers == {"DDIM S=2", "DDIM S=5", "DDPM T=1000"}
    ddpm = next(r for r in results["sampling"]["rows"] if r["sampler"].startswith("DDPM"))
    assert "3 steps" in ddpm["note"]  # the CPU estimate says what it is
    assert results["optimisations"]["naive_vs_shipped_max_abs_diff"] < 1e-4


def test_quick_mode_markdown_renders_tables(quick_run):
    _, _, results, markdown = quick_run
    assert _check_tables(markdown) >= 5
    for heading in ("Sampler overhead", "Sampling throughput", "Training throughput", "What each optimisation"):
        assert f"### {heading}" in markdown
    assert "### Targets" in markdown and "sampler overhead <= 1.03" in markdown
    assert markdown == bench_report.render_markdown(results) + "\n"


def test_diffusers_part_runs_or_reports_the_skip_line(quick_run, capsys):
    _, _, results, markdown = quick_run
    part = results["diffusers"]
    if bench_report.diffusers_version() is None:
        assert part["skipped"] == bench_diffusers.SKIP_LINE and bench_diffusers.SKIP_LINE in markdown
        return
    search = part["unet_search"]
    assert search["within_10_percent"]
    assert abs(search["theirs_parameters"] / search["ours_parameters"] - 1) <= 0.10
    exact, shifted = part["more"][0]["rows"][1:]
    # with steps_offset=0 and t = k + 1 both samplers run DDIM eq. (12) on the same sub-sequence
    assert exact["timesteps_match_ours"] and exact["max_abs_diff"] < 1e-3
    # steps_offset=1 shifts every model time by one step: a different sampler, visibly so
    assert not shifted["timesteps_match_ours"] and shifted["max_abs_diff"] > exact["max_abs_diff"]


def test_missing_diffusers_prints_the_skip_line_and_continues(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes `import diffusers` raise ImportError
    args = ["--quick", "--config", "mnist-tiny", "--device", "cpu", "--sections", "diffusers"]
    assert cli.main(["bench", *args, "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert bench_diffusers.SKIP_LINE in out
    assert json.loads((tmp_path / "bench.json").read_text())["diffusers"]["skipped"] == bench_diffusers.SKIP_LINE


def test_sections_of_separate_runs_are_merged(tmp_path):
    common = ["--quick", "--config", "mnist-tiny", "--device", "cpu", "--out-dir", str(tmp_path), "--repeats", "1"]
    assert cli.main(["bench", *common, "--sections", "overhead"]) == 0
    assert cli.main(["bench", *common, "--sections", "optimisations"]) == 0
    results = json.loads((tmp_path / "bench.json").read_text())
    assert {"overhead", "optimisations"} <= set(results) and "training" not in results
    markdown = (tmp_path / "bench.md").read_text()
    assert "- run 1:" in markdown and "- run 2:" in markdown


def test_naive_baseline_computes_the_same_samples():
    model, schedule = timing.build_unet("mnist-tiny", torch.device("cpu"))
    x_T = timing.start_noise(model, 3, torch.device("cpu"))
    naive = bench_diffusers.naive_ddim_sample(model, schedule, x_T, steps=4)
    shipped = ddim_sample(model, schedule, x_T, steps=4, progress=False)
    assert naive.abs().max() > 0.1  # the random output layers make eps non-zero, so this compares something
    torch.testing.assert_close(naive, shipped, atol=1e-5, rtol=1e-5)


def test_interleaved_alternates_and_counts_calls():
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    r = timing.interleaved(fns, 3, torch.device("cpu"), per_round={"b": 2})
    assert order == ["a", "b", "b"] * 3
    assert r["a"]["n"] == 3 and r["b"]["n"] == 6
    assert all(r[k][c] >= 0 for k in fns for c in ("wall", "cpu"))


@pytest.mark.parametrize(
    "changes, word",
    [({"batch": 0}, "batch"), ({"warmup_steps": -1}, "warmup_steps"), ({"threads": 1.5}, "threads"),
     ({"clock": "sundial"}, "clock"), ({"sections": ("overhead", "nope")}, "sections")],
)  # fmt: skip
def test_settings_reject_bad_values(changes, word):
    with pytest.raises(ValueError, match=word):
        speed.BenchSettings(**changes)


def test_cli_errors_are_clear(capsys):
    assert cli.main(["bench", "--config", "toy-mlp", "--sections", "overhead", "--out-dir", "unused"]) == 2
    assert "U-Net training config" in capsys.readouterr().err


def test_bench_parser_wires_the_timings_and_the_two_studies():
    p = cli.parser()
    args = p.parse_args(["bench", "--quick", "--sections", "overhead,training"])
    assert args.func is cli._run_bench and args.quick and args.sections == "overhead,training" and args.study is None
    args = p.parse_args(["bench", "quality", "--n", "7", "--out-dir", "q"])
    assert args.func is cli._run_bench_quality and (args.n, args.out_dir, args.config) == (7, "q", "mnist-small")
    args = p.parse_args(["bench", "solvers", "--max-steps", "40"])
    assert args.func is cli._run_bench_solvers and args.max_steps == 40 and args.targets == "1e-2,1e-3,1e-4"


def test_update_doc_replaces_only_the_results_block(tmp_path):
    doc = tmp_path / "BENCH.md"
    doc.write_text(f"intro\n{bench_report.DOC_START}\nold\n{bench_report.DOC_END}\noutro\n")
    bench_report.update_doc(doc, "new table")
    assert doc.read_text() == f"intro\n{bench_report.DOC_START}\nnew table\n{bench_report.DOC_END}\noutro\n"
    (tmp_path / "plain.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="bench-results"):
        bench_report.update_doc(tmp_path / "plain.md", "x")
