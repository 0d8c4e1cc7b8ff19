"""A shared Go build cache: kbuild's GOCACHEPROG program and the stores it keeps outputs in.

``config`` parses the URL and mode (plain data); ``local`` is Go's own GOCACHE layout, the first
level; ``oci`` and ``s3`` are the remote stores; ``prog`` is the program go runs; ``env`` is what
the build calls to get the go command's environment overlay and the summary line.
"""
