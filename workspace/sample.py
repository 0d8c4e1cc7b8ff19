"""A small Kubernetes-shaped sample tree, in the shape of three build eras.

``samples/sample-tree`` is a tiny Go tree laid out like Kubernetes v1.20
(GOPATH + vendor symlinks into ``staging/``, ``GO111MODULE=off``).
:func:`materialize` copies it somewhere and, if asked, reshapes it into:

``gopath``
    As checked in (like v1.20). Build inside a GOPATH symlink tree with
    ``GO111MODULE=off``; the version ``-X`` paths are
    ``k8s.io/kubernetes/vendor/k8s.io/...``.
``modules``
    Like v1.25-v1.29: a root ``go.mod`` with ``replace`` lines into
    ``staging/``, the vendor symlinks kept plus a matching
    ``vendor/modules.txt`` (so Go defaults to ``-mod=vendor``),
    ``GO111MODULE=on`` and both the vendor-prefixed and plain ``-X`` lines.
``workspace``
    Like v1.30+: ``go.work`` using the root and both staging modules,
    ``.go-version``, no GOPATH helpers, only the plain ``-X`` lines, and a
    vendor directory holding just the ``vendor/modules.txt`` that
    ``go work vendor`` writes.

The later two eras also carry the generated OpenAPI file, as if committed. Each
shape's ``hack/lib/golang.sh`` has that era's spelling of ``kube::golang::build_binaries``
(v1.20: ``-installsuffix static``, ``-trimpath=$KUBE_ROOT``; v1.2x: ``all=`` prefixes and
``-flag=value``; v1.30: go's ``-trimpath``, no ``-asmflags``), which ``make all`` runs.

A *variant* adds to any era's shape. :data:`VARIANTS` lists them:

``hyperkube``
    Like trees up to v1.18: ``cmd/hyperkube``, one binary that becomes
    kube-apiserver, kubelet, ... by the name it is called with or by its
    first argument (from ``samples/variants/hyperkube``), listed in
    ``KUBE_ALL_TARGETS``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["SAMPLE_ROOT", "VARIANTS_ROOT", "ERAS", "VARIANTS", "materialize"]

SAMPLE_ROOT: Path = Path(__file__).resolve().parent.parent / "samples" / "sample-tree"
"""The checked-in sample tree (``<repo>/samples/sample-tree``)."""

ERAS: tuple[str, ...] = ("gopath", "modules", "workspace")
"""The tree shapes :func:`materialize` can produce, oldest first."""

VARIANTS_ROOT: Path = SAMPLE_ROOT.parent / "variants"
"""Overlays for the sample tree (``<repo>/samples/variants/<variant>``)."""

VARIANTS: tuple[str, ...] = ("hyperkube", "newest")
"""The overlays :func:`materialize` can add on top of an era's shape."""

_STAGING = ("client-go", "component-base")

_ROOT_GO_MOD_HEAD = """module k8s.io/kubernetes

go 1.20

require (
	k8s.io/client-go v0.0.0
	k8s.io/component-base v0.0.0
)
"""

_ROOT_GO_MOD_REPLACE = """
replace (
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	k8s.io/component-base => ./staging/src/k8s.io/component-base
)
"""

# What `go mod vendor` writes for the modules era (checked with Go 1.27).
_MODULES_TXT = """# k8s.io/client-go v0.0.0 => ./staging/src/k8s.io/client-go
## explicit; go 1.20
k8s.io/client-go/pkg/version
# k8s.io/component-base v0.0.0 => ./staging/src/k8s.io/component-base
## explicit; go 1.20
k8s.io/component-base/version
# k8s.io/client-go => ./staging/src/k8s.io/client-go
# k8s.io/component-base => ./staging/src/k8s.io/component-base
"""

# What `go work vendor` writes for the workspace era: staging modules are
# workspace modules, so nothing of theirs is copied into vendor/.
_WORKSPACE_MODULES_TXT = """## workspace
# k8s.io/client-go v0.0.0 => ./staging/src/k8s.io/client-go
## explicit; go 1.20
# k8s.io/component-base v0.0.0 => ./staging/src/k8s.io/component-base
## explicit; go 1.20
"""

