"""How to run ``smartoken`` from the shell the user is in: the command itself when it is on
``PATH`` (an activated venv, pipx), else the script's path beside this interpreter, relative to
the working folder when it is inside it (``.venv/bin/smartoken`` after ``make serve``)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def cli_command(cwd: Path | None = None) -> str:
    script = Path(sys.executable).with_name("smartoken")
    on_path = shutil.which("smartoken")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "smartoken"
    if not script.exists():
        return "smartoken" if on_path else f"{sys.executable} -m smartoken"
    here = (cwd or Path.cwd()).resolve()
    try:
        return str(Path(os.path.relpath(script, here))) if script.resolve().is_relative_to(
            here) else str(script)
    except ValueError:
        return str(script)
