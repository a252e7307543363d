"""The entry point: the parser of every command, and how a run ends.

Exit codes: 0 success, 1 a check failed (parity or verification beyond tolerance), 2 bad input (one line on
stderr naming the problem, nothing written), 3 an internal error (one line; CROSSFORMER_DEBUG=1 shows the
traceback), 130 interrupted.
"""
import argparse
import os
import sys

from .arguments import EXIT_BAD_INPUT, EXIT_INTERNAL
from .commands import COMMANDS
from .startup import StartupNoiseFilter


def build_parser():
    parser = argparse.ArgumentParser(prog="crossformer", description="Crossformer checkpoints: PyTorch <-> Keras 3, "
                                     "with parity checks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    with StartupNoiseFilter():
        return run(args)


def run(args):
    from converter.errors import CrossformerInputError

    try:
        return args.run(args)
    except CrossformerInputError as error:
        print(f"crossformer {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug, not bad input: one line unless asked for the traceback
        if os.environ.get("CROSSFORMER_DEBUG"):
            raise
        print(f"crossformer {args.command}: internal error: {type(error).__name__}: {error} "
              "(CROSSFORMER_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
