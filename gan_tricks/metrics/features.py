"""Feature spaces for the image metrics: a small network trained on the digits themselves, and
the standard Inception when its weights are on disk.

FID, KID, precision / recall and density / coverage all compare real and generated images in
a feature space. The standard one is Inception-v3's pool features (Heusel et al. 2017); on
8x8 digits Inception is meaningless (it was trained on 299x299 photographs) and on a machine
without internet its weights are not there. :class:`DigitFeatures` is the alternative the
protocol of ../BENCHMARKS.md asks for: a small CNN trained once to classify the bundled
digits, whose penultimate layer (64 numbers per digit) is the feature space. A stacked-digits
image is read one channel at a time and its three feature vectors concatenated.

Numbers in this space compare runs with each other; they are **not** comparable to published
FIDs, which are all Inception's.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_tricks.data.digits import NUM_DIGIT_CLASSES, load_digit_images
from gan_tricks.errors import ConfigError

DIGIT_FEATURE_DIM = 64
# The network reads digits at the resolution they were recorded at, like the SVC classifier.
DIGIT_FEATURE_SIZE = 8
# Trained on 80 % of the 1,797 digits; the other 20 % give the accuracy it reports.
HELD_OUT_SHARE = 0.2
TRAIN_EPOCHS = 60
CACHE_ENV = "GAN_TRICKS_CACHE"


class DigitFeatures(nn.Module):
    """64 features per digit channel from a small CNN trained to classify the bundled digits.

    Input: images (N, C, H, W) in [-1, 1], any size (area-averaged to 8x8, as the digit
    classifier reads them); output (N, 64 * C). ``num_features`` is what torchmetrics' FID and
    KID read to size their states.
    """

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.num_features = DIGIT_FEATURE_DIM * channels
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),  # 4x4
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, DIGIT_FEATURE_DIM, 3, stride=2, padding=1),  # 2x2
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(DIGIT_FEATURE_DIM, NUM_DIGIT_CLASSES)
        self.held_out_accuracy: float | None = None

    def per_channel(self, images: Tensor) -> Tensor:
        """(N * C, 64): the features of every channel as a digit of its own."""
        images = images.float()
        if images.shape[-1] != DIGIT_FEATURE_SIZE:
            images = F.adaptive_avg_pool2d(images, DIGIT_FEATURE_SIZE)
        return self.body(images.reshape(-1, 1, DIGIT_FEATURE_SIZE, DIGIT_FEATURE_SIZE))

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != self.channels:
            raise ConfigError(
                f"DigitFeatures reads images (N, {self.channels}, H, W); got shape "
                f"{tuple(images.shape)}."
            )
        return self.per_channel(images).reshape(len(images), self.num_features)

    def classify(self, images: Tensor) -> Tensor:
        """The digit class of every channel, (N, C)."""
        return self.head(self.per_channel(images)).argmax(1).reshape(len(images), -1)


def train_digit_features(seed: int = 0, epochs: int = TRAIN_EPOCHS) -> DigitFeatures:
    """Train :class:`DigitFeatures` on 80 % of the bundled digits (a split fixed by ``seed``)
    and measure its accuracy on the other 20 %; deterministic for ``seed`` on one thread.

    Draws only from generators of its own: the global random numbers are left as they were.
    """
    images, labels = load_digit_images(DIGIT_FEATURE_SIZE)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=generator)
    held = round(len(images) * HELD_OUT_SHARE)
    train, test = order[held:], order[:held]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = DigitFeatures(channels=1)
        optimizer = torch.optim.Adam(network.parameters(), lr=2e-3)
        for _ in range(epochs):
            for batch in torch.randperm(len(train), generator=generator).split(64):
                x, y = images[train[batch]], labels[train[batch]]
                # One-pixel shifts: features that do not hinge on where a stroke sits.
                dx, dy = torch.randint(-1, 2, (2,), generator=generator).tolist()
                x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
                loss = F.cross_entropy(network.head(network.per_channel(x)), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    network.eval().requires_grad_(False)
    with torch.no_grad():
        predicted = network.classify(images[test]).squeeze(1)
    network.held_out_accuracy = float((predicted == labels[test]).float().mean())
    return network


def cache_folder() -> Path:
    """Where trained feature networks are kept: ``$GAN_TRICKS_CACHE`` or
    ``~/.cache/gan-tricks``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gan-tricks")


def digit_features(channels: int = 1, seed: int = 0) -> DigitFeatures:
    """The digit feature network for images of ``channels`` digits, trained once per seed and
    cached (safe to load: tensors only); eval mode, no gradients."""
    path = cache_folder() / f"digit_features_seed{seed}.pt"
    network = DigitFeatures(channels)
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        network.load_state_dict(saved["state_dict"])
        network.held_out_accuracy = float(saved["held_out_accuracy"])
    else:
        trained = train_digit_features(seed)
        network.load_state_dict(trained.state_dict())
        network.held_out_accuracy = trained.held_out_accuracy
        path.parent.mkdir(parents=True, exist_ok=True)
        from gan_tricks.checkpointing import atomic_save  # two runs may train it at once

        atomic_save(
            {"state_dict": network.state_dict(), "held_out_accuracy": network.held_out_accuracy},
            path,
        )
    return network.eval().requires_grad_(False)


class InceptionFeatures(nn.Module):
    """Inception-v3's 2,048 pool features (torch-fidelity's port, as torchmetrics' FID uses),
    from a weights file on disk: for images in [-1, 1], any size and 1 or 3 channels.

    ``weights`` is the path of ``pt_inception-2015-12-05-6726825d.pth`` (torch-fidelity
    downloads it on a machine with internet; copy it over for one without). These features
    give FIDs comparable to published ones (same network, same resizing).
    """

    def __init__(self, weights: str | Path) -> None:
        super().__init__()
        path = Path(weights)
        if not path.is_file():
            raise ConfigError(
                f"the Inception weights {path} do not exist; download "
                "pt_inception-2015-12-05-6726825d.pth (torch-fidelity) and give its path."
            )
        from torchmetrics.image.fid import NoTrainInceptionV3

        try:
            self.inception = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048"],
                feature_extractor_weights_path=str(path),
            )
        except ModuleNotFoundError:
            raise ConfigError(
                "Inception features need torch-fidelity; pip install torch-fidelity."
            ) from None
        self.num_features = 2048

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        as_bytes = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return self.inception(as_bytes).reshape(len(images), -1)
