"""The Fréchet LeNet Distance (FLD) and classifier scores for generated MNIST digits (chapter 6).

FLD follows the recipe of FID (Heusel et al. 2017): fit a Gaussian to the features of generated images
and one to the features of real images, and report the Fréchet (2-Wasserstein) distance between the two
Gaussians. The features here are the 128-D penultimate layer of the book's small MNIST classifier
(:class:`~ddim_book.metrics.classifier.LeNet`), **not** the Inception-v3 pool features of FID: FLD is **not
FID**, and its values are not comparable to published FID numbers. Read an FLD beside its anchors
(:func:`fld_anchors`): real digits against real digits, and noise against real digits, at the same n.
FLD also depends on n (the covariance estimates are noisy), so compare numbers computed at the same n.
"""

from __future__ import annotations

import torch

from ddim_book._checks import as_float64, check_choice, check_int_range
from ddim_book.metrics.classifier import LeNet, check_images, load_classifier

__all__ = [
    "classifier_scores",
    "evaluate_samples",
    "feature_statistics",
    "fld_anchors",
    "fld_bootstrap",
    "fld_real_anchor",
    "frechet_distance",
    "frechet_lenet_distance",
]

_PARTS = ("held_out", "train", "all")


def _psd_sqrt(c: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix, via eigh.

    Rounding can leave eigenvalues of a PSD matrix slightly negative; they are clipped at 0 so the root is real.
    """
    vals, vecs = torch.linalg.eigh(0.5 * (c + c.T))
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2): the squared 2-Wasserstein distance

        d^2 = |mu1 - mu2|^2 + tr(C1) + tr(C2) - 2 tr((C1^{1/2} C2 C1^{1/2})^{1/2})

    (Dowson & Landau 1982; the FID formula of Heusel et al. 2017; chapter 6). The cross term uses the
    symmetric PSD matrix C1^{1/2} C2 C1^{1/2}, whose eigenvalues equal those of C1 C2, so one symmetric
    eigen-decomposition gives the trace of its square root; tiny negative eigenvalues from rounding are
    clipped at 0. Computed in float64; the result is clipped at 0 (it is a squared distance, in squared
    feature units, as FID reports it).

    Args:
        mu1, mu2: means, shape (d,). cov1, cov2: covariances, shape (d, d), symmetric PSD.
            Tensors, numpy arrays or nested lists.

    Returns:
        d^2 as a Python float.
    """
    mu1, mu2 = as_float64("mu1", mu1, 1), as_float64("mu2", mu2, 1)
    cov1, cov2 = as_float64("cov1", cov1, 2), as_float64("cov2", cov2, 2)
    d = mu1.shape[0]
    for name, m in (("mu2", mu2), ("cov1", cov1), ("cov2", cov2)):
        want = (d,) if m.ndim == 1 else (d, d)
        if tuple(m.shape) != want:
            raise ValueError(f"{name} must have shape {want} to match mu1 of shape ({d},), got {tuple(m.shape)}")
    for name, c in (("cov1", cov1), ("cov2", cov2)):
        scale = float(c.abs().max()) or 1.0
        if float((c - c.T).abs().max()) > 1e-6 * scale:
            raise ValueError(f"{name} must be symmetric (a covariance matrix)")
    root1 = _psd_sqrt(cov1)
    cross = root1 @ cov2 @ root1
    eig = torch.linalg.eigvalsh(0.5 * (cross + cross.T))
    trace_sqrt = float(eig.clamp_min(0).sqrt().sum())
    d2 = float(((mu1 - mu2) ** 2).sum()) + float(torch.trace(cov1)) + float(torch.trace(cov2)) - 2.0 * trace_sqrt
    return max(d2, 0.0)


def _default_classifier(classifier: LeNet | None) -> LeNet:
    if classifier is None:
        return load_classifier()
    if not isinstance(classifier, LeNet):
        raise TypeError(f"classifier must be a ddim_book.metrics.LeNet, got {type(classifier).__name__}")
    return classifier


@torch.no_grad()
def _run(classifier: LeNet, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, d) float64, logits (N, 10) float64) on the CPU, classifier in eval mode throughout."""
    batch_size = check_int_range("batch_size", batch_size, 1, 1 << 20)
    was_training = classifier.training
    classifier.eval()
    device = next(classifier.parameters()).device
    feats, logits = [], []
    for start in range(0, images.shape[0], batch_size):
        f = classifier.features(images[start : start + batch_size].to(device))
        feats.append(f.double().cpu())
        logits.append(classifier.fc2(f).double().cpu())
    classifier.train(was_training)
    return torch.cat(feats), torch.cat(logits)


def feature_statistics(images, classifier: LeNet | None = None, batch_size: int = 500):
    """Mean and covariance of the classifier features of ``images``.

    Args:
        images: float tensor (N, 1, 28, 28) with values in [-1, 1], N >= 2.
        classifier: a LeNet; default the shipped one (:func:`~ddim_book.metrics.classifier.load_classifier`).

    Returns:
        ``(mu, cov)``: float64 tensors (d,) and (d, d); cov is the unbiased (N - 1) sample covariance.
    """
    return _statistics("images", images, classifier, batch_size)


def _statistics(name: str, images, classifier: LeNet | None, batch_size: int):
    """:func:`feature_statistics`, with errors naming the caller's argument ``name``."""
    images = check_images(name, images)
    if images.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 images for a covariance, got {images.shape[0]}")
    feats, _ = _run(_default_classifier(classifier), images, batch_size)
    mu = feats.mean(0)
    centred = feats - mu
    return mu, centred.T @ centred / (feats.shape[0] - 1)