_GO_WORK = """go 1.22

use (
	.
	./staging/src/k8s.io/client-go
	./staging/src/k8s.io/component-base
)
"""

_GO_VERSION = "1.22.0\n"

_INIT_GOPATH_BLOCK = """# The build still uses a GOPATH tree (see kube::golang::create_gopath_tree),
# so explicitly disable module mode whatever the user has set.
export GO111MODULE=off
"""

_INIT_MODULES_BLOCK = """# Go modules are always on, whatever the user has set.
export GO111MODULE=on
"""

_LDFLAG_VENDOR_LINES = """      "-X '${KUBE_GO_PACKAGE}/vendor/k8s.io/client-go/pkg/version.${key}=${val}'"
      "-X '${KUBE_GO_PACKAGE}/vendor/k8s.io/component-base/version.${key}=${val}'"
"""

_LDFLAG_PLAIN_LINES = """      "-X 'k8s.io/client-go/pkg/version.${key}=${val}'"
      "-X 'k8s.io/component-base/version.${key}=${val}'"
"""

_CREATE_GOPATH_FUNC_START = "# Create the GOPATH tree under $KUBE_OUTPUT\n"
_CREATE_GOPATH_CALL = "  kube::golang::create_gopath_tree\n\n"
_GOPATH_SETUP_LINES = """  export GOPATH="${KUBE_GOPATH}"
  export GOCACHE="${GOCACHE:-${KUBE_GOPATH}/cache}"

  # Change directories so that we are within the GOPATH.
  cd "${KUBE_GOPATH}/src/${KUBE_GO_PACKAGE}"
"""
_MODULE_SETUP_LINES = """  export GOPATH="${KUBE_GOPATH}"
  export GOCACHE="${GOCACHE:-${KUBE_OUTPUT}/go-build-cache}"

  # Build from the root; go.work ties in the staging modules.
  cd "${KUBE_ROOT}"
"""
_MIN_GO_VERSION_BLOCK_START = "  local minimum_go_version\n"
_MIN_GO_VERSION_BLOCK_END = "    return 2\n  fi\n}\n"
_WANT_GO_VERSION_BLOCK = """  local want_go_version
  want_go_version="go$(cat "${KUBE_ROOT}/.go-version")"
  if [[ "${go_version[2]}" != "${want_go_version}" ]]; then
    echo "Detected go version: ${go_version[*]}. This tree pins ${want_go_version} (.go-version)." >&2
  fi
}
"""

# hack/lib/golang.sh's go command, as each era spells it. The checked-in tree has v1.20's; the
# later shapes change its `go install` line, its build_args and how it computes the flags.
_GO_INSTALL_V120 = '  go install "${build_args[@]}" "$@"\n'
_BUILD_ARGS_V120 = """      -installsuffix static
      ${goflags:+"${goflags[@]}"}
      -gcflags "${gogcflags:-}"
      -asmflags "${goasmflags:-}"
      -ldflags "${goldflags:-}"
      -tags "${gotags:-}"
"""
_FLAGS_V120 = """    # shellcheck disable=SC2153
    goldflags="${GOLDFLAGS=-s -w -buildid=} $(kube::version::ldflags)"
    goasmflags="-trimpath=${KUBE_ROOT}"
    gogcflags="${GOGCFLAGS:-} -trimpath=${KUBE_ROOT}"

    # Tags given in GOFLAGS join the tree's own.
    gotags="selinux,notest,$(echo "${GOFLAGS:-}" | sed -e 's|.*-tags=\\([^-]*\\).*|\\1|')"
"""
_GOTAGS_LATER = """
    # Tags given in GOFLAGS join the tree's own.
    gotags="selinux,notest,$(echo "${GOFLAGS:-}" | sed -ne 's|.*-tags=\\([^-]*\\).*|\\1|p')"
"""

