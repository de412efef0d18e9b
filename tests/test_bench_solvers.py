"""``ddim-book bench solvers``: evaluations each ODE solver needs on Gaussian data, against the exact ODE map."""

import json

import pytest

from ddim_book import cli
from ddim_book.bench import solvers


def test_step_grid_and_the_smallest_s_from_which_the_error_stays_below():
    grid = solvers.step_grid(100)
    assert grid[:9] == list(range(2, 11)) and grid[-1] == 100 and grid == sorted(set(grid))
    steps, errors = [2, 4, 8, 16], [0.5, 0.05, 0.2, 0.01]
    assert solvers.steps_to_reach(steps, errors, 0.1) == 16  # 4 dips below, but 8 is above again
    assert solvers.steps_to_reach(steps, errors, 0.3) == 4
    assert solvers.steps_to_reach(steps, errors, 0.001) is None


def test_second_order_rules_need_fewer_evaluations_than_ddim():
    result = solvers.run_solvers(targets=(3e-2, 1e-2), max_steps=100, n=32, dim=8)
    ddim = result["errors"]["DDIM (order 1)"]
    grid = result["steps"]
    i, j = grid.index(20), grid.index(40)
    assert 1.6 < ddim[i] / ddim[j] < 2.4  # first order: doubling S halves the error
    for rule in ("2M, line in lambda", "2M, line in sigma"):
        needed, base = result["needed"][rule]["0.01"], result["needed"]["DDIM (order 1)"]["0.01"]
        assert needed is not None and (base is None or needed < base)
    text = solvers.render_solvers(result)
    assert "error <= 0.01" in text and "2M, line in sigma" in text


def test_cli_writes_json_and_the_doc_block(tmp_path, capsys):
    doc = tmp_path / "b.md"
    doc.write_text(f"x\n{solvers.SOLVER_START}\nold\n{solvers.SOLVER_END}\ny\n")
    out = tmp_path / "s.json"
    assert (
        cli.main(["bench", "solvers", "--max-steps", "20", "--targets", "0.05", "--json", str(out), "--doc", str(doc)])
        == 0
    )
    assert json.loads(out.read_text())["targets"] == [0.05]
    assert "old" not in doc.read_text() and "error <= 0.05" in doc.read_text()
    assert cli.main(["bench", "solvers", "--targets", "2"]) == 2
    assert "targets must be errors in (0, 1)" in capsys.readouterr().err
    assert cli.main(["bench", "solvers", "--doc", str(tmp_path / "none.md")]) == 2


@pytest.mark.parametrize("bad", ["5", "2000"])
def test_max_steps_is_checked(bad, capsys):
    assert cli.main(["bench", "solvers", "--max-steps", bad]) == 2
    assert "max_steps must be an integer in 10..1000" in capsys.readouterr().err
