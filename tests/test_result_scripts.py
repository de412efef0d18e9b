"""The scripts that rebuild data/results: several eta-table processes share one file; one command covers every cell."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cell(eta, steps, model="new", fld=1.0):
    return {"eta": eta, "steps": steps, "model": model, "fld": fld}


def test_two_processes_writing_one_eta_table_keep_each_others_cells(tmp_path):
    table = load("eta_steps_table")
    path = tmp_path / "eta.json"
    first = {"model": "new", "command": "A", "baselines": {"1000": {"x": 1}}}
    second = {"model": "new", "command": "B", "baselines": {"500": {"x": 2}}}
    table.merge_and_write(path, first, {("0", 10): cell("0", 10)})
    table.merge_and_write(path, second, {("1", 10): cell("1", 10)})
    table.merge_and_write(path, first, {("0", 10): cell("0", 10), ("0", 20): cell("0", 20)})
    stored = json.loads(path.read_text())
    assert [(c["eta"], c["steps"]) for c in stored["cells"]] == [("0", 10), ("1", 10), ("0", 20)]
    assert stored["baselines"] == {"1000": {"x": 1}, "500": {"x": 2}}
    assert stored["computed_by"] == ["A", "B"]


def test_cells_of_another_model_are_dropped_when_a_new_model_writes(tmp_path):
    table = load("eta_steps_table")
    path = tmp_path / "eta.json"
    table.merge_and_write(path, {"model": "old", "command": "A", "baselines": {}}, {("0", 10): cell("0", 10, "old")})
    table.merge_and_write(path, {"model": "new", "command": "B", "baselines": {}}, {("1", 10): cell("1", 10)})
    stored = json.loads(path.read_text())
    assert [(c["eta"], c["model"]) for c in stored["cells"]] == [("1", "new")]
    assert stored["computed_by"] == ["B"]


def test_a_corrupt_eta_table_names_the_command_that_rebuilds_it(tmp_path):
    table = load("eta_steps_table")
    path = tmp_path / "eta.json"
    path.write_text('{"cells": [')
    with pytest.raises(SystemExit, match=r"corrupt .*python scripts/eta_steps_table.py"):
        table.read_results(path)


def test_the_regeneration_jobs_cover_every_eta_table_cell_once():
    regenerate, table = load("regenerate_results"), load("eta_steps_table")
    covered = []
    for _, _, command in regenerate.jobs():
        if "scripts/eta_steps_table.py" in command:
            etas = command[command.index("--etas") + 1 : command.index("--steps")]
            steps = command[command.index("--steps") + 1 :]
            covered += [(eta, int(s)) for eta in etas for s in steps]
    assert sorted(covered) == sorted((eta, s) for eta in table.ETAS for s in table.STEPS)
    costs = [cost for _, cost, _ in regenerate.jobs()]
    assert costs == sorted(costs, reverse=True)  # the longest jobs start first
    scripts = {c[1] for _, _, c in regenerate.jobs(Path("old.pt"))}
    assert {
        "scripts/reconstruction_table.py",
        "scripts/solver_digits_table.py",
        "scripts/evaluate_shipped.py",
    } <= scripts
    assert all(command[0] == sys.executable for _, _, command in regenerate.jobs())


def test_regeneration_refuses_a_missing_previous_model(capsys):
    with pytest.raises(SystemExit) as stop:
        load("regenerate_results").main(["--previous", "no/such/model.pt", "--dry-run"])
    assert stop.value.code == 2 and "no such file" in capsys.readouterr().err
