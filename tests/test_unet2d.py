"""Model kind ``"unet2d"``: diffusers' UNet2DModel behind the book's interface (t in 1..T, reaching it as t - 1),
rebuilt from its config, trained and resumed by the Trainer, and a clear error when diffusers is missing."""

import sys

import pytest
import torch

from ddim_book.models import UNetConfig, build_model
from ddim_book.models.unet2d import INSTALL_HINT, DiffusersUNet, matched_unet2d, unet2d_arguments
from ddim_book.training import Trainer, get_config, load_model


@pytest.fixture(scope="module")
def tiny():
    config = UNetConfig.from_dict(get_config("mnist-tiny").model)
    torch.manual_seed(0)
    return DiffusersUNet(T=1000, **unet2d_arguments(config, config.base_channels, 1)).eval(), config


def test_our_t_reaches_unet2d_as_t_minus_one(tiny):
    model, _ = tiny
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([1, 500, 1000])
    with torch.inference_mode():
        out = model(x, t)
        assert out.shape == x.shape
        torch.testing.assert_close(out, model.net(x, t - 1, return_dict=False)[0])
        assert not torch.allclose(out, model.net(x, t, return_dict=False)[0])
        torch.testing.assert_close(model(x, 7), model(x, torch.full((3,), 7)))


@pytest.mark.parametrize("bad", [0, 1001, torch.tensor([0, 1, 2])])
def test_timesteps_outside_1_to_T_are_refused(tiny, bad):
    model, _ = tiny
    with pytest.raises(ValueError, match="1..T"):
        model(torch.randn(3, 1, 28, 28), bad)


def test_bad_arguments_and_inputs_raise_clear_errors(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match="invalid UNet2DModel arguments"):
        DiffusersUNet(T=10, no_such_argument=1)
    with pytest.raises(ValueError, match="T must be a positive integer"):
        DiffusersUNet(T=0)
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(28, 28), 1)


def test_build_model_rebuilds_the_architecture(tiny):
    model, _ = tiny
    again = build_model(model.kind, **model.config_dict())
    assert again.num_parameters() == model.num_parameters() > 0
    again.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 28, 28)
    with torch.inference_mode():
        torch.testing.assert_close(again.eval()(x, 3), model(x, 3))


def test_matched_unet2d_is_within_ten_percent_of_our_parameters():
    config = UNetConfig.from_dict(get_config("mnist-small").model)
    arguments, info = matched_unet2d(config)
    assert info["within_10_percent"] and abs(info["theirs_parameters"] / info["ours_parameters"] - 1) <= 0.10
    assert DiffusersUNet(**arguments).num_parameters() == info["theirs_parameters"]
    assert len(info["tried"]) == 10 and info["settings"] in info["tried"]


def test_trainer_trains_checkpoints_and_resumes_unet2d_bit_identically(tmp_path):
    config = UNetConfig.from_dict(get_config("mnist-tiny").model)
    arguments = unet2d_arguments(config, config.base_channels, 1)
    train = get_config("mnist-tiny", model_kind="unet2d", model=arguments, total_steps=4, sample_every=0,
                       batch_size=8, log_every=2)  # fmt: skip
    whole = Trainer(train, tmp_path / "whole", progress=False)
    whole.train()
    part = Trainer(train, tmp_path / "part", progress=False)
    part.train(max_steps=2)
    resumed = Trainer(train, tmp_path / "part", progress=False)
    assert resumed.step == 2
    resumed.train()
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    model, _ = load_model(tmp_path / "whole" / "last.pt")
    assert isinstance(model, DiffusersUNet) and not model.training


def test_without_diffusers_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes `import diffusers` raise ImportError
    with pytest.raises(ImportError, match=r"pip install -e '\.\[bench\]'"):
        build_model("unet2d", sample_size=28)
    assert "diffusers" in INSTALL_HINT
