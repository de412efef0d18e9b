"""Every bad input a user can give the command line ends in one line on stderr and the documented exit code.

Each case runs ``python -m ddim_book`` as a subprocess, as a user would, and checks: the exit code (2 for a
bad argument, 1 for a failure while running, 130 for Ctrl-C), a single ``error:`` line naming the problem,
no traceback, and that nothing was lost (an existing output is untouched) or left behind (no temp files).
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ddim_book.training import Trainer, export_ema, get_config

REPO = Path(__file__).resolve().parents[1]
TINY_SCHEDULE = {"kind": "linear", "T": 50, "beta_start": 1e-3, "beta_end": 0.2}


def run_cli(*args, env=None, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ddim_book", *map(str, args)],
        capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout,
    )  # fmt: skip


def assert_clean_failure(done: subprocess.CompletedProcess, code: int, message: str) -> None:
    err = done.stderr.strip()
    assert done.returncode == code, (done.returncode, done.stdout[-500:], err[-2000:])
    assert "Traceback" not in err and "Traceback" not in done.stdout, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    assert message.lower() in lines[0].lower(), (message, err)


class _Payload:
    """Unpickling this would create a marker file: the loader must never run it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny trained model and a set of broken files beside it."""
    root = tmp_path_factory.mktemp("cli")
    run = root / "run"
    Trainer(get_config("mnist-tiny", total_steps=3, schedule=TINY_SCHEDULE), run, progress=False).train()
    tiny = export_ema(run / "last.pt", root / "tiny.pt")
    (root / "text.pt").write_text("this is not a checkpoint\n")
    (root / "random.pt").write_bytes(os.urandom(4096))
    (root / "truncated.pt").write_bytes(tiny.read_bytes()[: tiny.stat().st_size // 2])
    with open(root / "payload.pt", "wb") as f:
        pickle.dump(_Payload(str(root / "payload-ran")), f)
    torch.save({"when": time.struct_time((2026, 1, 1, 0, 0, 0, 0, 1, 0))}, root / "objects.pt")
    (root / "folder.pt").mkdir()
    (root / "existing.png").write_bytes(b"keep me")
    return root


BAD_ARGUMENTS = [  # (arguments, message); every one exits 2 before any work starts
    (["sample", "--eta", "-1"], "--eta must be a finite number >= 0"),
    (["sample", "--eta", "lots"], "--eta must be a number"),
    (["sample", "--eta", "inf"], "--eta must be a finite number"),
    (["sample", "--steps", "0"], "--steps must be >= 1"),
    (["sample", "--n", "0"], "--n must be >= 1"),
    (["sample", "--n", "many"], "invalid int value"),
    (["sample", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["sample", "--sampler", "euler"], "invalid choice"),
    (["sample", "--spacing", "log"], "invalid choice"),
    (["sample", "--device", "banana"], "--device must be"),
    (["sample", "--checkpoint", "/nonexistent/model.pt"], "does not exist"),
    (["sample", "--checkpoint", "{root}/folder.pt"], "is not a file"),
    (["sample", "--out", "{root}"], "is a folder"),
    (["sample", "--out", "{root}/noextension"], "must end in .png"),
    (["sample", "--out", "{root}/x.jpg"], "must end in .png"),
    (["sample", "--out", "/nonexistent/x.png"], "does not exist"),
    (["sample", "--out", "/proc/x.png"], "cannot write"),
    (["sample", "--out", "/sys/x.png"], "cannot write"),
    (["sample", "--out", "{root}/existing.png"], "exists; pass --force"),
    (["evaluate", "--json", "/proc/x.json"], "cannot write"),
    (["evaluate", "--json", "{root}/result.txt"], "must end in .json"),
    (["train", "--config", "imagenet"], "invalid choice"),
    (["train", "--config", "toy-mlp", "--set", "colour=blue"], "unknown TrainConfig field"),
    (["train", "--config", "toy-mlp", "--set", "lr"], "KEY=VALUE"),
    (["train", "--config", "toy-mlp", "--set", "lr=-1"], "lr must be"),
    (["train", "--config", "toy-mlp", "--steps", "0"], "--steps must be >= 1"),
    (["train", "--config", "toy-mlp", "--max-minutes", "-5"], "--max-minutes must be a positive number"),
    (["train", "--config", "toy-mlp", "--out", "/proc/t3"], "cannot create the run folder"),
    (["train", "--config", "toy-mlp", "--out", "{root}/existing.png"], "is a file"),
    (["sample", "--checkpoint", "{root}/tiny.pt", "--steps", "5000", "--out", "{root}/s.png"], "1..50"),
    ([], "required"),
    (["paint"], "invalid choice"),
]


@pytest.mark.parametrize("args, message", BAD_ARGUMENTS, ids=[" ".join(a) or "no-command" for a, _ in BAD_ARGUMENTS])
def test_bad_argument_exits_2_with_one_line(files, args, message):
    args = [a.format(root=files) for a in args]
    done = run_cli(*args)
    if not args:
        assert done.returncode == 2 and "Traceback" not in done.stderr and message in done.stderr
        return
    assert_clean_failure(done, 2, message)
    assert (files / "existing.png").read_bytes() == b"keep me"
    assert not (files / "s.png").exists()


BAD_FILES = [  # (checkpoint file, message); each fails while running: exit 1
    ("text.pt", "not a torch checkpoint"),
    ("random.pt", "not a torch checkpoint"),
    ("truncated.pt", "not a torch checkpoint"),
    ("payload.pt", "not a torch checkpoint"),
    ("objects.pt", "holds pickled Python objects"),
]


@pytest.mark.parametrize("name, message", BAD_FILES, ids=[n for n, _ in BAD_FILES])
def test_a_bad_checkpoint_exits_1_with_one_line(files, name, message):
    done = run_cli("sample", "--checkpoint", files / name, "--out", files / "never.png", "--n", "2", "--quiet")
    assert_clean_failure(done, 1, message)
    assert not (files / "never.png").exists()
    assert not (files / "payload-ran").exists()  # the pickled payload never ran
    assert "UserWarning" not in done.stderr


@pytest.fixture
def shipped_copy(tmp_path):
    """A copy of the shipped checkpoints folder that a test may break."""
    copy = tmp_path / "checkpoints"
    shutil.copytree(REPO / "data" / "checkpoints", copy)
    return copy


def _shipped_file(root: Path) -> Path:
    import json

    return root / json.loads((root / "manifest.json").read_text())["models"]["mnist"]["file"]


@pytest.mark.parametrize("damage", ["bit-flip", "truncate", "delete"])
def test_a_damaged_shipped_model_exits_1_with_one_line(shipped_copy, tmp_path, damage):
    path = _shipped_file(shipped_copy)
    data = bytearray(path.read_bytes())
    if damage == "bit-flip":
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:1000]))
    else:
        path.unlink()
    done = run_cli("sample", "--out", tmp_path / "s.png", "--n", "2", env={"DDIM_BOOK_CHECKPOINTS": str(shipped_copy)})
    assert_clean_failure(done, 1, "missing" if damage == "delete" else "corrupt or was replaced")


def test_a_corrupt_data_file_exits_1_with_one_line(files, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(REPO / "data" / "mnist", data / "mnist")
    images = data / "mnist" / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:5000])
    done = run_cli("evaluate", "--checkpoint", files / "tiny.pt", "--n", "4", "--steps", "2", "--quiet",
                   env={"DDIM_BOOK_DATA": str(data)})  # fmt: skip
    assert_clean_failure(done, 1, "md5")


def test_a_cuda_device_without_cuda_exits_1(files, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the request would succeed")
    done = run_cli("sample", "--device", "cuda", "--checkpoint", files / "tiny.pt", "--out", tmp_path / "s.png")
    assert_clean_failure(done, 1, "CUDA is not available")


def test_divergent_training_exits_1_and_writes_no_bad_checkpoint(tmp_path):
    run = tmp_path / "run"
    done = run_cli("train", "--config", "toy-mlp", "--out", run, "--quiet", "--steps", "200", "--set", "lr=1e6",
                   "--set", "grad_clip=0", "--set", "warmup_steps=0", "--set", "log_every=5")  # fmt: skip
    assert_clean_failure(done, 1, "training diverged")
    assert not (run / "last.pt").exists() and not list(run.glob(".*.tmp"))


def test_training_past_the_asked_steps_says_so(tmp_path):
    run = tmp_path / "run"
    base = ["train", "--config", "toy-mlp", "--out", run, "--quiet", "--set", "log_every=5"]
    assert run_cli(*base, "--steps", "30").returncode == 0
    assert_clean_failure(run_cli(*base, "--steps", "10"), 2, "at step 30, past the 10 total steps")
    done = run_cli(*base, "--steps", "30")
    assert done.returncode == 0 and "already at its 30 total steps" in done.stdout
    done = run_cli(*base, "--steps", "40")
    assert done.returncode == 0 and "resuming from step 30 of 40" in done.stdout and str(run / "last.pt") in done.stdout


def test_leftover_temp_files_are_removed_and_checkpoints_get_normal_permissions(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stale = run / ".last.pt.k1ll3d.tmp"  # what a save killed by SIGKILL leaves
    stale.write_bytes(b"half a checkpoint")
    done = run_cli("train", "--config", "toy-mlp", "--out", run, "--quiet", "--steps", "5", "--set", "log_every=5")
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    umask = os.umask(0o022)
    os.umask(umask)
    assert (run / "last.pt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_ctrl_c_during_training_saves_and_exits_130(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ddim_book", "train", "--config", "toy-mlp", "--out", str(run), "--quiet",
           "--steps", "1000000", "--set", "log_every=10", "--set", "ckpt_every=0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "training toy-mlp" in proc.stdout.readline()
        log, deadline = run / "train_log.csv", time.monotonic() + 120
        while time.monotonic() < deadline and not (log.exists() and len(log.read_text().splitlines()) > 1):
            time.sleep(0.2)  # until some steps are logged (no checkpoint yet): a busy machine may take a while
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert (run / "last.pt").exists() and not list(run.glob(".*.tmp"))


def test_evaluate_runs_as_the_readme_shows_on_a_small_n(files, tmp_path):
    out = tmp_path / "scores.json"
    done = run_cli("evaluate", "--checkpoint", files / "tiny.pt", "--n", "20", "--steps", "2", "--quiet",
                   "--anchors", "--json", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    import json

    scores = json.loads(out.read_text())
    assert scores["n"] == 20 and scores["fld"] > 0 and 0 <= scores["clipped"] <= 1
    assert scores["noise_fld"] > scores["real_fld"] > 0
    assert_clean_failure(run_cli("evaluate", "--checkpoint", files / "tiny.pt", "--json", out), 2, "exists")


def test_force_replaces_an_output(files, tmp_path):
    out = tmp_path / "s.png"
    out.write_bytes(b"old")
    args = ["sample", "--checkpoint", files / "tiny.pt", "--n", "2", "--steps", "2", "--out", out, "--quiet"]
    assert_clean_failure(run_cli(*args), 2, "exists")
    assert out.read_bytes() == b"old"
    assert run_cli(*args, "--force").returncode == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_help_and_version_answer_without_importing_torch():
    code = "import sys; from ddim_book.cli import parser; parser(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("ddim-book ")


def test_every_option_has_help_text():
    from ddim_book.cli import parser

    top = parser()
    commands = next(a for a in top._actions if a.dest == "command").choices
    for name, sub in commands.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"ddim-book {name} {action.option_strings[0]} has no help text"


def test_debug_shows_the_traceback(files, tmp_path):
    done = run_cli("--debug", "sample", "--checkpoint", files / "text.pt", "--out", tmp_path / "s.png")
    assert done.returncode == 1 and "Traceback" in done.stderr
