"""`inv images` and `inv kit` as collections: a default task that keeps today's flags, and one subtask
per action (`inv images.list`, `inv kit.save`, ...), shown by `inv --list`, each flag with its help."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO, inv

SUBTASKS = {"images": ("sync", "list", "env", "save", "load"), "kit": ("choose", "save", "load", "list")}
DEFAULTS = {"images": "sync", "kit": "choose"}
SAMPLE = REPO / "samples" / "sample-tree"
NO_ENGINE = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # nothing here may need one


def test_list_shows_every_subtask_and_each_default():
    listed = inv("--list", check=True).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.startswith("  ")}
    for coll, subtasks in SUBTASKS.items():
        assert {f"{coll}.{sub}" for sub in subtasks} <= names, listed
        assert f"{coll}.{DEFAULTS[coll]} ({coll})" in listed  # invoke marks the collection's default task
    assert "images" not in names and "kit" not in names  # no second, flat task beside the collection


def test_every_flag_of_every_subtask_has_help():
    """Read from the namespace tasks.py builds (the same one `inv` loads), not from the rendered help."""
    script = ("import json, tasks\n"
              "out = {}\n"
              "for coll in ('images', 'kit'):\n"
              "    c = tasks.ns.collections[coll]\n"
              "    for name, t in c.tasks.items():\n"
              "        args = t.get_arguments()\n"
              "        out[f'{coll}.{name}'] = {'args': [a.name for a in args],\n"
              "                                 'missing': [a.name for a in args if not (a.help or '').strip()],\n"
              "                                 'default': c.default == name}\n"
              "print(json.dumps(out))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=True)
    found = json.loads(proc.stdout)
    assert set(found) == {f"{coll}.{sub}" for coll, subs in SUBTASKS.items() for sub in subs}
    for name, facts in found.items():
        assert facts["args"], name
        assert facts["missing"] == [], (name, facts["missing"])
    assert [n for n, f in found.items() if f["default"]] == ["images.sync", "kit.choose"]


def test_images_list_and_env_subtasks_match_the_flags():
    said = {}
    for flags, subtask in ((("--list", "--json"), ("images.list", "--json")), (("--list",), ("images.list",)),
                           (("--env",), ("images.env",)), (("--list", "--json", "--only", "pause"),
                                                          ("images.list", "--json", "--only", "pause"))):
        old = inv("images", "--kube-root", str(SAMPLE), *flags, check=True)
        new = inv(*subtask, "--kube-root", str(SAMPLE), check=True)
        assert new.stdout == old.stdout and new.stdout.strip(), (flags, new.stdout)
        said[subtask] = new.stdout
    assert {"kube-cross", "pause"} <= {i["role"] for i in json.loads(said["images.list", "--json"])}
    assert [i["role"] for i in json.loads(said["images.list", "--json", "--only", "pause"])] == ["pause"]
    assert "export KUBE_BUILD_PULL_LATEST_IMAGES=n" in said["images.env",]


def test_images_subtasks_refuse_bad_input_in_one_line(tmp_path):
    for args, needle, code in (
        (("images.load", str(tmp_path / "none.tar")), f"--file {tmp_path / 'none.tar'}: no such file", 2),
        (("images.list", "--only", "nosuch"), "nosuch", 2),
        (("images", "--save", "a.tar", "--load", "b.tar"), "separate runs", 2),
        (("images.sync", "--layout", "sideways"), "choose nested or flat", 2),
        (("images", "--layout", "sideways"), "choose nested or flat", 2),
    ):
        result = inv(*args, "--kube-root", str(SAMPLE), env=NO_ENGINE)
        assert result.returncode == code, (args, result.returncode, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    missing = inv("images.save", "--kube-root", str(SAMPLE))
    assert missing.returncode != 0 and "file" in missing.stderr and "Traceback" not in missing.stderr


def test_kit_subtasks_refuse_bad_input_like_the_flags(tmp_path):
    for args, needle in ((("kit.load", str(tmp_path / "x"), "--dest", str(tmp_path / "d")), "no such file"),
                         (("kit.load", "--file", str(tmp_path / "x"), "--dest", str(tmp_path / "d")), "no such file"),
                         (("kit.load", str(tmp_path / "x")), "--dest"),
                         (("kit.list", str(tmp_path)), "no such file"),
                         (("kit.choose",), "give one of"),
                         (("kit.save", str(tmp_path), "--kube-root", str(SAMPLE)), "is a directory")):
        result = inv(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and needle in result.stderr, (args, result.stderr)
    assert not (tmp_path / "d").exists()
    missing = inv("kit.list")
    assert missing.returncode != 0 and "positional" in missing.stderr and "Traceback" not in missing.stderr
