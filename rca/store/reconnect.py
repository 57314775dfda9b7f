"""Writes that outlive a cut database connection: the database restarted, or an operator
ended the session, while a statement was on its way. The pool lets go of such a connection and
the next statement gets a new one, so a write that is one whole transaction, and safe to run
twice, is simply tried again."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

_PAUSES_S = (0.1, 0.5, 1.0)
"""Waits before a lease holder's write is tried again on a new connection, after its
connection was cut (the database restarted, an operator ended the session)."""


def connection_lost(err: BaseException | None) -> bool:
    """Whether `err`, or an error it was raised from, is a database connection that broke
    mid-statement: the pool has let go of it, and the next statement gets a new one."""
    while err is not None:
        if isinstance(err, DBAPIError) and err.connection_invalidated:
            return True
        err = err.__cause__
    return False


def again_if_cut(write: Callable[[int], bool]) -> bool:
    """`write(try_number)`, tried again (a few times, briefly) while its connection is cut;
    `write` must be one whole transaction that is safe to run twice (a lease-guarded update,
    say): the cut may have come after its commit. `try_number` is 0 on the first try."""
    for number, pause in enumerate(_PAUSES_S):
        try:
            return write(number)
        except DBAPIError as err:
            if not err.connection_invalidated:
                raise
            time.sleep(pause)
    return write(len(_PAUSES_S))
