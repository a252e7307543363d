"""The entry point: the parser of every command, and how a run ends.

Exit codes: 0 success, 1 a check failed (parity or verification beyond tolerance), 2 bad input (one line on
stderr naming the problem, nothing written), 3 an internal error (one line; CROSSFORMER_DEBUG=1 shows the
traceback), 130 interrupted.
"""
import argparse
import os
import sys

from .arguments import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED
from .commands import COMMANDS
from .startup import StartupNoiseFilter


class OneLineParser(argparse.ArgumentParser):
    """argparse's errors as every other bad input: one line, `crossformer CMD: error: ...`, exit 2 (argparse
    prints its usage block first; --help still shows it)."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = OneLineParser(prog="crossformer", description="Crossformer checkpoints: PyTorch <-> Keras 3, "
                           "with parity checks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    parser.set_defaults(subparsers=commands.choices)
    return parser


def main(argv=None):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the command's parser, so the line names the command (argparse leaves it to the top)
        args.subparsers[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    with StartupNoiseFilter():
        return run(args)


def run(args):
    from converter.errors import CrossformerInputError

    try:
        return args.run(args)
    except CrossformerInputError as error:
        print(f"crossformer {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as interrupt:  # Ctrl-C; outputs are written atomically, so nothing is half-written
        print(f"crossformer {args.command}: interrupted: {interrupt or 'nothing written'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug, not bad input: one line unless asked for the traceback
        if os.environ.get("CROSSFORMER_DEBUG"):
            raise
        print(f"crossformer {args.command}: internal error: {type(error).__name__}: {error} "
              "(CROSSFORMER_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
