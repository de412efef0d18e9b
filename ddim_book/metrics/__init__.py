"""Sample-quality metrics (chapter 6 and appendix A).

- MNIST: the Fréchet LeNet Distance (FLD, *not* FID: a small MNIST classifier's features replace
  Inception-v3's, so the numbers are not comparable to published FIDs), with its real-vs-real and
  noise-vs-real anchors, and the classifier's confidence and class coverage (:mod:`.frechet`), built on
  the shipped classifier (:mod:`.classifier`); the paired bootstrap for the difference of two FLDs whose
  images share their x_T (:mod:`.paired`).
- 2-D point clouds: sliced Wasserstein distance and the RBF-kernel MMD (:mod:`.distances`).
"""

from ddim_book.metrics.classifier import ClassifierFileError, LeNet, accuracy, load_classifier, train_classifier
from ddim_book.metrics.distances import fold_ring, mmd_rbf, sliced_wasserstein
from ddim_book.metrics.frechet import (
    classifier_scores,
    evaluate_samples,
    feature_statistics,
    fld_anchors,
    fld_bootstrap,
    fld_real_anchor,
    frechet_distance,
    frechet_lenet_distance,
)
from ddim_book.metrics.paired import paired_difference, paired_fld_change

__all__ = [
    "ClassifierFileError",
    "LeNet",
    "accuracy",
    "classifier_scores",
    "evaluate_samples",
    "feature_statistics",
    "fld_anchors",
    "fld_bootstrap",
    "fld_real_anchor",
    "frechet_distance",
    "frechet_lenet_distance",
    "load_classifier",
    "fold_ring",
    "mmd_rbf",
    "paired_difference",
    "paired_fld_change",
    "sliced_wasserstein",
    "train_classifier",
]
