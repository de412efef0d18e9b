"""Shipping a model: the manifest always names a complete file with its checksum; the card follows the manifest."""

import json
import shutil
from pathlib import Path

import pytest

from ddim_book import model_card, pretrained, shipping
from ddim_book.training import Trainer, get_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    shutil.copytree(REPO / "data" / "checkpoints", root)
    monkeypatch.setenv("DDIM_BOOK_CHECKPOINTS", str(root))
    return root


def _run(tmp_path, name: str, steps: int) -> Path:
    run = tmp_path / name
    Trainer(get_config("mnist-tiny", total_steps=steps), run, progress=False).train()
    return run


def test_shipping_switches_the_manifest_and_removes_the_old_file(checkpoints, tmp_path):
    before = pretrained.entry("mnist")
    entry = shipping.ship(_run(tmp_path, "a", 2))
    assert pretrained.entry("mnist") == entry and (checkpoints / entry["file"]).exists()
    assert pretrained.sha256_of(checkpoints / entry["file"]) == entry["sha256"]
    assert entry["file"] == f"mnist_unet-{entry['sha256'][:12]}.pt"
    assert not (checkpoints / before["file"]).exists()
    assert entry["images_seen"] == 2 * 16 and entry["training_steps"] == 2
    model, schedule = pretrained.load("mnist")
    assert schedule.T == 1000 and model.config.base_channels == 8
    second = shipping.ship(_run(tmp_path, "b", 3))
    assert not (checkpoints / entry["file"]).exists() and (checkpoints / second["file"]).exists()
    assert not list(checkpoints.glob(".*.tmp")) and not list(checkpoints.glob(".*staged*"))


def test_a_failed_switch_keeps_the_old_model_shipped(checkpoints, tmp_path, monkeypatch):
    before = pretrained.entry("mnist")
    files_before = sorted(p.name for p in checkpoints.iterdir())

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(shipping, "write_manifest", fail)
    with pytest.raises(OSError, match="disk full"):
        shipping.ship(_run(tmp_path, "a", 2))
    assert pretrained.entry("mnist") == before
    assert sorted(p.name for p in checkpoints.iterdir()) == files_before
    pretrained.load("mnist")  # still loads, checksum and all


def test_the_card_is_generated_from_the_manifest(checkpoints, tmp_path):
    entry = shipping.ship(_run(tmp_path, "a", 2))
    card = (checkpoints / model_card.CARD_NAME).read_text()
    assert card == model_card.render("mnist", entry)
    assert entry["sha256"] in card and f"{entry['images_seen']:,} images" in card


def test_the_shipped_card_matches_the_shipped_manifest():
    manifest = json.loads((REPO / "data" / "checkpoints" / "manifest.json").read_text())
    card = (REPO / "data" / "checkpoints" / model_card.CARD_NAME).read_text()
    assert card == model_card.render("mnist", manifest["models"]["mnist"]), "regenerate it: scripts/ship_model.py"


def test_target_verdicts_read_the_scores():
    good = {"fld_ratio": 1.2, "confidence": 0.97, "class_shares": [0.1] * 10}
    bad = {"fld_ratio": 1.6, "confidence": 0.90, "class_shares": [0.05] + [0.95 / 9] * 9}
    verdicts = model_card.target_verdicts({"DDIM S=50, eta=0": good, "DDIM S=10, eta=0": bad})
    assert [ok for _, _, ok in verdicts] == [True, True, False, True]
    verdicts = model_card.target_verdicts({"DDIM S=50, eta=0": bad})
    assert [ok for _, _, ok in verdicts] == [False, False, None, False]
