"""Tests of the denoisers: the DDPM U-Net, the 2-D MLP and the time embedding."""

from __future__ import annotations

import json

import pytest
import torch

from ddim_book.models import MLPDenoiser, SinusoidalTimeEmbedding, UNet, UNetConfig, build_model

T = 1000


def perturb(model: torch.nn.Module, std: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Give every all-zero parameter (the zero-initialised output layers, GroupNorm biases) random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


def small_config(**overrides) -> UNetConfig:
    return UNetConfig.named("mnist-tiny", **overrides)


@pytest.fixture
def x28() -> torch.Tensor:
    return torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_output_shape_28x28_one_channel(x28):
    model = UNet()
    assert model(x28, torch.tensor([1, 500, T])).shape == x28.shape


def test_output_shape_32x32_three_channels():
    cfg = UNetConfig(in_channels=3, image_size=32, base_channels=16, num_groups=4, attention_resolutions=(8, 16))
    model = perturb(UNet(cfg))
    x = torch.randn(2, 3, 32, 32)
    out = model(x, torch.tensor([7, 8]))
    assert out.shape == x.shape and torch.isfinite(out).all()
    six_out = UNetConfig(in_channels=3, out_channels=6, image_size=32, base_channels=16, attention_resolutions=())
    assert UNet(six_out)(x, 1).shape == (2, 6, 32, 32)


def test_zero_initialised_output_layer_gives_exactly_zero(x28):
    out = UNet()(x28, torch.tensor([1, 2, 3]))
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("scale_shift", [False, True])
def test_every_parameter_receives_gradient(x28, scale_shift):
    model = UNet(small_config(use_scale_shift=scale_shift))
    model(x28, torch.tensor([5, 50, 500])).pow(2).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    # With the zero-initialised layers perturbed, every parameter influences the loss.
    model = perturb(UNet(small_config(use_scale_shift=scale_shift)))
    (model(x28, torch.tensor([5, 50, 500])) - x28).pow(2).mean().backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert dead == []


@pytest.mark.parametrize("scale_shift", [False, True])
def test_time_conditioning_changes_the_output(x28, scale_shift):
    model = perturb(UNet(small_config(use_scale_shift=scale_shift))).eval()
    with torch.no_grad():
        early, late = model(x28, 1), model(x28, 700)
    assert (early - late).abs().max() > 1e-3 * early.abs().max()


def test_t_as_int_or_0d_tensor_is_broadcast(x28):
    model = perturb(UNet(small_config())).eval()
    with torch.no_grad():
        full = model(x28, torch.full((3,), 42))
        assert torch.equal(model(x28, 42), full)
        assert torch.equal(model(x28, torch.tensor(42)), full)
        assert torch.equal(model(x28, torch.full((3,), 42, dtype=torch.int32)), full)


def test_bf16_cpu_autocast_is_close_to_fp32(x28):
    model = perturb(UNet()).eval()
    t = torch.tensor([1, 300, T])
    with torch.no_grad():
        ref = model(x28, t)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            low = model(x28, t)
    assert torch.isfinite(low).all()
    assert (low.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_channels_last_matches_contiguous(x28):
    model = perturb(UNet()).eval()
    t = torch.tensor([3, 30, 300])
    with torch.no_grad():
        ref = model(x28, t)
        model = model.to(memory_format=torch.channels_last)
        out = model(x28.to(memory_format=torch.channels_last), t)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * ref.abs().max().item())


def test_half_precision_cast_keeps_float32_time_frequencies():
    model = UNet(small_config())
    before = model.time_embed.frequencies.clone()
    model = model.to(torch.bfloat16)
    assert model.time_embed.frequencies.dtype == torch.float32
    assert torch.equal(model.time_embed.frequencies, before)
    assert model(torch.randn(2, 1, 28, 28, dtype=torch.bfloat16), 9).dtype == torch.bfloat16
    with torch.device("meta"):
        shell = UNet(small_config())
    assert torch.equal(shell.to_empty(device="cpu").time_embed.frequencies, before)


def test_config_json_round_trip_and_rebuild():
    cfg = UNetConfig(channel_mults=[1, 2, 4], attention_resolutions=[7, 14], use_scale_shift=True)
    assert cfg.channel_mults == (1, 2, 4)
    restored = UNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert restored == cfg and isinstance(restored.attention_resolutions, tuple)
    model = UNet(cfg)
    rebuilt = build_model(model.kind, **json.loads(json.dumps(model.config_dict())))
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="unknown UNetConfig fields"):
        UNetConfig.from_dict({"image_size": 28, "channels": 3})
    with pytest.raises(ValueError, match="mnist-small"):
        UNetConfig.named("mnist-huge")


