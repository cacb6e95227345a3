"""The ``reelhook`` command line: submit jobs, follow them and fetch their videos.

Built on ``reelhook_client``; its own dependencies (click, rich, botocore) come with the
``cli`` extra: ``pip install 'reelhook-client[cli]'``.
"""

from __future__ import annotations

import sys


def main() -> None:
    """The ``reelhook`` entry point: a clear message instead of a traceback without the extra."""
    try:
        from reelhook_cli.main import cli
    except ImportError as exc:
        if exc.name in {"click", "rich"}:
            sys.exit(f"the reelhook command needs {exc.name}: pip install 'reelhook-client[cli]'")
        raise
    cli(prog_name="reelhook")
