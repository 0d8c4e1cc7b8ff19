"""`kbuild TASK …`: invoke's Program over kbuild's tasks (as invoke's own main.py makes `inv`).

It puts the checkout first on this process's path (nowhere else), reports faults as one line from the
very start (before invoke reads ~/.invoke.yaml), then hands the command line to invoke.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def _version() -> str:
    """kbuild's version: `git describe` of the checkout, else unknown."""
    import subprocess

    try:
        done = subprocess.run(["git", "-C", str(CHECKOUT), "describe", "--always", "--dirty", "--tags"],
                              capture_output=True, text=True, timeout=5, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> None:
    if not (CHECKOUT / "tasks.py").is_file():
        sys.stderr.write(f"ERROR kbuild's checkout is not at {CHECKOUT} (no tasks.py there)\n"
                         "TIP install it from its checkout: pip install -e <checkout>\n")
        sys.exit(2)
    if str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))
    from common.faults import install_hook

    install_hook(CHECKOUT)  # from here on, a fault is one line: invoke reading ~/.invoke.yaml included
    from invoke.collection import Collection
    from invoke.program import Program

    import tasks

    version = _version() if "--version" in (argv or sys.argv)[1:] or "-V" in (argv or sys.argv)[1:] else "unknown"
    program = Program(namespace=Collection.from_module(tasks), name="kbuild", binary="kbuild", version=version)
    program.run(argv)


if __name__ == "__main__":
    main()
