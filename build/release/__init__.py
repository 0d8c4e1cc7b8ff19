"""Release builds: `inv release --mode script|direct|native`.

One module per mode (`script`, `direct`, `native`) and one per shared concern: the plan
(`plan`, pure), the checks (`preflight`), the tree's packaging (`package`), running scripts
(`process`), the report (`report`), and comparing two releases (`compare`). `driver` orders
the phases.
"""

from __future__ import annotations

from typing import Any


def run_release(*args: Any, **kwargs: Any) -> Any:
    """See build.release.driver.run_release (imported lazily)."""
    from build.release.driver import run_release as run

    return run(*args, **kwargs)
