"""Experiment tooling on top of ``gan-tricks fit``: the ablation runner (``gan-tricks ablate``)."""
