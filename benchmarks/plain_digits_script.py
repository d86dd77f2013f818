"""The plain-PyTorch script `process_overhead.py` times `gan-tricks fit` against.

The same run as ``recipes/digits.yaml``: the same DCGAN networks (built from
``gan_tricks.models``, which import no Lightning), the bundled digits at 16x16 in [-1, 1],
batches of 64 reshuffled every epoch, Adam (2e-4, betas 0.5 / 0.999), the non-saturating loss
with real-only and fake-only batches for D, D frozen during G's step. What a careful script
also does, it does too: a CSV row of the losses every 20 iterations, a checkpoint of both
networks and optimizers at the end, and a grid of 64 samples.

    python benchmarks/plain_digits_script.py --steps 600 --out /tmp/plain
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torchvision.utils import save_image

from gan_tricks.models import DCGANDiscriminator, DCGANGenerator

LATENT_DIM = 64


def digits_16x16() -> torch.Tensor:
    images = torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) / 16 * 2 - 1
    resized = F.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False)
    return resized.clamp(-1, 1)


def train(generator, discriminator, opt_g, opt_d, loader, steps: int, writer) -> int:
    step = 0
    while step < steps:
        for real in loader:
            if step == steps:
                break
            z = torch.randn(len(real), LATENT_DIM)
            fake = generator(z)
            real_logits, fake_logits = discriminator(real), discriminator(fake.detach())
            d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            discriminator.requires_grad_(False)
            g_loss = F.softplus(-discriminator(fake)).mean()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            discriminator.requires_grad_(True)
            step += 1
            if step % 20 == 0:
                writer.writerow([step, d_loss.item(), g_loss.item()])
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", default="runs/plain_digits")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    generator = DCGANGenerator(
        latent_dim=LATENT_DIM, image_size=16, channels=1, width=32, norm="batch",
        upsample="transpose",
    )  # fmt: skip
    discriminator = DCGANDiscriminator(
        image_size=16, channels=1, width=32, norm="batch", downsample="stride"
    )
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = torch.utils.data.DataLoader(
        digits_16x16(), batch_size=64, shuffle=True, drop_last=True
    )
    with open(out / "metrics.csv", "w", newline="") as log:
        writer = csv.writer(log)
        writer.writerow(["step", "d_loss", "g_loss"])
        step = train(generator, discriminator, opt_g, opt_d, loader, args.steps, writer)
    torch.save(
        {
            "generator": generator.state_dict(),
            "discriminator": discriminator.state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "step": step,
        },
        out / "last.pt",
    )
    generator.eval()
    with torch.no_grad():
        samples = generator(torch.randn(64, LATENT_DIM, generator=torch.Generator().manual_seed(0)))
    save_image(samples * 0.5 + 0.5, out / "samples.png", nrow=8)


if __name__ == "__main__":
    main()
