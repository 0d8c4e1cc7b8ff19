"""The `kbuild` command: kbuild's tasks as one program that works from any directory.

Only this package is installed (`pip install -e .`); the checkout's own top-level packages (`build`,
`images`, `common`, …) stay off site-packages, where they would shadow PyPI's `build` and others.
"""