def test_parameter_counts():
    assert 200_000 <= UNet(UNetConfig.named("mnist-small")).num_parameters() <= 400_000
    with torch.device("meta"):  # no memory, no init cost
        ddpm_cifar10 = UNet(UNetConfig.named("cifar10-ddpm"))
    # The DDPM paper reports 35.7M parameters for this network.
    assert abs(ddpm_cifar10.num_parameters() - 35.7e6) < 0.05e6


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"image_size": 30}, "image_size"),
        ({"num_groups": 7}, "num_groups"),
        ({"attention_resolutions": (5,)}, "attention_resolutions"),
        ({"channel_mults": ()}, "channel_mults"),
        ({"channel_mults": (1, 0)}, "channel_mults"),
        ({"base_channels": 0}, "base_channels"),
        ({"base_channels": 36, "num_groups": 8}, "num_groups"),
        ({"base_channels": 33, "num_groups": 1}, "base_channels"),
        ({"num_heads": 3}, "num_heads"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": "0.1"}, "dropout"),
        ({"T": 0}, "T"),
        ({"in_channels": True}, "in_channels"),
        ({"out_channels": 0}, "out_channels"),
        ({"num_res_blocks": 0}, "num_res_blocks"),
    ],
)
def test_invalid_config_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        UNetConfig(**overrides)


def test_unet_rejects_non_config():
    with pytest.raises(TypeError, match="UNetConfig"):
        UNet({"image_size": 28})


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.randn(1, 28, 28), ValueError, r"\(B, 1, 28, 28\)"),
        (torch.randn(1, 3, 28, 28), ValueError, r"\(B, 1, 28, 28\)"),
        (torch.randn(1, 1, 32, 32), ValueError, r"\(B, 1, 28, 28\)"),
        (torch.zeros(1, 1, 28, 28, dtype=torch.long), TypeError, "floating-point"),
        ([[0.0]], TypeError, "floating-point"),
    ],
)
def test_forward_rejects_bad_x(x, error, match):
    with pytest.raises(error, match=match):
        UNet()(x, 1)


@pytest.mark.parametrize("model_kind", ["unet", "mlp"])
@pytest.mark.parametrize(
    ("t", "error", "match"),
    [
        (torch.tensor([1, 2]), ValueError, r"shape \(3,\)"),
        (torch.ones(3, 1, dtype=torch.long), ValueError, r"shape \(3,\)"),
        (torch.tensor([0, 1, 2]), ValueError, "1..T = 1..1000"),
        (torch.tensor([1, 2, T + 1]), ValueError, "1..T = 1..1000"),
        (0, ValueError, "1..T"),
        (T + 1, ValueError, "1..T"),
        (torch.tensor([1.0, 2.0, 3.0]), TypeError, "integer"),
        (torch.tensor([True, True, True]), TypeError, "integer"),
        (3.0, TypeError, "integer"),
        (True, TypeError, "integer"),
    ],
)
def test_forward_rejects_bad_t(model_kind, t, error, match):
    model, x = (
        (UNet(small_config()), torch.randn(3, 1, 28, 28))
        if model_kind == "unet"
        else (MLPDenoiser(), torch.randn(3, 2))
    )
    with pytest.raises(error, match=match):
        model(x, t)


def test_range_check_can_be_switched_off():
    model = UNet(small_config())
    model.check_inputs = False
    assert model(torch.randn(2, 1, 28, 28), torch.tensor([0, T + 1])).shape == (2, 1, 28, 28)


