"""A page opened in a real headless Chromium (Debian's `chromium`): its DOM as the browser built it, a
screenshot, and the console messages the page logged."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BOUND = 120


@dataclass
class Opened:
    dom: str
    screenshot: Path
    console: list[str]


def open_page(page: Path, shot: Path) -> Opened:
    from tests.conftest import require

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    require(exe is not None, "a headless browser (apt-get install chromium)")
    base = [str(exe), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--enable-logging=stderr", "--v=0", "--window-size=1280,900"]
    url = page.resolve().as_uri()
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=BOUND,
                         stdin=subprocess.DEVNULL)
    shot_run = subprocess.run([*base, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=BOUND,
                              stdin=subprocess.DEVNULL)
    console = [line for line in (dom.stderr + shot_run.stderr).splitlines() if ":CONSOLE" in line]
    return Opened(dom.stdout, shot, console)
