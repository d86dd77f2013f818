"""Stability tricks as Lightning callbacks: thin toggles over ``gan_tricks.functional``."""

from gan_tricks.tricks.base import PHASES, Trick

__all__ = ["PHASES", "Trick"]
