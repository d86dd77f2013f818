"""Measurements of sample quality and diversity."""

from gan_tricks.metrics.mixture import mixture_metrics, real_data_high_quality_share

__all__ = ["mixture_metrics", "real_data_high_quality_share"]
