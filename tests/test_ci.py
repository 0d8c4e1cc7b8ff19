"""`inv ci`: the pipeline end to end, with its JSON report and JUnit XML validated."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import inv
from tests.test_images_engine import clear, seed_mirror, specs_of
from tests.test_release import CROSS, SAMPLE_TARBALLS, release_env, standin  # noqa: F401 - fixture reuse

pytestmark = pytest.mark.go


def junit_cases(path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = list(root)
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert int(suite.get("tests")) == len(cases)
    assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases.values())
    assert int(suite.get("skipped")) == sum(c.find("skipped") is not None for c in cases.values())
    return cases


@pytest.mark.engine
def test_ci_mirror_mode(sample_repo, registry, engine_client, docker_host, tmp_path):
    tree = sample_repo("gopath")
    specs = specs_of(tree)
    clear(engine_client, [s.ref.short for s in specs])
    seed_mirror(engine_client, registry, "ci", specs)
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    result = inv("ci", "--kube-root", str(tree), "--mirror", f"{registry.address}/ci", "--what", "cmd/kubectl",
                 "--report", str(report), "--junit", str(junit))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "\x1b[" not in result.stderr
    cases = junit_cases(junit)
    assert list(cases) == ["doctor", "workspace", "images", "build"]
    assert all(len(c) == 0 for c in cases.values())  # all passed
    body = json.loads(report.read_text())
    assert body["exit_code"] == 0
    steps = {s["name"]: s for s in body["steps"]}
    assert {i["action"] for i in steps["images"]["data"]["images"]} == {"retagged"}
    (binary,) = steps["build"]["data"]["binaries"]
    assert binary["path"].endswith("linux/amd64/kubectl") and len(binary["sha256"]) == 64
    assert steps["doctor"]["data"]["engine"].startswith("unix://")


def test_ci_failure_is_reported_and_stops_later_steps(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    result = inv("ci", "--kube-root", str(tree), "--what", "cmd/nope", "--report", str(report), "--junit", str(junit))
    assert result.returncode == 2
    cases = junit_cases(junit)
    assert len(cases["doctor"]) == 0 and len(cases["workspace"]) == 0
    assert cases["images"].find("skipped") is not None
    failure = cases["build"].find("failure")
    assert failure is not None and "cmd/nope" in failure.get("message") and failure.get("type") == "exit 2"
    assert json.loads(report.read_text())["exit_code"] == 2
    # report.html beside the report, with the failed step and the timeline (its ci spans).
    page = (tmp_path / "report.html").read_text()
    assert "<h2>timeline</h2>" in page and "cmd/nope" in page and "build (ci)" in page and "doctor (ci)" in page


def test_ci_default_targets_are_the_server_targets(sample_repo, tmp_path):
    from ops.pipeline import server_targets
    from workspace.tree import KubeTree

    tree = sample_repo("gopath")
    targets = server_targets(KubeTree(tree))
    assert targets and all((tree / t).is_dir() for t in targets) and "cmd/kubectl" not in targets
    result = inv("ci", "--kube-root", str(tree), "--report", str(tmp_path / "r.json"),
                 "--junit", str(tmp_path / "j.xml"))
    assert result.returncode == 0, result.stderr[-2000:]
    built = json.loads((tmp_path / "r.json").read_text())["steps"][3]["data"]["binaries"]
    assert sorted(os.path.basename(b["path"]) for b in built) == sorted(os.path.basename(t) for t in targets)
    page = (tmp_path / "report.html").read_text()  # the binaries with their sizes, the go commands' spans
    assert all(os.path.basename(b["path"]) in page for b in built) and " MiB<" in page and "(go)" in page


@pytest.mark.engine
def test_ci_release(sample_repo, standin, engine_client, registry, docker_host, tmp_path):  # noqa: F811
    tree = sample_repo("gopath")
    specs = specs_of(tree)
    clear(engine_client, [s.ref.short for s in specs])
    seed_mirror(engine_client, registry, "cirel", [s for s in specs if s.role != "kube-cross"])
    engine_client.api.tag(standin, *CROSS.rsplit(":", 1), force=True)
    env = {**release_env(), "DOCKER_HOST": docker_host}
    result = inv("ci", "--kube-root", str(tree), "--release", "--quick", "--mirror", f"{registry.address}/cirel",
                 "--report", str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml"), env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    cases = junit_cases(tmp_path / "j.xml")
    assert list(cases) == ["doctor", "workspace", "images", "release"] and all(len(c) == 0 for c in cases.values())
    steps = {s["name"]: s for s in json.loads((tmp_path / "r.json").read_text())["steps"]}
    assert {t["name"] for t in steps["release"]["data"]["tarballs"]} == set(SAMPLE_TARBALLS)
    assert steps["release"]["data"]["mode"] == "script"
    actions = {i["name"]: i["action"] for i in steps["images"]["data"]["images"]}
    assert actions[CROSS] == "present" and set(actions.values()) <= {"present", "retagged"}


def test_ci_examples_parse_and_call_the_pipeline():
    import yaml

    from tests.conftest import REPO

    gha = yaml.safe_load((REPO / "examples/ci/github-actions.yml").read_text())
    runs = [s.get("run", "") for s in gha["jobs"]["build"]["steps"]]
    assert any(r.startswith("inv source --ref") for r in runs) and any(r.startswith("inv ci") for r in runs)
    gitlab = yaml.safe_load((REPO / "examples/ci/gitlab-ci.yml").read_text())
    job = gitlab["kubernetes"]
    lines = [line.strip() for step in job["script"] for line in step.splitlines()]
    assert any(line.startswith("inv ci") for line in lines)
    assert job["artifacts"]["reports"]["junit"].endswith("_output/ci/junit.xml")
