"""Entry point of the workflow's rules: `natgrad-study <group> <args...>`.

Each group is an experiment of `natgrad.study.registry` or one of its tools (`data`), a subpackage
`natgrad.study.<group>` whose `cli.main(argv)` parses the rest; groups are imported only when
called, so one rule never pays for another experiment's imports.

A job that fails prints one line naming the file, key or job at fault, on stderr (the rule's log)
and on stdout (the console): a bad data file, config or diverging run prints that line only; an
unexpected error prints its traceback to the log first.
"""
import importlib
import sys
import traceback

from natgrad.study.registry import groups


def _expected_errors():
    """Errors whose message says everything: bad data, bad settings, a diverging run."""
    from natgrad.study.checked import NonFiniteError
    from natgrad.study.config import ConfigError
    from natgrad.study.data.types import DataError

    return (ConfigError, DataError, NonFiniteError)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    modules = groups()
    if not argv or argv[0] not in modules:
        sys.exit(f"usage: natgrad-study {{{','.join(modules)}}} ...")
    group, rest = argv[0], argv[1:]
    try:
        importlib.import_module(modules[group]).main(rest)
    except Exception as err:  # noqa: BLE001 - every failure ends with its one-line summary
        if not isinstance(err, _expected_errors()):
            traceback.print_exc()
        line = f"natgrad-study {group}: {type(err).__name__}: {' '.join(str(err).split())}"
        print(line, file=sys.stderr, flush=True)  # the job's log
        print(line, flush=True)  # the console: rules send only stderr to the log
        sys.exit(1)


if __name__ == "__main__":
    main()
