"""gan-tricks: a GAN stabilization toolkit for PyTorch.

Import what you need from the subpackages: ``gan_tricks.functional`` (pure functions, no
Lightning), ``gan_tricks.layers``, ``gan_tricks.models``, ``gan_tricks.data``,
``gan_tricks.metrics``, ``gan_tricks.tricks`` and ``gan_tricks.lightning.GANModule``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gan-tricks")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
