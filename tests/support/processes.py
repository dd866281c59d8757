"""Running the bot as a real process."""

from __future__ import annotations

# A script for `python -c`: `memebot -v run`, then whether it ever loaded torch.
PROBE = (
    "import sys\n"
    "from bot.cli import main\n"
    "rc = main(['-v', 'run'])\n"
    "print('torch loaded:', 'torch' in sys.modules, flush=True)\n"
    "sys.exit(rc)\n"
)
