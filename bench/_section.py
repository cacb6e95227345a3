"""One benchmark in a process of its own: ``python -m bench._section NAME RESULT_JSON [--quick]``.

``python -m bench`` starts one of these per benchmark, so that no benchmark measures what an
earlier one left behind in the process (its heap, its threads, its imported state).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
import warnings
from pathlib import Path


def main(argv: list[str]) -> int:
    from bench.__main__ import BENCHMARKS
    from bench.common import METER

    name, result_path, quick = argv[0], Path(argv[1]), "--quick" in argv[2:]
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    entry: dict[str, object]
    try:
        # The functions' log lines and EMF metrics go to stdout, as on Lambda: count, don't show.
        with contextlib.redirect_stdout(METER):  # type: ignore[type-var]
            entry = {"result": BENCHMARKS[name].run(quick)}
    except Exception:
        entry = {"error": traceback.format_exc(limit=8)}
    entry["process"] = os.getpid()
    result_path.write_text(json.dumps(entry))
    return 0 if "result" in entry else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
