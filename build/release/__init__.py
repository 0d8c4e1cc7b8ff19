"""Release builds: `inv release --mode script|direct|native`.

The modes live in `modes` (the `Mode` enum, the `ReleaseMode` protocol, one module per mode); one
module per shared concern: the plan and the request (`plan`, pure), the checks (`preflight`), the
tree's packaging (`package`), running scripts (`process`), the report (`report`), and comparing two
releases (`compare`). `driver` orders the phases (`run_release`).
"""

