"""Handwritten digits from scikit-learn's bundled 8x8 images.

`sklearn.datasets.load_digits` ships 1,797 images with the library, so this task
needs no download. `spiketune.data.task` splits and spike-encodes them.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.datasets import load_digits

logger = logging.getLogger(__name__)

DIGITS_MAX_PIXEL = 16.0
DIGITS_N_FEATURES = 64
DIGITS_CLASS_NAMES = [str(digit) for digit in range(10)]


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Load all digit images scaled to [0, 1] with their labels.

    Returns
    -------
    images : numpy.ndarray
        float32 `[1797, 64]`, pixel values 0..16 divided by 16.
    labels : numpy.ndarray
        int64 `[1797]`, digits 0..9.
    """
    bunch = load_digits()
    images = (bunch.data / DIGITS_MAX_PIXEL).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    logger.debug("loaded %d digit images", len(labels))
    return images, labels
