"""Run ``pyimgano-infer`` and SIGKILL the process at a chosen point (for the fault tests).

    python kill_driver.py POINT N -- pyimgano-infer arguments...

POINT (N counts from 1):
  before_scoring   when the first batch is about to be scored (the JSONL was just created)
  artifact_rename  inside the N-th artifact write: temp file complete, not yet renamed
  before_record    after the N-th record's artifacts, before its line is written
  mid_record       halfway through the N-th record's line (flushed to disk)
  after_record     right after the N-th record was written
  manifest         inside the first manifest write (during a resume's start, say)

Not a test module: the tests run it as a script in a subprocess, so the kill is a real one.
"""

import os
import signal
import sys


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    point, n = sys.argv[1], int(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1 :]
    import pyimgano.cli._records as records
    import pyimgano.cli.infer as infer

    calls = {"n": 0}

    def count() -> bool:
        calls["n"] += 1
        return calls["n"] == n

    if point in ("artifact_rename", "manifest"):
        real_replace = os.replace

        def replace(src, dst):
            name = os.fspath(dst)
            is_manifest = name.endswith(".pyimgano-artifacts.json")
            is_artifact = name.endswith((".npy", ".png")) and not is_manifest
            if (point == "manifest" and is_manifest) or (point == "artifact_rename" and is_artifact):
                if count():
                    _die()
            return real_replace(src, dst)

        os.replace = replace
    elif point in ("before_record", "mid_record", "after_record"):
        real_write = records.RecordWriter.write

        def write(self, record):
            if not count():
                return real_write(self, record)
            if point == "before_record":
                _die()
            if point == "mid_record":
                line = records.dumps_record(record)
                self.stream.write(line[: len(line) // 2])
                self.stream.flush()
                os.fsync(self.stream.fileno())
                _die()
            real_write(self, record)
            _die()

        records.RecordWriter.write = write
    elif point == "before_scoring":
        real_batch = infer.BatchScorer.process

        def process_batch(self, *args, **kwargs):
            if count():
                _die()
            return real_batch(self, *args, **kwargs)

        infer.BatchScorer.process = process_batch
    else:
        raise SystemExit(f"unknown point {point!r}")
    return infer.main(argv)


if __name__ == "__main__":
    sys.exit(main())
