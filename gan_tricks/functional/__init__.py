"""Pure functions, no Lightning: a hand-written PyTorch loop calls these and nothing else.

Every trick of ``gan_tricks.tricks`` is a thin callback over one of these (torchmetrics'
split: the function is the truth, the callback a shell).
"""

from gan_tricks.functional.augment import (
    ada_heuristic,
    ada_update,
    augment_with_probability,
    consistency_penalty,
    diff_augment,
    pseudo_augment,
)
from gan_tricks.functional.checks import check_input_range, output_range
from gan_tricks.functional.constraints import (
    apply_gradient_normalization,
    apply_spectral_norm,
    clip_weights,
    gradient_normalized,
)
from gan_tricks.functional.ema import ema_decay_with_rampup, ema_update
from gan_tricks.functional.guards import drop_nonfinite_gradients
from gan_tricks.functional.labels import flip_labels, one_sided_labels, smooth_labels
from gan_tricks.functional.latent import (
    DISTRIBUTIONS,
    Latent,
    latent_categories,
    sample_latent,
    slerp,
    truncate_latent,
)
from gan_tricks.functional.losses import (
    DISCRIMINATOR_REDUCTIONS,
    LOSSES,
    GANLoss,
    combine_discriminator_losses,
    get_loss,
)
from gan_tricks.functional.noise import (
    add_gaussian_noise,
    add_instance_noise,
    add_layer_noise,
    instance_noise_sigma,
)
from gan_tricks.functional.packing import pack, unpack
from gan_tricks.functional.penalties import (
    PENALTY_KINDS,
    approximate_r1,
    gradient_penalty,
    lazy_regularization_weight,
    lecam_penalty,
)
from gan_tricks.functional.replay import ReplayBuffer, replay_mix
from gan_tricks.functional.schedule import (
    DelayedLinearDecay,
    scheduled_value,
    set_learning_rates,
    wants_more_critic_steps,
)

__all__ = [
    "DISCRIMINATOR_REDUCTIONS",
    "DISTRIBUTIONS",
    "LOSSES",
    "PENALTY_KINDS",
    "DelayedLinearDecay",
    "GANLoss",
    "Latent",
    "ReplayBuffer",
    "ada_heuristic",
    "ada_update",
    "add_gaussian_noise",
    "add_instance_noise",
    "add_layer_noise",
    "apply_gradient_normalization",
    "apply_spectral_norm",
    "approximate_r1",
    "augment_with_probability",
    "check_input_range",
    "clip_weights",
    "combine_discriminator_losses",
    "consistency_penalty",
    "diff_augment",
    "drop_nonfinite_gradients",
    "ema_decay_with_rampup",
    "ema_update",
    "flip_labels",
    "get_loss",
    "gradient_normalized",
    "gradient_penalty",
    "instance_noise_sigma",
    "latent_categories",
    "lazy_regularization_weight",
    "lecam_penalty",
    "one_sided_labels",
    "output_range",
    "pack",
    "pseudo_augment",
    "replay_mix",
    "sample_latent",
    "scheduled_value",
    "set_learning_rates",
    "slerp",
    "smooth_labels",
    "truncate_latent",
    "unpack",
    "wants_more_critic_steps",
]
