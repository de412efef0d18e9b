"""The equal-budget sample-quality comparison (``ddim-book bench quality``) on a tiny config: both models
trained by the same config, evaluated at every budget, resumed without retraining, rendered, written into a doc."""

import json

import pytest

from ddim_book import cli
from ddim_book.bench import quality as bench_quality
from ddim_book.bench.report import update_doc

ARGS = dict(config="mnist-tiny", budgets=(2, 3), seeds=(0,), n=8, sample_steps=2, progress=False)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    return out, bench_quality.run_quality(out, **ARGS)


def test_the_two_configs_differ_only_in_the_model():
    configs = bench_quality.quality_configs("mnist-tiny", seed=3, total_steps=7)
    ours, theirs = configs["ours"].to_dict(), configs["unet2d"].to_dict()
    differing = {key for key in ours if ours[key] != theirs[key]}
    assert differing == {"name", "model_kind", "model"}
    assert ours["seed"] == 3 and ours["total_steps"] == 7 and ours["sample_every"] == 0
    assert configs["search"]["within_10_percent"]


def test_every_model_budget_and_seed_is_scored(quick):
    out, result = quick
    assert set(result["runs"]) == {"ours-seed0", "unet2d-seed0"}
    for run, scores in result["runs"].items():
        assert set(scores) == {"2", "3"}
        for cell in scores.values():
            assert cell["fld"] > 0 and 0 <= cell["confidence"] <= 1 and cell["n"] == 8
            assert (out / f"{run}-step3.png").stat().st_size > 0
        assert result["train_seconds"][run] > 0
    assert json.loads((out / "quality.json").read_text()) == result
    assert result["anchors"]["noise_vs_real"] > result["anchors"]["real_vs_real"]


def test_a_second_call_resumes_without_training_again(quick):
    out, result = quick
    logs = {run: (out / run / "train_log.csv").read_text() for run in result["runs"]}
    again = bench_quality.run_quality(out, **ARGS)
    assert again["runs"] == result["runs"]
    assert {run: (out / run / "train_log.csv").read_text() for run in result["runs"]} == logs


def test_render_and_doc_block(quick, tmp_path):
    _, result = quick
    text = bench_quality.render_quality(result)
    rows = [line for line in text.splitlines() if line.startswith("| 2 |") or line.startswith("| 3 |")]
    assert len(rows) == 4 and all(line.count("|") == 7 for line in rows)
    doc = tmp_path / "doc.md"
    doc.write_text(f"a\n{bench_quality.QUALITY_START}\nold\n{bench_quality.QUALITY_END}\nb\n")
    update_doc(doc, text, bench_quality.QUALITY_START, bench_quality.QUALITY_END)
    assert doc.read_text() == f"a\n{bench_quality.QUALITY_START}\n{text}\n{bench_quality.QUALITY_END}\nb\n"


def test_bad_input_fails_before_any_training(tmp_path, capsys):
    code = cli.main(["bench", "quality", "--doc", str(tmp_path / "missing.md"), "--out-dir", str(tmp_path / "q")])
    assert code == 2 and "must be a file with the lines" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()
    assert cli.main(["bench", "quality", "--n", "1", "--out-dir", str(tmp_path / "q")]) == 2
    assert "2 <= n <= 500" in capsys.readouterr().err
    assert cli.main(["bench", "quality", "--config", "toy-mlp", "--out-dir", str(tmp_path / "q")]) == 2
    assert "needs a U-Net config" in capsys.readouterr().err
