"""The command line: `rca`, assembled in `rca.cli.app` (the table there lists every command).

- `common`: what commands share (settings, the store, hooks, formats, reading an incident);
- `records`: import, export, list, show; `model`: the embedded model's weights.

May import anything in rca. Other packages add commands through the `rca.cli` entry points and
import `rca.cli.common` only.
"""