# v1.2x: all= prefixes, trimming the directory the build runs in (the GOPATH link), DBG=1.
_GO_MODULES = ('  GO111MODULE=on GOPROXY=off go install "${build_args[@]}" "$@"\n', """      -installsuffix=static
      ${goflags:+"${goflags[@]}"}
      -gcflags="${gogcflags}"
      -asmflags="${goasmflags}"
      -ldflags="${goldflags}"
      -tags="${gotags:-}"
""", """    # The build runs in the GOPATH link: trim that.
    local trimroot
    trimroot=$(pwd)
    goasmflags="all=-trimpath=${trimroot}"
    gogcflags="all=-trimpath=${trimroot} ${GOGCFLAGS:-}"
    if [[ "${DBG:-}" == 1 ]]; then
      # A debugger wants optimisations and inlining off and full paths.
      gogcflags="${GOGCFLAGS:-} all=-N -l"
      goasmflags=""
    fi
    goldflags="all=$(kube::version::ldflags) ${GOLDFLAGS:-}"
    if [[ "${DBG:-}" != 1 ]]; then
      goldflags="${goldflags} -s -w"
    fi
""" + _GOTAGS_LATER)

# v1.30+: go's own -trimpath, no asmflags, from KUBE_ROOT.
_GO_WORKSPACE = ('  GOPROXY=off go install "${build_args[@]}" "$@"\n', """      -installsuffix=static
      ${goflags:+"${goflags[@]}"}
      -gcflags="${gogcflags}"
      -ldflags="${goldflags}"
      -tags="${gotags:-}"
""", """    goflags=()
    gogcflags="${GOGCFLAGS:-}"
    goldflags="all=$(kube::version::ldflags) ${GOLDFLAGS:-}"
    if [[ "${DBG:-}" == 1 ]]; then
      # A debugger wants optimisations and inlining off and full paths.
      gogcflags="${gogcflags} all=-N -l"
    else
      goldflags="${goldflags} -s -w"
      goflags+=("-trimpath")
    fi
""" + _GOTAGS_LATER)


def _respell_go_command(golang: Path, spelling: tuple[str, str, str]) -> None:
    """Turn the checked-in (v1.20) go command of ``golang`` into another era's spelling."""
    install, build_args, flags = spelling
    _replace(golang, _GO_INSTALL_V120, install)
    _replace(golang, "    build_args=(\n" + _BUILD_ARGS_V120, "    build_args=(\n" + build_args)
    nonstatic = "    build_args=(\n" + _BUILD_ARGS_V120.replace("      -installsuffix static\n", "")
    _replace(golang, nonstatic, "    build_args=(\n" + build_args.replace("      -installsuffix=static\n", ""))
    _replace(golang, _FLAGS_V120, flags)


# The end of hack/lib/golang.sh's KUBE_ALL_TARGETS list, before and after the hyperkube variant.
_ALL_TARGETS_END = "  cmd/kubelet\n)\n"
_ALL_TARGETS_END_HYPERKUBE = "  cmd/kubelet\n  cmd/hyperkube\n)\n"


def materialize(dest: Path, era: str = "gopath", variant: str | None = None) -> Path:
    """Copy the sample tree to ``dest`` and reshape it into ``era``.

    ``dest`` must not exist or be an empty directory. Symlinks (the
    ``vendor/k8s.io/*`` links into ``staging/``) are copied as symlinks.
    ``variant`` (one of :data:`VARIANTS`, or ``None``) is then laid over
    the reshaped tree. Returns ``dest``. Raises :class:`ValueError` for an
    unknown era or variant or a non-empty ``dest``.
    """
    if era not in ERAS:
        raise ValueError(f"unknown era {era!r}; expected one of {', '.join(ERAS)}")
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if variant == "newest" and era != "workspace":
        raise ValueError("the newest variant lays over the workspace era only")
    dest = Path(dest)
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise ValueError(f"destination {dest} exists and is not an empty directory")
        dest.rmdir()
    shutil.copytree(SAMPLE_ROOT, dest, symlinks=True)
    if era == "modules":
        _to_modules(dest)
    elif era == "workspace":
        _to_workspace(dest)
    if variant == "hyperkube":
        _add_hyperkube(dest)
    elif variant == "newest":
        shutil.copytree(VARIANTS_ROOT / "newest", dest, symlinks=True, dirs_exist_ok=True)
    return dest


