"""The package works when installed from its wheel, away from the repository (as Colab and course labs install it)."""

import glob
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_the_data_and_runs_from_another_folder(tmp_path):
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", str(REPO), "--no-deps", "-w", str(wheels)], check=True, timeout=300)
    (wheel,) = glob.glob(str(wheels / "ddim_book-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), wheel], check=True, timeout=120)
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONWARNINGS": "ignore"}
    env.pop("DDIM_BOOK_DATA", None)
    env.pop("DDIM_BOOK_CHECKPOINTS", None)
    probe = (
        "import ddim_book, ddim_book.paths as p; from ddim_book.data import mnist_dataset; "
        "x, y = mnist_dataset('held_out'); print(ddim_book.__file__); print(p.shipped_data_dir()); print(len(y))"
    )
    done = subprocess.run([sys.executable, "-s", "-c", probe], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    package_file, data_dir, count = done.stdout.split()
    assert package_file.startswith(str(target)) and data_dir.startswith(str(target)), done.stdout
    assert count == "1000"
    args = ["-m", "ddim_book", "sample", "--n", "4", "--steps", "2", "--out", "digits.png", "--quiet"]
    done = subprocess.run([sys.executable, "-s", *args], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (work / "digits.png").read_bytes()[:4] == b"\x89PNG"


def test_every_subpackage_is_listed_for_the_wheel():
    """A subpackage missing from pyproject.toml's list works in a clone and is absent from the wheel."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "ddim_book").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