def _reference_images(reference) -> torch.Tensor:
    """A reference set: a part name of the shipped MNIST ("held_out", "train", "all") or an image tensor."""
    if isinstance(reference, str):
        from ddim_book.data import mnist_dataset

        return mnist_dataset(check_choice("reference", reference, _PARTS))[0]
    return reference


def frechet_lenet_distance(
    generated, reference="held_out", classifier: LeNet | None = None, batch_size: int = 500
) -> float:
    """Fréchet LeNet Distance (FLD) between generated digits and real ones: lower is better, 0 for equal statistics.

    FLD = :func:`frechet_distance` between Gaussians fitted to the LeNet features of the two image sets.
    It is **not FID**: the feature network is the book's MNIST classifier, not Inception-v3, so its numbers
    cannot be compared with published FID values; compare it with :func:`fld_anchors` at the same n.

    Args:
        generated: float tensor (N, 1, 28, 28) in [-1, 1] (clip sampler output first), N >= 2.
        reference: real images (M, 1, 28, 28) in [-1, 1], or the name of a shipped MNIST part
            (``"held_out"``: the 1,000 digits no model in the book trains on; ``"train"``; ``"all"``).
        classifier: a LeNet; default the shipped one.
    """
    classifier = _default_classifier(classifier)
    mu1, cov1 = _statistics("generated", generated, classifier, batch_size)
    mu2, cov2 = _statistics("reference", _reference_images(reference), classifier, batch_size)
    return frechet_distance(mu1, cov1, mu2, cov2)


def fld_anchors(classifier: LeNet | None = None, n: int = 500, seed: int = 0) -> dict:
    """Two FLD values to read a reported FLD against, both measured against the same real reference set.

    The 1,000 held-out digits are cut into halves by position (``held_out[:500]`` and ``held_out[500:]``);
    the second half is the reference. ``real_vs_real`` is the FLD of the first ``n`` digits of the first half
    against it (a perfect generator would score about this); ``noise_vs_real`` is the FLD of ``n`` images of
    standard Gaussian noise clipped to [-1, 1] (drawn from a generator seeded with ``seed``) against it.

    Args:
        n: images on the compared side, 2..500. FLD grows as n shrinks, so quote anchors at the n of the number.

    Returns:
        ``{"real_vs_real", "noise_vs_real", "n", "real", "reference"}`` (the last two name the index ranges).
    """
    from ddim_book.data import mnist_dataset

    n = check_int_range("n", n, 2, 500)
    classifier = _default_classifier(classifier)
    held = mnist_dataset("held_out")[0]
    half = held.shape[0] // 2
    mu_ref, cov_ref = feature_statistics(held[half:], classifier)
    mu_real, cov_real = feature_statistics(held[:n], classifier)
    noise = torch.randn((n, 1, 28, 28), generator=torch.Generator().manual_seed(seed)).clamp(-1.0, 1.0)
    mu_noise, cov_noise = feature_statistics(noise, classifier)
    return {
        "real_vs_real": frechet_distance(mu_real, cov_real, mu_ref, cov_ref),
        "noise_vs_real": frechet_distance(mu_noise, cov_noise, mu_ref, cov_ref),
        "n": n,
        "real": f"held_out[0:{n}]",
        "reference": f"held_out[{half}:{held.shape[0]}]",
    }


def classifier_scores(images, classifier: LeNet | None = None, min_share: float = 0.05, batch_size: int = 500):
    """How confidently, and how evenly over the ten digits, the classifier reads ``images``.

    Args:
        images: float tensor (N, 1, 28, 28) in [-1, 1].
        min_share: a class counts as covered when at least this fraction of the images is predicted as it.

    Returns:
        dict with ``confidence`` (mean over images of the largest softmax probability, in [0.1, 1]),
        ``coverage`` (number of classes, 0..10, predicted for at least ``min_share`` of the images),
        ``class_entropy`` (entropy in nats of the predicted-class histogram; ln 10 = 2.303 when uniform,
        0 when every image gets one class) and ``class_histogram`` (list of 10 counts, digit 0 first).
    """
    images = check_images("images", images)
    if not (isinstance(min_share, int | float) and 0.0 < float(min_share) <= 1.0):
        raise ValueError(f"min_share must be a fraction in (0, 1], got {min_share!r}")
    _, logits = _run(_default_classifier(classifier), images, batch_size)
    probs = torch.softmax(logits, dim=1)
    counts = torch.bincount(probs.argmax(1), minlength=10)
    share = counts.double() / counts.sum()
    nonzero = share[share > 0]
    return {
        "confidence": float(probs.max(1).values.mean()),
        "coverage": int((share >= float(min_share)).sum()),
        "class_entropy": float(-(nonzero * nonzero.log()).sum()),
        "class_histogram": [int(c) for c in counts],
    }


