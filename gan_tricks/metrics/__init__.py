"""Measurements of sample quality and diversity."""

from gan_tricks.metrics.features import DigitFeatures, InceptionFeatures, digit_features
from gan_tricks.metrics.image import image_metrics, manifold_metrics
from gan_tricks.metrics.mixture import mixture_metrics, real_data_high_quality_share

__all__ = [
    "DigitFeatures",
    "InceptionFeatures",
    "digit_features",
    "image_metrics",
    "manifold_metrics",
    "mixture_metrics",
    "real_data_high_quality_share",
]
