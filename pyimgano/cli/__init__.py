"""Command-line tools: ``pyimgano-infer`` (:mod:`pyimgano.cli.infer`).

Each command is argparse -> config objects -> library calls -> render; the
maths lives in the library, never here.  Every command exposes
``main(argv=None) -> int`` so tests (and services) can run it in-process.
"""

__all__: list[str] = []
