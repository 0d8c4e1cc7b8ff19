"""Release builds spread over several Docker engines (`inv release --mode direct --engine URL …`).

``pool``: the engine URLs checked, connected and described (for `inv doctor`); ``schedule``: which
platform goes to which engine, as pure decisions (longest first, one per engine at a time, one retry
on another engine); ``transfer``: a tree into a volume on an engine and outputs back, through the
engine's API only (a remote engine cannot see this machine's files); ``fanout``: the work itself, one
thread per engine, and the per-platform report.
"""
