"""A process that imports rca once and forks a fresh `rca serve` on request.

Importing the app (litellm above all) takes 10-20 s on a busy 2-core machine, longer than a
crash round. The forked child runs the CLI's own entry (`rca.cli.app.main`) with the serve
command line, in a process group of its own (killed whole), with its output in a
log file. Only the main thread exists when it forks (checked), so nothing is forked holding a
lock. Protocol on stdin/stdout, one JSON object a line: `{"argv": [...], "env": {...}, "log":
path}` in, `{"pid": n}` out.

The fake model is registered here, before the fork: the draft workers of a single-process
server are threads of the forked child and use it.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
from typing import Any


def _reap(_signum: int, _frame: Any) -> None:
    """Collect ended children, so none stays a zombie (the runner watches them in /proc)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _serve(argv: list[str], env: dict[str, str], log: str) -> None:
    """In the child: lead a process group of its own and run the CLI; never return."""
    code = 1
    try:
        os.setpgid(0, 0)  # the parent does it too: the group exists before either goes on
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.environ.update(env)
        from rca.cli.app import main

        sys.argv = ["rca", *argv]
        main(argv)
        code = 0
    except SystemExit as ended:
        code = ended.code if isinstance(ended.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    from rca.cli.app import build
    from rca.llm import ScriptedModel, register_provider
    from rca.testing import fake_analyst

    for module in ("api.app", "api.serving", "rca.cli.app", "uvicorn"):
        importlib.import_module(module)  # for their cost, once, before any fork
    build()  # the CLI with its plugins (which import more)
    register_provider("fake", ScriptedModel(reply=fake_analyst))
    if threading.active_count() != 1:
        raise SystemExit(f"forker: {threading.enumerate()} running; forking would be unsafe")
    signal.signal(signal.SIGCHLD, _reap)
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _serve(list(request["argv"]), dict(request["env"]), str(request["log"]))
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child did it already, and may have exec'd or ended
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
