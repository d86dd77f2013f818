"""The ``gan-tricks`` command.

This module answers ``--help``, ``--version`` and ``recipes`` itself, importing neither torch
nor Lightning (seconds of start-up); every other command is imported from
:mod:`gan_tricks.commands` when it runs.
"""

from __future__ import annotations

import os
import sys

USAGE = """usage: gan-tricks {fit,sample,evaluate,report,export,ablate,recipes} ...

  fit       train a GAN from a YAML recipe:  gan-tricks fit --config ring8
  sample    draw samples from a checkpoint:  gan-tricks sample CKPT -n 2500 -o out.png
  evaluate  print metrics of a checkpoint:   gan-tricks evaluate CKPT
  report    one HTML page of a run:          gan-tricks report runs/NAME
  export    G alone, in safetensors:         gan-tricks export CKPT -o generator.safetensors
  ablate    which tricks help, measured:     gan-tricks ablate --config grid25 --tricks r1,packing
  recipes   the packaged recipes and overlays, one line each

'gan-tricks COMMAND --help' lists what each command takes; 'gan-tricks --version' the version.
"""

COMMAND_NAMES = ("fit", "sample", "evaluate", "report", "export", "ablate")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from gan_tricks import __version__

        print(f"gan-tricks {__version__}")
        return 0
    if argv[0] == "recipes":
        from gan_tricks.packaged import listing

        try:
            print(listing())
        except BrokenPipeError:  # `gan-tricks recipes | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if argv[0] not in COMMAND_NAMES:
        print(f"gan-tricks: error: unknown command {argv[0]!r}.\n\n{USAGE}", file=sys.stderr)
        return 2
    from gan_tricks import commands  # torch, Lightning: only for a command that runs

    return commands.run(argv[0], argv[1:])


__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