def evaluate_samples(
    images, classifier: LeNet | None = None, reference="held_out", anchors: bool = False, batch_size: int = 500
) -> dict:
    """Every MNIST sample-quality number of the book for one set of generated digits (chapter 6).

    Args:
        images: generated digits, float tensor (N, 1, 28, 28) in [-1, 1], N >= 2.
        reference: real images or a shipped part name, as in :func:`frechet_lenet_distance`.
        anchors: also compute :func:`fld_anchors` at n = min(N, 500) (note that they use a 500-digit
            reference, the sample's FLD the whole ``reference``).

    Returns:
        dict with ``fld``, ``confidence``, ``coverage``, ``class_entropy``, ``class_histogram``, ``n`` and
        ``reference`` (its part name or its size), plus ``anchors`` when asked.
    """
    classifier = _default_classifier(classifier)
    images = check_images("images", images)
    ref = _reference_images(reference)
    result = {"fld": frechet_lenet_distance(images, ref, classifier, batch_size)}
    result.update(classifier_scores(images, classifier, batch_size=batch_size))
    result["n"] = int(images.shape[0])
    result["reference"] = reference if isinstance(reference, str) else f"{int(ref.shape[0])} images"
    if anchors:
        result["anchors"] = fld_anchors(classifier, n=max(2, min(images.shape[0], 500)))
    return result


def fld_bootstrap(
    generated,
    reference="held_out",
    classifier: LeNet | None = None,
    reps: int = 200,
    level: float = 0.95,
    seed=0,
    keep_values: bool = False,
) -> dict:
    """FLD with a bootstrap interval over the generated images (the reference set is held fixed).

    The generated features are resampled with replacement ``reps`` times and the FLD recomputed. Resampling
    repeats images, which shrinks their covariance and biases every resampled FLD upwards, so the
    percentiles of the resampled values do not bracket the FLD itself; their spread does measure how much
    the FLD of this many images moves when the images are redrawn. The interval is therefore the normal
    one, ``fld +- z * sd`` (z = 1.96 for ``level`` = 0.95) with sd the standard deviation of the resampled
    values: two FLDs whose intervals overlap are not told apart.

    The resampled indices depend only on ``seed`` and n, so two calls with the same seed and n resample the
    same positions: when image i of both sets grew from the same x_T, ``keep_values=True`` returns the
    resampled values (``"values"``) that :func:`ddim_book.metrics.paired_difference` turns into an interval
    for the *difference* of the two FLDs, much narrower than the two intervals side by side.

    Returns:
        ``{"fld", "low", "high", "sd", "reps", "level", "n"}`` (``fld`` is the FLD of the images themselves),
        plus ``"values"`` (a list of ``reps`` floats) with ``keep_values``.
    """
    reps = check_int_range("reps", reps, 10, 100_000)
    if not (isinstance(level, float) and 0.5 <= level < 1.0):
        raise ValueError(f"level must be a float in [0.5, 1), got {level!r}")
    classifier = _default_classifier(classifier)
    images = check_images("generated", generated)
    if images.shape[0] < 2:
        raise ValueError(f"generated needs at least 2 images, got {images.shape[0]}")
    feats, _ = _run(classifier, images, 500)
    mu_ref, cov_ref = _statistics("reference", _reference_images(reference), classifier, 500)

    def fld_of(f: torch.Tensor) -> float:
        centred = f - f.mean(0)
        return frechet_distance(f.mean(0), centred.T @ centred / (f.shape[0] - 1), mu_ref, cov_ref)

    gen = torch.Generator().manual_seed(seed)
    n = feats.shape[0]
    values = torch.tensor([fld_of(feats[torch.randint(0, n, (n,), generator=gen)]) for _ in range(reps)])
    z = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + level / 2.0)))
    fld, sd = fld_of(feats), float(values.std())
    low, high = max(fld - z * sd, 0.0), fld + z * sd
    out = {"fld": fld, "low": low, "high": high, "sd": sd, "reps": reps, "level": level, "n": n}
    return out | {"values": values.tolist()} if keep_values else out


def fld_real_anchor(n: int, classifier: LeNet | None = None, seed: int = 0) -> float:
    """FLD of ``n`` real training digits (a seeded random choice) against all 1,000 held-out digits.

    A generator that drew exactly from the training distribution would score about this at the same n,
    so it is the floor that a model's FLD against ``"held_out"`` is read against; n up to 9,000.
    """
    from ddim_book.data import mnist_dataset

    train = mnist_dataset("train")[0]
    n = check_int_range("n", n, 2, train.shape[0])
    pick = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    return frechet_lenet_distance(train[pick], "held_out", _default_classifier(classifier))
