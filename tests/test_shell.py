"""workspace.shell, the one reader of the tree's bash, against bash itself.

The tree's own bash is the oracle: its arrays, its ``*_targets`` functions, the target lists
``make`` builds and the variables build/common.sh sets are asked of bash and compared with
what kbuild reads, on the sample trees of every era and on the real v1.20.2 tree.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from workspace import shell
from workspace.sample import materialize
from workspace.tree import KubeTree, load_tree, parse_minimum_go, parse_platforms, parse_static_list

# Every shape of tree kbuild has a sample of: (era, variant).
SAMPLES = {"gopath": ("gopath", None), "modules": ("modules", None), "workspace": ("workspace", None),
           "newest": ("workspace", "newest"), "hyperkube": ("gopath", "hyperkube")}


def _tree(which: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    if which == "real":
        root: Path = request.getfixturevalue("real_tree")
        return root
    era, variant = SAMPLES[which]
    return materialize(tmp_path / which, era, variant)


def _clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("KUBE_")}, **extra}


# ------------------------------------------------------------------- facts from golang.sh (moved from test_tree)

def _bash_array(path: Path, name: str) -> list[str]:
    """An array as bash itself reads it from the file (only that array's definition is evaluated)."""
    prog = (f'eval "$(sed -n "/^readonly {name}=(/,/^)/p" "$1")"; '
            f'printf "%s\\n" "${{{name}[@]}}"')
    out = subprocess.run(["bash", "-c", prog, "x", str(path)], check=True, capture_output=True, text=True).stdout
    return out.split()


def test_static_list_real(real_tree: Path) -> None:
    golang = real_tree / "hack" / "lib" / "golang.sh"
    expected = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubeadm", "kubectl")
    assert parse_static_list(golang.read_text()) == expected
    assert list(expected) == _bash_array(golang, "KUBE_STATIC_LIBRARIES")
    assert load_tree(real_tree).static_binaries == expected


def test_static_list_newer_format() -> None:
    snippet = """
# Binaries that should be built statically
readonly KUBE_STATIC_BINARIES=(
  apiextensions-apiserver
  kube-aggregator
  kube-apiserver   # the API server
  "kubectl"
  'kubectl-convert'
)
"""
    assert parse_static_list(snippet) == (
        "apiextensions-apiserver", "kube-aggregator", "kube-apiserver", "kubectl", "kubectl-convert")


def test_static_list_from_function() -> None:
    snippet = """
kube::golang::server_static_targets() {
  local targets=(
    cmd/kube-apiserver
    cmd/kube-proxy
  )
  echo "${targets[@]}"
}
"""
    assert parse_static_list(snippet) == ("kube-apiserver", "kube-proxy")


def test_static_list_absent() -> None:
    assert parse_static_list("echo nothing here\n") == ()


@pytest.mark.parametrize("golang_sh, go_version, expected", [
    ("  local minimum_go_version\n  minimum_go_version=go1.15.0\n", None, "go1.15.0"),
    ("  minimum_go_version=go1.13.4\n", "1.22.0\n", "go1.13.4"),   # golang.sh wins when it says
    ("# no minimum here\n", "1.22.0\n", "go1.22.0"),
    ("", "go1.21.5\n", "go1.21.5"),
    ("", "  1.23.1  \n# comment\n", "go1.23.1"),
    ("", "", None),
    ("", None, None),
])
def test_parse_minimum_go(golang_sh: str, go_version: str | None, expected: str | None) -> None:
    assert parse_minimum_go(golang_sh, go_version) == expected


def test_minimum_go_real(real_tree: Path) -> None:
    assert load_tree(real_tree).minimum_go == "go1.15.0"


def test_minimum_go_sample_workspace(tmp_path: Path) -> None:
    tree = load_tree(materialize(tmp_path / "w", "workspace"))
    assert tree.minimum_go == "go" + (tree.root / ".go-version").read_text().strip()


def test_parse_platforms_real(real_tree: Path) -> None:
    golang = real_tree / "hack" / "lib" / "golang.sh"
    expected: list[str] = []
    for kind in ("SERVER", "NODE", "CLIENT", "TEST"):
        for item in _bash_array(golang, f"KUBE_SUPPORTED_{kind}_PLATFORMS"):
            if item not in expected:
                expected.append(item)
    got = parse_platforms(golang.read_text())
    assert got == tuple(expected)
    assert {"linux/amd64", "linux/arm64", "windows/386", "darwin/amd64"} <= set(got)
    assert len(got) == len(set(got))


# --------------------------------------------------------- the lists make builds (moved from test_build_oracle)

LISTS = r"""
set -o errexit
source hack/lib/init.sh >/dev/null
echo "all=${KUBE_ALL_TARGETS[*]}"
echo "server=${KUBE_SERVER_TARGETS[*]}"
echo "client=${KUBE_CLIENT_TARGETS[*]}"
echo "node=${KUBE_NODE_TARGETS[*]-}"
"""


@pytest.mark.parametrize("which", ["gopath", "modules", "workspace", "newest", "hyperkube", "real"])
def test_default_targets_equal_the_trees_lists(tmp_path, which, request):
    """`inv build` with no --what builds the tree's KUBE_ALL_TARGETS; --group the named list."""
    from build.targets import default_whats

    if which == "real":
        root = request.getfixturevalue("real_tree")
    else:
        era, variant = {"newest": ("workspace", "newest"), "hyperkube": ("gopath", "hyperkube")}.get(
            which, (which, None))
        root = materialize(tmp_path / which, era, variant)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE_")}
    out = subprocess.run(["bash", "-c", LISTS], cwd=root, env={**env, "OSTYPE": "linux-gnu"},
                         capture_output=True, text=True, check=True)
    bash = {k: list(dict.fromkeys(v.split())) for k, _, v in
            (line.partition("=") for line in out.stdout.splitlines())}
    tree = KubeTree(root)
    assert default_whats(tree, []) == bash["all"]
    for group in ("server", "client", "node"):
        if bash[group]:
            assert default_whats(tree, [group]) == bash[group]
    assert default_whats(tree, ["server", "client"]) == list(dict.fromkeys(bash["server"] + bash["client"]))


# --------------------------------------------------------------------------- every array and *_targets function

# Top-level arrays whose items are literals (no expansion for the reader to model).
_TOP_ARRAY = re.compile(r"^(?:readonly |declare -a )?([A-Za-z_]+)=\(", re.M)
# Source a file as the tree's scripts do, then print each array's items or each function's echoed words.
ASK_BASH = r"""
source "$1" >/dev/null
shift
for name in "$@"; do
  if [[ "$(type -t "$name")" == function ]]; then
    printf '%s\n' "@$name" $("$name")
  else
    eval "printf '%s\n' \"@$name\" \"\${$name[@]}\""
  fi
done
"""


def _ask_bash(root: Path, source: str, names: list[str], stubs: Path) -> dict[str, list[str]]:
    out = subprocess.run(["bash", "-c", ASK_BASH, "oracle", source, *names], cwd=root, capture_output=True,
                         text=True, env={"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(root), "OSTYPE": "linux-gnu"})
    assert out.returncode == 0 and "stub" not in out.stderr, out.stderr
    found: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        if line.startswith("@"):
            current = found.setdefault(line[1:], [])
        else:
            current.append(line)
    return found


# golang.sh of every tree; build/common.sh where it has literal arrays (the newest and v1.20.2 have none).
ARRAY_FILES = [*((w, "hack/lib/golang.sh", "hack/lib/init.sh") for w in (*SAMPLES, "real")),
               ("gopath", "build/common.sh", "build/common.sh")]


@pytest.mark.parametrize("which, rel, source", ARRAY_FILES)
def test_every_literal_array_and_targets_function_as_bash_has_them(tmp_path, stubs, which, rel, source, request):
    """Each top-level literal array and each ``*_targets`` function (its echo, on linux) of golang.sh and
    build/common.sh: workspace.shell's reading equals what bash has after sourcing the file as the tree does."""
    root = _tree(which, tmp_path, request)
    text = (root / rel).read_text()
    arrays = [n for n in dict.fromkeys(_TOP_ARRAY.findall(text))
              if "$" not in (shell.array_span(text, n) or shell.Span("$", 0)).text]
    targets = [n for n in shell.functions(text) if n.endswith("_targets")
               and shell.function_targets(text, n) is not None]
    assert arrays or targets
    bash = _ask_bash(root, source, arrays + targets, stubs)
    assert {n: shell.array(text, n) for n in arrays} == {n: bash[n] for n in arrays}
    assert {n: shell.function_targets(text, n) for n in targets} == {n: bash[n] for n in targets}


def test_function_targets_follow_bash_on_linux_only() -> None:
    """``targets+=`` under an OSTYPE test applies on linux (bash, OSTYPE=linux-gnu) and not in its else."""
    text = """kube::golang::test_targets() {
  local targets=(
    cmd/a   # a comment (with parentheses)
    "cmd/b"
  )
  if [[ "${OSTYPE:-}" == "linux"* ]]; then
    targets+=( cmd/linux )
  else
    targets+=( cmd/other )
  fi
  targets+=( cmd/always )
  echo "${targets[@]}"
}
"""
    out = subprocess.run(["bash", "-c", text + "kube::golang::test_targets"], check=True, capture_output=True,
                         text=True, env=_clean_env(OSTYPE="linux-gnu")).stdout.split()
    assert shell.function_targets(text, "kube::golang::test_targets") == out == [
        "cmd/a", "cmd/b", "cmd/linux", "cmd/always"]


# --------------------------------------------------------------------------- variables, as build/common.sh sets them

# Vars reads build/common.sh and build/lib/release.sh, not what they source (hack/lib/init.sh): a variable
# made from init.sh's KUBE_GO_PACKAGE is not one it can know (and no image name is made from one).
NOT_FOLLOWED = {"REMOTE_ROOT"}
VARS_ORACLE = r"""
source build/common.sh >/dev/null
for v in "$@"; do printf '%s=%s\n' "$v" "${!v-<unset>}"; done
"""


@pytest.mark.parametrize("which", ["gopath", "newest"])
@pytest.mark.parametrize("env", [{}, {"KUBE_BASE_IMAGE_REGISTRY": "mirror.example/bi", "KUBE_CROSS_VERSION": "v9"},
                                 {"KUBE_STATIC_OVERRIDES": "kube-proxy", "KUBECTL_BASE_IMAGE": ""}])
def test_common_sh_variables_as_bash_sets_them(tmp_path, stubs, which, env):
    """Every variable Vars reads from build/common.sh has the value bash gives it after sourcing the file."""
    from images.resolve import _tree_vars

    root = materialize(tmp_path / which, *SAMPLES[which])
    v = _tree_vars(KubeTree(root), env, "linux")
    # Vars reads assignments inside functions as if they were called (get_docker_wrapped_binaries' locals);
    # sourcing does not call them, so only the file's top level is compared.
    text = (root / "build/common.sh").read_text()
    inside = {n for fn in shell.functions(text).values()
              for n in range(shell.lineno(text, fn.offset), shell.lineno(text, fn.offset + len(fn.body)) + 1)}
    names = sorted(k for k, where in v.origin.items() if where.startswith("build/common.sh:")
                   and int(where.rsplit(":", 1)[1]) not in inside and k not in NOT_FOLLOWED)
    assert len(names) >= 5
    out = subprocess.run(["bash", "-c", VARS_ORACLE, "oracle", *names], cwd=root, capture_output=True, text=True,
                         env={"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(root), "OSTYPE": "linux-gnu", **env})
    assert out.returncode == 0 and "stub" not in out.stderr, out.stderr
    bash = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert {n: v.values[n] for n in names} == {n: bash[n] for n in names}


# --------------------------------------------------------------------------- the primitives

def test_code_drops_comments_not_what_looks_like_one() -> None:
    text = ('# a comment\n  echo "a # b" \'c # d\' ${x#y} $# # tail\nrsync=1 #rsync\n'
            'echo done;# after a semicolon\n')
    assert shell.code(text).split("\n") == ["", '  echo "a # b" \'c # d\' ${x#y} $#', "rsync=1",
                                            "echo done;", ""]
    assert shell.lineno(text, text.index("rsync")) == 3


def test_array_ends_where_bash_ends_it() -> None:
    """A `)` in a comment, a quote or a $(...) does not end the array; quoted spaces stay in an item."""
    text = 'readonly A=(\n  one # (not) the end\n  "two words" \'3)\'\n  "$(echo x)"\n) trailing\nB=(x)\n'
    out = subprocess.run(["bash", "-c", text + 'printf "%s\\n" "${A[@]}"'], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert shell.array(text, "A")[:3] == out[:3] == ["one", "two words", "3)"]
    assert shell.array(text, "B") == ["x"]
    assert shell.array(text, "C") is None
    span = shell.array_span(text, "A")
    assert span is not None
    assert [shell.lineno(text, at) for _, at in shell.array_words(span)] == [2, 3, 3, 4]


def test_functions_bodies_nested_and_one_line() -> None:
    text = ("kube::a() {\n  echo a\n  function inner() {\n    echo i\n  }\n}\n"
            "function kube::b {\n  echo b\n}\n"
            "one() { echo one; }\nafter() {\n  echo after\n}\n")
    fns = shell.functions(text)
    assert set(fns) == {"kube::a", "inner", "kube::b", "one", "after"}
    assert "echo i" in fns["kube::a"].body and "echo i" in fns["inner"].body
    assert "echo a" not in fns["inner"].body
    assert fns["one"].body.strip() == "echo one;"
    assert fns["after"].body.strip() == "echo after"
    assert text[fns["kube::b"].offset:].startswith("\n  echo b")
    assert shell.function(text, "b") is None  # a function is found by its full name


def test_conditional_echo_and_case_arm() -> None:
    text = ("# header\npick() {\n  # which one\n  if kube::golang::is_statically_linked \"$1\"; then\n"
            "    echo \"$STATIC\"\n  else\n    echo \"$DYNAMIC\"\n  fi\n}\n"
            "wrapped() {\n  case $1 in\n    \"amd64\")\n      local targets=(a,b);;\n"
            "    \"arm\")\n      local targets=(c,d);;\n  esac\n}\n")
    fn = shell.function(text, "pick")
    assert fn is not None
    choice = shell.conditional_echo(text, fn)
    assert choice == shell.Choice('kube::golang::is_statically_linked "$1"', '"$STATIC"', '"$DYNAMIC"', 5, 7)
    wrapped = shell.function(text, "wrapped")
    assert wrapped is not None
    arm = shell.case_arm(wrapped.span, "arm")
    assert arm is not None and shell.array(arm.text, "targets") == ["c,d"]
    assert shell.lineno(text, arm.offset) == 14


def test_assignments_unsets_and_echo_sed() -> None:
    text = ("export GO111MODULE=off # why\nlocal -r v='a b' w=2\nARR=(x y)\nx=\"$(cat f)\"; y\nIFS=' ' read -r z\n"
            "  unset GOBIN GOWORK\nunset -f some_function\n# unset GOFLAGS\n")
    got = [(a.name, a.word, a.keyword, a.line) for a in shell.assignments(text)]
    assert got == [("GO111MODULE", "off", "export", 1), ("v", "'a b'", "local", 2), ("x", '"$(cat f)"', "", 4)]
    assert shell.assignments(text, "v")[0].value == "a b"
    assert shell.unsets(text) == ["GOBIN", "GOWORK"]
    expr = "selinux,$(echo \"${GOFLAGS:-}\" | sed -ne 's|.*-tags=\\([^-]*\\).*|\\1|p')"
    assert shell.echo_sed(expr, {"GOFLAGS": "-tags=a,b -mod=vendor"}) == "selinux,a,b "
    assert shell.echo_sed(expr, {"GOFLAGS": "-mod=vendor"}) == "selinux,"
    assert shell.echo_sed(expr, {}) == expr  # a variable it was not given: left for the caller to judge
    bash = subprocess.run(["bash", "-c", f'echo "{expr}"'], capture_output=True, text=True, check=True,
                          env=_clean_env(GOFLAGS="-tags=a,b -mod=vendor")).stdout.rstrip("\n")
    assert bash == "selinux,a,b "