def _replace(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must occur exactly once) with ``new`` in ``path``."""
    text = path.read_text()
    if text.count(old) != 1:
        raise RuntimeError(f"{path}: expected exactly one {old!r}")
    path.write_text(text.replace(old, new))


def _remove_between(path: Path, start: str, end: str, new: str = "") -> None:
    """Replace the text from ``start`` through the next ``end`` in ``path``."""
    text = path.read_text()
    i = text.find(start)
    j = text.find(end, i) if i >= 0 else -1
    if i < 0 or j < 0:
        raise RuntimeError(f"{path}: block starting {start!r} not found")
    path.write_text(text[:i] + new + text[j + len(end):])


def _generate_openapi(root: Path) -> None:
    """Run the tree's own generator, as if its output had been committed."""
    subprocess.run(
        ["bash", str(root / "hack" / "update-openapi.sh")],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _drop_gitignore_openapi(root: Path) -> None:
    """Stop ignoring the generated OpenAPI file (it is committed now)."""
    _replace(
        root / ".gitignore",
        "\n# generated by `make gen_openapi` (hack/update-openapi.sh)\nzz_generated.openapi.go\n",
        "",
    )


def _to_modules(root: Path) -> None:
    """Reshape a fresh copy into the v1.25-v1.29 (go.mod + vendor) layout."""
    (root / "go.mod").write_text(_ROOT_GO_MOD_HEAD + _ROOT_GO_MOD_REPLACE)
    (root / "vendor" / "modules.txt").write_text(_MODULES_TXT)
    lib = root / "hack" / "lib"
    _replace(lib / "init.sh", _INIT_GOPATH_BLOCK, _INIT_MODULES_BLOCK)
    _replace(lib / "version.sh", _LDFLAG_VENDOR_LINES, _LDFLAG_VENDOR_LINES + _LDFLAG_PLAIN_LINES)
    _respell_go_command(lib / "golang.sh", _GO_MODULES)
    _generate_openapi(root)
    _drop_gitignore_openapi(root)


def _to_workspace(root: Path) -> None:
    """Reshape a fresh copy into the v1.30+ (go.work) layout."""
    (root / "go.mod").write_text(_ROOT_GO_MOD_HEAD + _ROOT_GO_MOD_REPLACE)
    (root / "go.work").write_text(_GO_WORK)
    (root / ".go-version").write_text(_GO_VERSION)
    vendor = root / "vendor"
    for name in _STAGING:
        (vendor / "k8s.io" / name).unlink()
    (vendor / "k8s.io").rmdir()
    (vendor / "modules.txt").write_text(_WORKSPACE_MODULES_TXT)
    lib = root / "hack" / "lib"
    _replace(lib / "init.sh", _INIT_GOPATH_BLOCK, _INIT_MODULES_BLOCK)
    _replace(lib / "version.sh", _LDFLAG_VENDOR_LINES, _LDFLAG_PLAIN_LINES)
    golang = lib / "golang.sh"
    _remove_between(golang, _CREATE_GOPATH_FUNC_START, "}\n\n")
    _replace(golang, _CREATE_GOPATH_CALL, "")
    _replace(golang, _GOPATH_SETUP_LINES, _MODULE_SETUP_LINES)
    _remove_between(golang, _MIN_GO_VERSION_BLOCK_START, _MIN_GO_VERSION_BLOCK_END, _WANT_GO_VERSION_BLOCK)
    _respell_go_command(golang, _GO_WORKSPACE)
    _generate_openapi(root)
    _drop_gitignore_openapi(root)


def _add_hyperkube(root: Path) -> None:
    """Lay the hyperkube overlay over a tree of any era and make it a target."""
    shutil.copytree(VARIANTS_ROOT / "hyperkube", root, symlinks=True, dirs_exist_ok=True)
    _replace(root / "hack" / "lib" / "golang.sh", _ALL_TARGETS_END, _ALL_TARGETS_END_HYPERKUBE)
