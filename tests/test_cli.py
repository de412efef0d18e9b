"""The command line and the shipped-model loader, on a tiny model trained in the test."""

import json
import subprocess
import sys

import matplotlib.image
import pytest
import torch

from ddim_book import pretrained
from ddim_book.cli import main
from ddim_book.training import Trainer, export_ema, get_config, load_checkpoint


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    # a short schedule keeps the full DDPM chain (T model calls) cheap
    schedule = {"kind": "linear", "T": 50, "beta_start": 1e-3, "beta_end": 0.2}
    Trainer(get_config("mnist-tiny", total_steps=3, schedule=schedule), out, progress=False).train()
    return export_ema(out / "last.pt", out / "tiny.pt")


def test_sample_writes_a_grid(tiny_model, tmp_path, capsys):
    out = tmp_path / "grid.png"
    args = ["sample", "--checkpoint", str(tiny_model), "--n", "6", "--steps", "3", "--out", str(out), "--quiet"]
    assert main(args) == 0
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (2 * (2 * 29 - 1), 2 * (3 * 29 - 1))  # 2 rows x 3 columns of 28x28, 1 px gaps, x2
    assert "wrote 6 samples" in capsys.readouterr().out


def test_sample_is_reproducible_from_the_seed(tiny_model, tmp_path):
    paths = [tmp_path / f"{k}.png" for k in range(3)]
    for path, seed in zip(paths, (1, 1, 2)):
        common = ["--n", "4", "--steps", "2", "--eta", "1", "--quiet", "--seed", str(seed)]
        main(["sample", "--checkpoint", str(tiny_model), *common, "--out", str(path)])
    a, b, c = (matplotlib.image.imread(p) for p in paths)
    assert (a == b).all() and not (a == c).all()


def test_ddpm_sampler_runs(tiny_model, tmp_path):
    out = tmp_path / "ddpm.png"
    assert (
        main(["sample", "--checkpoint", str(tiny_model), "--sampler", "ddpm", "--n", "2", "--out", str(out), "--quiet"])
        == 0
    )
    assert out.exists()


def test_too_many_steps_is_a_clear_error(tiny_model, tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tiny_model), "--steps", "5000", "--out", str(tmp_path / "x.png")]) == 2
    assert "1..50" in capsys.readouterr().err


def test_train_command_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--config", "toy-mlp", "--out", str(out), "--quiet", "--set", "log_every=10"]
    assert main([*base, "--steps", "20"]) == 0
    text = capsys.readouterr().out
    assert json.loads(text[text.index("{") : text.rindex("}") + 1])["step"] == 20
    assert main([*base, "--steps", "40", "--export", str(tmp_path / "m.pt")]) == 0
    assert '"step": 40' in capsys.readouterr().out
    assert load_checkpoint(out / "last.pt")["step"] == 40
    assert (tmp_path / "m.pt").exists()


def test_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "ddim_book", "--help"], capture_output=True, text=True, check=True)
    assert "sample" in done.stdout and "train" in done.stdout


def test_pretrained_checks_the_manifest(tiny_model, tmp_path):
    root = tmp_path / "ckpt"
    root.mkdir()
    with pytest.raises(pretrained.PretrainedError, match="no model manifest"):
        pretrained.load("mnist", root=root)
    (root / "m.pt").write_bytes(tiny_model.read_bytes())
    record = {"file": "m.pt", "sha256": pretrained.sha256_of(tiny_model), "command": "ddim-book train"}
    (root / "manifest.json").write_text(json.dumps({"models": {"tiny": record}}))
    model, schedule = pretrained.load("tiny", root=root)
    assert not model.training and schedule.T == 50
    with torch.inference_mode():
        assert model(torch.zeros(1, 1, 28, 28), torch.tensor([5])).shape == (1, 1, 28, 28)
    with pytest.raises(pretrained.PretrainedError, match="unknown pretrained model 'mnist'"):
        pretrained.load("mnist", root=root)
    (root / "m.pt").write_bytes(tiny_model.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(pretrained.PretrainedError, match="corrupt"):
        pretrained.load("tiny", root=root)
    (root / "m.pt").unlink()
    with pytest.raises(pretrained.PretrainedError, match="missing"):
        pretrained.load("tiny", root=root)


def test_the_cli_lists_every_preset_and_spacing_the_package_knows():
    """The CLI writes these names out (importing them would import torch before --help); they must not drift."""
    from ddim_book import cli
    from ddim_book.subsequences import SPACINGS
    from ddim_book.training.presets import CONFIG_NAMES

    assert cli.CONFIGS == CONFIG_NAMES and cli.SPACINGS == SPACINGS


@pytest.mark.parametrize(
    "text, want",
    [("0", 0.0), (" 0.5", 0.5), ("sigma_hat", "sigma_hat"), (1, 1), ("-1", None), ("nan", None), ("x", None)],
)  # fmt: skip
def test_parse_eta_is_the_one_reading_of_eta(text, want):
    from ddim_book.samplers import parse_eta

    if want is None:
        with pytest.raises(ValueError, match="eta"):
            parse_eta(text)
    else:
        assert parse_eta(text) == want
