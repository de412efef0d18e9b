"""Tests of ddim_book.metrics: the Fréchet distance, the shipped classifier, FLD and its anchors, 2-D distances."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import scipy.linalg
import torch

from ddim_book.data import mnist_dataset
from ddim_book.metrics import (
    ClassifierFileError,
    LeNet,
    accuracy,
    classifier_scores,
    evaluate_samples,
    feature_statistics,
    fld_anchors,
    fld_bootstrap,
    frechet_distance,
    frechet_lenet_distance,
    load_classifier,
    mmd_rbf,
    paired_difference,
    paired_fld_change,
    sliced_wasserstein,
    train_classifier,
)
from ddim_book.metrics.classifier import default_classifier_path, random_shift, save_classifier
from ddim_book.oracles import GaussianMixtureOracle


def random_psd(d: int, rank: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, rank, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T


@pytest.fixture(scope="module")
def shipped():
    return load_classifier()


@pytest.fixture(scope="module")
def held_out():
    return mnist_dataset("held_out")


# ---------------------------------------------------------------- frechet_distance


def test_frechet_zero_for_identical_statistics():
    mu, cov = torch.randn(6, dtype=torch.float64), random_psd(6, 6, 0)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("m1", "s1", "m2", "s2"), [(0.0, 1.0, 0.0, 1.0), (1.0, 2.0, -0.5, 0.3), (3.0, 0.0, 1.0, 4.0)])
def test_frechet_matches_closed_form_in_1d(m1, s1, m2, s2):
    got = frechet_distance([m1], [[s1**2]], [m2], [[s2**2]])
    assert got == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-10, abs=1e-12)


def test_frechet_matches_closed_form_for_diagonal_covariances():
    g = torch.Generator().manual_seed(1)
    m1, m2 = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    s1, s2 = torch.rand(5, generator=g, dtype=torch.float64) + 0.1, torch.rand(5, generator=g, dtype=torch.float64)
    expected = float(((m1 - m2) ** 2).sum() + ((s1 - s2) ** 2).sum())
    assert frechet_distance(m1, torch.diag(s1**2), m2, torch.diag(s2**2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_matches_scipy_sqrtm_symmetric_and_nonnegative():
    mu1, mu2 = torch.zeros(8, dtype=torch.float64), torch.full((8,), 0.1, dtype=torch.float64)
    c1, c2 = random_psd(8, 8, 2), random_psd(8, 3, 3)  # c2 singular: its zero eigenvalues round to +-1e-16
    root = scipy.linalg.sqrtm(c1.numpy() @ c2.numpy())
    expected = 0.08 + float(np.trace(c1.numpy() + c2.numpy()) - 2 * np.real(np.trace(root)))
    d12, d21 = frechet_distance(mu1, c1, mu2, c2), frechet_distance(mu2, c2, mu1, c1)
    assert d12 == pytest.approx(expected, rel=1e-6)
    assert d12 == pytest.approx(d21, rel=1e-8)
    assert d12 > 0
    for seed in range(5):
        c = random_psd(4, 1, 10 + seed)
        assert frechet_distance(torch.zeros(4), c, torch.zeros(4), c * (1 + 1e-12)) >= 0.0


def test_frechet_rejects_bad_input():
    mu, cov = np.zeros(3), np.eye(3)
    with pytest.raises(ValueError, match="cov2 must have shape"):
        frechet_distance(mu, cov, mu, np.eye(4))
    with pytest.raises(ValueError, match="mu1 must have 1 dimension"):
        frechet_distance(cov, cov, mu, cov)
    with pytest.raises(ValueError, match="symmetric"):
        frechet_distance(mu, np.triu(np.ones((3, 3))), mu, cov)
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan, 0, 0]), cov, mu, cov)


# ---------------------------------------------------------------- the shipped classifier


def test_shipped_classifier_accuracy_and_record(shipped, held_out):
    record = json.loads(default_classifier_path().with_suffix(".json").read_text())
    assert isinstance(shipped, LeNet) and not shipped.training
    acc = accuracy(shipped, *held_out)
    assert acc >= 0.98
    assert acc == pytest.approx(record["held_out_accuracy"], abs=0.002)  # float16 storage barely moves it
    assert default_classifier_path().stat().st_size == record["size_bytes"] < 1_000_000
    assert shipped.features(held_out[0][:3]).shape == (3, record["architecture"]["feature_dim"])


def test_load_classifier_detects_corruption_and_missing_files(tmp_path):
    src = default_classifier_path()
    pt, js = tmp_path / src.name, tmp_path / src.with_suffix(".json").name
    shutil.copy(src, pt)
    shutil.copy(src.with_suffix(".json"), js)
    load_classifier(pt)  # the intact copy loads
    raw = bytearray(pt.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    pt.write_bytes(bytes(raw))
    with pytest.raises(ClassifierFileError, match="fail their checksum: sha256"):
        load_classifier(pt)
    js.unlink()
    with pytest.raises(ClassifierFileError, match="record .* is missing"):
        load_classifier(pt)
    with pytest.raises(ClassifierFileError, match="are missing"):
        load_classifier(tmp_path / "absent.pt")
    (tmp_path / "foreign.pt").write_bytes(b"not a torch file")
    with pytest.raises(ClassifierFileError, match="not a saved MNIST classifier"):
        load_classifier(tmp_path / "foreign.pt", verify=False)


def test_train_classifier_is_deterministic_and_round_trips(tmp_path, held_out):
    x, y = held_out[0][:24], held_out[1][:24]
    before = torch.get_rng_state()
    kwargs = dict(epochs=2, seed=3, batch_size=8, max_steps=4, images=x, labels=y, channels=(4, 8), feature_dim=16)
    a, history = train_classifier(**kwargs)
    b, _ = train_classifier(**kwargs)
    c, _ = train_classifier(**{**kwargs, "seed": 4})
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG stream is untouched
    assert len(history) == 2 and all(math.isfinite(h["loss"]) for h in history)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    record = save_classifier(a, tmp_path / "tiny.pt", {"seed": 3})
    loaded = load_classifier(tmp_path / "tiny.pt")
    assert record["seed"] == 3 and record["architecture"]["channels"] == [4, 8]
    torch.testing.assert_close(loaded(x), a(x), atol=0.05, rtol=0.05)


def test_random_shift_moves_a_pixel_by_at_most_max_shift():
    x = torch.full((50, 1, 28, 28), -1.0)
    x[:, 0, 14, 14] = 1.0
    g = torch.Generator().manual_seed(0)
    assert torch.equal(random_shift(x, 0, g), x)
    shifted = random_shift(x, 2, g)
    assert shifted.shape == x.shape and bool(((shifted == 1.0).sum((1, 2, 3)) == 1).all())
    rows, cols = (shifted[:, 0] == 1.0).nonzero()[:, 1:].T
    assert int((rows - 14).abs().max()) <= 2 and int((cols - 14).abs().max()) <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 5  # the offsets really vary


# ---------------------------------------------------------------- FLD and the classifier scores


def test_fld_anchors_separate_real_from_noise(shipped):
    anchors = fld_anchors(shipped, n=500)
    assert anchors["n"] == 500 and anchors["reference"] == "held_out[500:1000]"
    assert 0 < anchors["real_vs_real"] < anchors["noise_vs_real"] / 20


def test_fld_zero_for_the_same_images_and_grows_with_noise(shipped, held_out):
    x = held_out[0][:300]
    assert frechet_lenet_distance(x, x, shipped) == pytest.approx(0.0, abs=1e-6)
    noisy = (x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    (mu, cov), (mu_noisy, cov_noisy) = feature_statistics(x, shipped), feature_statistics(noisy, shipped)
    mu_ref, cov_ref = feature_statistics(held_out[0][500:], shipped)
    assert mu.dtype == cov.dtype == torch.float64 and mu.shape == (128,) and torch.allclose(cov, cov.T)
    assert frechet_distance(mu_noisy, cov_noisy, mu_ref, cov_ref) > 2 * frechet_distance(mu, cov, mu_ref, cov_ref)


def test_classifier_scores_on_real_digits_and_on_one_repeated_digit(shipped, held_out):
    x, y = held_out
    scores = classifier_scores(x, shipped)
    assert scores["confidence"] > 0.9 and scores["coverage"] == 10
    assert scores["class_histogram"] == [int(c) for c in torch.bincount(shipped(x).argmax(1), minlength=10)]
    assert scores["class_entropy"] > 0.95 * math.log(10)
    one = x[y == 3][:1].repeat(40, 1, 1, 1)
    scores = classifier_scores(one, shipped)
    assert scores["coverage"] == 1 and scores["class_entropy"] == 0.0 and scores["class_histogram"][3] == 40


def test_evaluate_samples_reports_everything(shipped, held_out):
    result = evaluate_samples(held_out[0][:200], shipped, reference=held_out[0][500:], anchors=True)
    assert {"fld", "confidence", "coverage", "class_entropy", "class_histogram", "n", "anchors"} <= set(result)
    assert result["n"] == 200 and result["anchors"]["n"] == 200 and sum(result["class_histogram"]) == 200
    assert result["fld"] < result["anchors"]["noise_vs_real"] / 10


def test_paired_bootstrap_gives_a_narrower_interval_for_the_difference(shipped):
    x = mnist_dataset("train")[0][:400]
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    a = fld_bootstrap(x, classifier=shipped, keep_values=True, seed=3)
    b = fld_bootstrap(y, classifier=shipped, keep_values=True, seed=3)
    assert len(a["values"]) == 200 and a["sd"] == pytest.approx(float(torch.tensor(a["values"]).std()), rel=1e-6)
    same = paired_difference(a, a)
    assert same["diff"] == 0.0 and same["sd"] == 0.0 and same["low"] == same["high"] == 0.0
    paired = paired_difference(b, a)
    assert paired["diff"] == pytest.approx(b["fld"] - a["fld"]) and paired["diff"] > 0  # noise makes digits worse
    assert paired["sd"] < 0.8 * min(a["sd"], b["sd"])
    # the same images resampled at other positions: no pairing, so the spread of the differences is the sum's
    unpaired = paired_difference(a, fld_bootstrap(x, classifier=shipped, keep_values=True, seed=4))
    assert unpaired["diff"] == 0.0 and unpaired["sd"] > a["sd"]
    with pytest.raises(ValueError, match="keep_values"):
        paired_difference(a, fld_bootstrap(x, classifier=shipped, seed=3))
    with pytest.raises(ValueError, match="equal n"):
        paired_difference(a, fld_bootstrap(x[:300], classifier=shipped, keep_values=True, seed=3))


def test_paired_fld_change_reads_stored_scores():
    a = {"fld": 12.0, "n": 5, "fld_boot": [12.0, 13.0, 11.5, 12.5, 12.2, 11.9, 12.8, 12.1, 11.7, 12.4]}
    b = {"fld": 10.0, "n": 5, "fld_boot": [v - 2.0 + 0.01 * i for i, v in enumerate(a["fld_boot"])]}
    change = paired_fld_change(a, b)
    assert change["diff"] == pytest.approx(2.0) and change["excludes_zero"]
    assert change == paired_difference({**a, "values": a["fld_boot"]}, {**b, "values": b["fld_boot"]})
    assert not paired_fld_change(a, a)["excludes_zero"]


def test_image_metrics_reject_bad_images(shipped, held_out):
    x = held_out[0][:10]
    with pytest.raises(ValueError, match=r"values in \[-1, 1\]"):
        feature_statistics((x + 1) * 127.5, shipped)
    with pytest.raises(ValueError, match=r"shape \(N, 1, 28, 28\)"):
        classifier_scores(x[:, 0], shipped)
    with pytest.raises(TypeError, match="generated must be a floating-point"):
        frechet_lenet_distance(x.to(torch.uint8), x, shipped)
    with pytest.raises(ValueError, match="reference must hold pixel values"):
        frechet_lenet_distance(x, x * 2, shipped)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_samples(torch.full_like(x, float("nan")), shipped)
    with pytest.raises(ValueError, match="unknown reference"):
        frechet_lenet_distance(x, "test", shipped)
    with pytest.raises(TypeError, match="LeNet"):
        feature_statistics(x, torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="n must be in 2..500"):
        fld_anchors(shipped, n=501)


# ---------------------------------------------------------------- 2-D distances


@pytest.fixture(scope="module")
def ring_samples():
    oracle = GaussianMixtureOracle.ring_2d()
    g = torch.Generator().manual_seed(0)
    return oracle.sample(600, generator=g), oracle.sample(600, generator=g)


def test_sliced_wasserstein_same_vs_shifted(ring_samples):
    a, b = ring_samples
    shifted = b + torch.tensor([0.6, 0.0], dtype=torch.float64)
    same, moved = sliced_wasserstein(a, b), sliced_wasserstein(a, shifted)
    assert same < 0.15 and moved > 3 * same
    assert sliced_wasserstein(a, a) == 0.0
    assert sliced_wasserstein(a, torch.cat([a, a])) == pytest.approx(0.0, abs=1e-12)  # N != M, same measure
    assert sliced_wasserstein(a, b[:400]) < 0.15


def test_sliced_wasserstein_of_a_translation_in_1d_is_its_length():
    x = torch.randn(300, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert sliced_wasserstein(x, x + 0.7, n_projections=4) == pytest.approx(0.7, rel=1e-10)
    assert sliced_wasserstein(x, x + 0.7, p=1.0) == pytest.approx(0.7, rel=1e-10)


def test_mmd_same_vs_shifted_and_closed_form(ring_samples):
    a, b = ring_samples
    shifted = b + torch.tensor([0.6, 0.0], dtype=torch.float64)
    same, moved = mmd_rbf(a, b), mmd_rbf(a, shifted)
    assert moved > 5 * same and same < 5e-3
    assert mmd_rbf(a, a) == 0.0 and mmd_rbf(a.numpy(), b.numpy()) == pytest.approx(mmd_rbf(b, a), rel=1e-12)
    p, q, h = torch.zeros(1, 2, dtype=torch.float64), torch.tensor([[0.3, 0.4]], dtype=torch.float64), 0.5
    assert mmd_rbf(p, q, bandwidths=h) == pytest.approx(2 - 2 * math.exp(-0.25 / (2 * h**2)), rel=1e-12)


def test_distances_reject_bad_input(ring_samples):
    a, b = ring_samples
    with pytest.raises(ValueError, match=r"x must have shape \(N, D\)"):
        sliced_wasserstein(a[:, 0], b)
    with pytest.raises(ValueError, match="y must have D = 2"):
        mmd_rbf(a, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="bandwidths must be positive"):
        mmd_rbf(a, b, bandwidths=(1.0, 0.0))
    with pytest.raises(ValueError, match="p must be a finite number >= 1"):
        sliced_wasserstein(a, b, p=0.5)
    with pytest.raises(ValueError, match="n_projections must be in"):
        sliced_wasserstein(a, b, n_projections=0)
    with pytest.raises(ValueError, match="NaN"):
        mmd_rbf(torch.full((3, 2), float("nan")), b)
    with pytest.raises(TypeError, match="real numbers"):
        sliced_wasserstein(torch.zeros(3, 2, dtype=torch.bool), b)


def test_fold_ring_is_invariant_under_the_ring_symmetries():
    from ddim_book.metrics import fold_ring

    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    turn = 2 * math.pi / 8
    rotate = torch.tensor([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]], dtype=torch.float64)
    reflect = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    folded = fold_ring(x)
    torch.testing.assert_close(fold_ring(x @ rotate.T), folded)
    torch.testing.assert_close(fold_ring(x @ reflect.T), folded)
    angle = torch.atan2(folded[:, 1], folded[:, 0])
    assert bool((angle >= -1e-12).all()) and bool((angle <= math.pi / 8 + 1e-12).all())
    torch.testing.assert_close(folded.norm(dim=1), x.norm(dim=1))