def test_describe_walks_every_resolution():
    model = UNet().train()
    shapes = model.describe()
    assert model.training
    names = [name for name, _ in shapes]
    assert names[:2] == ["time_mlp", "input_conv"] and names[-1] == "out_conv"
    assert {"down.2.attn.0", "mid.attn", "up.2.attn.1", "down.0.downsample", "up.1.upsample"} <= set(names)
    assert shapes[-1][1] == (1, 1, 28, 28)
    sizes = [shape[-1] for _, shape in shapes if len(shape) == 4]
    assert set(sizes) == {28, 14, 7}
    assert sizes.index(7) < len(sizes) - 1 - sizes[::-1].index(14)  # down to 7, then back up
    assert dict(model.describe((5, 1, 28, 28)))["mid.attn"] == (5, 32, 7, 7)


def test_batch_items_are_independent_in_eval_mode():
    model = perturb(UNet(small_config())).eval()
    x = torch.randn(4, 1, 28, 28)
    t = torch.tensor([1, 10, 100, 1000])
    with torch.no_grad():
        together = model(x, t)
        alone = torch.cat([model(x[i : i + 1], t[i : i + 1]) for i in range(4)])
        x_other = x.clone()
        x_other[1:] = torch.randn(3, 1, 28, 28) * 5
        changed_others = model(x_other, t)
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(changed_others[0], together[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(changed_others[1], together[1])


def test_construction_and_dropout_are_deterministic_under_manual_seed(x28):
    def run(seed):
        torch.manual_seed(seed)
        model = perturb(UNet(), seed=seed).train()  # dropout 0.1 is active
        return model.state_dict(), model(x28, torch.tensor([4, 40, 400]))

    (state_a, out_a), (state_b, out_b), (state_c, _) = run(0), run(0), run(1)
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert torch.equal(out_a, out_b)
    assert not torch.equal(state_a["input_conv.weight"], state_c["input_conv.weight"])


def test_mlp_denoiser_shapes_time_dependence_and_gradients():
    model = MLPDenoiser()
    x = torch.randn(16, 2)
    t = torch.randint(1, T + 1, (16,))
    out = model(x, t)
    assert out.shape == (16, 2)
    out.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.any() for p in model.parameters())
    with torch.no_grad():
        assert not torch.allclose(model(x, 1), model(x, 900))
    wide = build_model("mlp", dim=5, hidden=16, depth=1, T=50, time_embed_dim=8)
    assert wide(torch.randn(3, 5), 50).shape == (3, 5)
    assert build_model("mlp", **wide.config_dict()).num_parameters() == wide.num_parameters()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dim": 0}, "dim"),
        ({"depth": 0}, "depth"),
        ({"hidden": 2.5}, "hidden"),
        ({"T": -1}, "T"),
        ({"time_embed_dim": 7}, "time_embed_dim"),
    ],
)
def test_mlp_denoiser_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLPDenoiser(**kwargs)


def test_mlp_denoiser_rejects_bad_x():
    model = MLPDenoiser(dim=2)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        model(torch.randn(4, 3), 1)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        model(torch.randn(4, 2, 1), 1)
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.ones(4, 2, dtype=torch.long), 1)


def test_build_model_errors():
    with pytest.raises(ValueError, match=r"\['unet', 'mlp', 'unet2d'\]"):
        build_model("transformer")
    with pytest.raises(ValueError, match="width"):
        build_model("mlp", width=3)
    with pytest.raises(ValueError, match="image_size"):
        build_model("unet", image_size=30)
    assert isinstance(build_model("unet", base_channels=16, num_groups=4), UNet)


def test_sinusoidal_embedding_is_distinct_and_bounded():
    emb = SinusoidalTimeEmbedding(32)(torch.arange(1, T + 1))
    assert emb.shape == (T, 32) and emb.dtype == torch.float32
    assert emb.abs().max() <= 1.0
    # Nearest pair of distinct timesteps is still well separated.
    gaps = torch.cdist(emb, emb) + torch.eye(T) * 1e9
    assert gaps.min() > 1e-2
    assert "frequencies" not in SinusoidalTimeEmbedding(32).state_dict()
    with pytest.raises(ValueError, match="dim"):
        SinusoidalTimeEmbedding(5)


@pytest.mark.slow
def test_torch_compile_matches_eager(x28):
    model = perturb(UNet(small_config())).eval()
    t = torch.tensor([2, 20, 200])
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model)(x28, t), model(x28, t), rtol=1e-4, atol=1e-5)
