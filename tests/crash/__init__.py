"""Crash safety, measured: `rca serve` SIGKILLed at random moments during bursts of writes, on
SQLite and PostgreSQL, and what it must keep.

- `server`: start `rca serve` in its own process group and kill the whole group;
- `forker`: a process that imported rca once and forks a fresh `rca serve` on request (a
  restart then costs the app's start-up, not ~10 s of imports on a busy machine);
- `client`: the HTTP calls, and the ledger of what was acknowledged and what was lost;
- `workload`: client threads that create incidents, request drafts, review and finalize;
- `replays`: after each restart, lost and acknowledged requests sent again;
- `checks`: the store's integrity (SQLite's own check and the store's invariants) and that every
  acknowledged write is there, exactly as acknowledged;
- `run`: the bounded script (`python -m tests.crash.run`) and its summary.

May import `rca`, `api` (nothing imports it) and the `tests` helpers.
"""
