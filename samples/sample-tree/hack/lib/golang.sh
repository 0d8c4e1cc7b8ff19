#!/usr/bin/env bash

# Sample of Kubernetes' hack/lib/golang.sh: which binaries to build and how to
# set up Go for them.

readonly KUBE_GO_PACKAGE=k8s.io/kubernetes
readonly KUBE_GOPATH="${KUBE_OUTPUT}/go"

# Platforms the build supports (the real file also lists node and test platforms).
readonly KUBE_SUPPORTED_SERVER_PLATFORMS=(
  linux/amd64
  linux/arm
  linux/arm64
  linux/s390x
  linux/ppc64le
)

readonly KUBE_SUPPORTED_CLIENT_PLATFORMS=(
  linux/amd64
  linux/386
  linux/arm
  linux/arm64
  linux/s390x
  linux/ppc64le
  darwin/amd64
  windows/amd64
  windows/386
)

readonly KUBE_SUPPORTED_NODE_PLATFORMS=(
  linux/amd64
  linux/arm64
  windows/amd64
)

# What a release builds (hack/make-rules/cross.sh) and packages (build/lib/release.sh).
kube::golang::server_targets() {
  local targets=(
    cmd/kube-apiserver
    cmd/kubelet
  )
  echo "${targets[@]}"
}

IFS=" " read -ra KUBE_SERVER_TARGETS <<< "$(kube::golang::server_targets)"
readonly KUBE_SERVER_TARGETS
readonly KUBE_SERVER_BINARIES=("${KUBE_SERVER_TARGETS[@]##*/}")

# The server binaries that ship as container images.
kube::golang::server_image_targets() {
  local targets=(
    cmd/kube-apiserver
  )
  echo "${targets[@]}"
}

IFS=" " read -ra KUBE_SERVER_IMAGE_TARGETS <<< "$(kube::golang::server_image_targets)"
readonly KUBE_SERVER_IMAGE_TARGETS
readonly KUBE_SERVER_IMAGE_BINARIES=("${KUBE_SERVER_IMAGE_TARGETS[@]##*/}")

kube::golang::node_targets() {
  local targets=(
    cmd/kubelet
  )
  echo "${targets[@]}"
}

IFS=" " read -ra KUBE_NODE_TARGETS <<< "$(kube::golang::node_targets)"
readonly KUBE_NODE_TARGETS
readonly KUBE_NODE_BINARIES=("${KUBE_NODE_TARGETS[@]##*/}")

readonly KUBE_CLIENT_TARGETS=(
  cmd/kubectl
)
readonly KUBE_CLIENT_BINARIES=("${KUBE_CLIENT_TARGETS[@]##*/}")

# Platforms of each kind, as the real kube::golang::setup_platforms picks them.
kube::golang::setup_platforms() {
  if [[ -n "${KUBE_BUILD_PLATFORMS:-}" ]]; then
    local -a platforms
    IFS=" " read -ra platforms <<< "${KUBE_BUILD_PLATFORMS}"
    IFS=$'\n' read -d '' -ra KUBE_SERVER_PLATFORMS < <(printf "%s\n" $(printf "%s\n" "${platforms[@]}" | sort -u) "${KUBE_SUPPORTED_SERVER_PLATFORMS[@]}" | sort | uniq -d) || true
    IFS=$'\n' read -d '' -ra KUBE_NODE_PLATFORMS < <(printf "%s\n" $(printf "%s\n" "${platforms[@]}" | sort -u) "${KUBE_SUPPORTED_NODE_PLATFORMS[@]}" | sort | uniq -d) || true
    IFS=$'\n' read -d '' -ra KUBE_CLIENT_PLATFORMS < <(printf "%s\n" $(printf "%s\n" "${platforms[@]}" | sort -u) "${KUBE_SUPPORTED_CLIENT_PLATFORMS[@]}" | sort | uniq -d) || true
  elif [[ "${KUBE_FASTBUILD:-}" == "true" ]]; then
    KUBE_SERVER_PLATFORMS=(linux/amd64)
    KUBE_NODE_PLATFORMS=(linux/amd64)
    KUBE_CLIENT_PLATFORMS=(linux/amd64)
  else
    KUBE_SERVER_PLATFORMS=("${KUBE_SUPPORTED_SERVER_PLATFORMS[@]}")
    KUBE_NODE_PLATFORMS=("${KUBE_SUPPORTED_NODE_PLATFORMS[@]}")
    KUBE_CLIENT_PLATFORMS=("${KUBE_SUPPORTED_CLIENT_PLATFORMS[@]}")
  fi
}

kube::golang::setup_platforms

# The server and client binaries this sample tree knows about.
readonly KUBE_ALL_TARGETS=(
  cmd/kube-apiserver
  cmd/kubectl
  cmd/kubelet
)

# Binaries that are built statically (CGO_ENABLED=0). kubelet is not one.
readonly KUBE_STATIC_LIBRARIES=(
  kube-apiserver
  kubectl
)

# KUBE_CGO_OVERRIDES: binaries to build with cgo whatever the list says;
# KUBE_STATIC_OVERRIDES: binaries to build statically besides the list.
IFS=" " read -ra KUBE_CGO_OVERRIDES_LIST <<< "${KUBE_CGO_OVERRIDES:-}"
readonly KUBE_CGO_OVERRIDES_LIST
IFS=" " read -ra KUBE_STATIC_OVERRIDES_LIST <<< "${KUBE_STATIC_OVERRIDES:-}"
readonly KUBE_STATIC_OVERRIDES_LIST

kube::golang::is_statically_linked_library() {
  local e
  if [[ -n "${KUBE_CGO_OVERRIDES_LIST:+x}" ]]; then
    for e in "${KUBE_CGO_OVERRIDES_LIST[@]}"; do [[ "${1}" == *"/${e}" ]] && return 1; done
  fi
  for e in "${KUBE_STATIC_LIBRARIES[@]}"; do [[ "${1}" == *"/${e}" ]] && return 0; done
  if [[ -n "${KUBE_STATIC_OVERRIDES_LIST:+x}" ]]; then
    for e in "${KUBE_STATIC_OVERRIDES_LIST[@]}"; do [[ "${1}" == *"/${e}" ]] && return 0; done
  fi
  return 1
}

# Create the GOPATH tree under $KUBE_OUTPUT
kube::golang::create_gopath_tree() {
  local go_pkg_dir="${KUBE_GOPATH}/src/${KUBE_GO_PACKAGE}"
  local go_pkg_basedir
  go_pkg_basedir=$(dirname "${go_pkg_dir}")

  mkdir -p "${go_pkg_basedir}"

  if [[ ! -e "${go_pkg_dir}" || "$(readlink "${go_pkg_dir}")" != "${KUBE_ROOT}" ]]; then
    ln -snf "${KUBE_ROOT}" "${go_pkg_dir}"
  fi
}

# Ensure the go tool exists and is a viable version.
kube::golang::verify_go_version() {
  if [[ -z "$(command -v go)" ]]; then
    echo "Can't find 'go' in PATH, please fix and retry." >&2
    return 2
  fi

  local go_version
  IFS=" " read -ra go_version <<< "$(GOFLAGS='' go version)"
  local minimum_go_version
  minimum_go_version=go1.15.0
  if [[ "${minimum_go_version}" != $(echo -e "${minimum_go_version}\n${go_version[2]}" | sort -s -t. -k 1,1 -k 2,2n -k 3,3n | head -n1) && "${go_version[2]}" != "devel" ]]; then
    echo "Detected go version: ${go_version[*]}. Kubernetes requires ${minimum_go_version} or greater." >&2
    return 2
  fi
}

# Check the go tool, then point GOPATH at the tree under _output.
kube::golang::setup_env() {
  kube::golang::verify_go_version

  kube::golang::create_gopath_tree

  export GOPATH="${KUBE_GOPATH}"
  export GOCACHE="${GOCACHE:-${KUBE_GOPATH}/cache}"

  # Change directories so that we are within the GOPATH.
  cd "${KUBE_GOPATH}/src/${KUBE_GO_PACKAGE}"

  unset GOBIN
}

kube::golang::host_platform() {
  echo "$(go env GOHOSTOS)/$(go env GOHOSTARCH)"
}

# GOOS/GOARCH for the platform; cgo cross compilers when building on linux/amd64.
kube::golang::set_platform_envs() {
  export GOOS=${platform%/*}
  export GOARCH=${platform##*/}
  if [[ $(kube::golang::host_platform) == "linux/amd64" ]]; then
    case "${platform}" in
      "linux/arm")
        export CGO_ENABLED=1
        export CC=${KUBE_LINUX_ARM_CC:-arm-linux-gnueabihf-gcc}
        ;;
      "linux/arm64")
        export CGO_ENABLED=1
        export CC=${KUBE_LINUX_ARM64_CC:-aarch64-linux-gnu-gcc}
        ;;
      "linux/ppc64le")
        export CGO_ENABLED=1
        export CC=${KUBE_LINUX_PPC64LE_CC:-powerpc64le-linux-gnu-gcc}
        ;;
      "linux/s390x")
        export CGO_ENABLED=1
        export CC=${KUBE_LINUX_S390X_CC:-s390x-linux-gnu-gcc}
        ;;
    esac
  fi
}

# `go install` leaves host binaries in GOPATH/bin and cross ones in GOPATH/bin/<os>_<arch>:
# copy them to ${KUBE_OUTPUT_BINPATH}/<os>/<arch>.
kube::golang::place_bins() {
  local host_platform platform
  host_platform=$(kube::golang::host_platform)
  for platform in "${KUBE_CLIENT_PLATFORMS[@]}"; do
    local platform_src="/${platform//\//_}"
    if [[ "${platform}" == "${host_platform}" ]]; then
      platform_src=""
    fi
    local full_binpath_src="${KUBE_GOPATH}/bin${platform_src}"
    if [[ -d "${full_binpath_src}" ]]; then
      mkdir -p "${KUBE_OUTPUT_BINPATH}/${platform}"
      find "${full_binpath_src}" -maxdepth 1 -type f -exec cp -p {} "${KUBE_OUTPUT_BINPATH}/${platform}" \;
    fi
  done
}

# The go command, as v1.20 spells it (workspace/sample.py respells it for the later eras).
kube::golang::build_some_binaries() {
  go install "${build_args[@]}" "$@"
}

kube::golang::build_binaries_for_platform() {
  umask 0022
  local platform=$1
  local -a statics=()
  local -a nonstatics=()
  local binary
  for binary in "${binaries[@]}"; do
    if kube::golang::is_statically_linked_library "${binary}"; then
      statics+=("${binary}")
    else
      nonstatics+=("${binary}")
    fi
  done

  local -a build_args
  if [[ "${#statics[@]}" != 0 ]]; then
    build_args=(
      -installsuffix static
      ${goflags:+"${goflags[@]}"}
      -gcflags "${gogcflags:-}"
      -asmflags "${goasmflags:-}"
      -ldflags "${goldflags:-}"
      -tags "${gotags:-}"
    )
    CGO_ENABLED=0 kube::golang::build_some_binaries "${statics[@]}"
  fi

  if [[ "${#nonstatics[@]}" != 0 ]]; then
    build_args=(
      ${goflags:+"${goflags[@]}"}
      -gcflags "${gogcflags:-}"
      -asmflags "${goasmflags:-}"
      -ldflags "${goldflags:-}"
      -tags "${gotags:-}"
    )
    kube::golang::build_some_binaries "${nonstatics[@]}"
  fi
}

# Build the given targets (or KUBE_ALL_TARGETS) for KUBE_BUILD_PLATFORMS (or the host), in a
# subshell so the caller's environment stays as it was. Dash arguments go to go.
kube::golang::build_binaries() {
  (
    kube::golang::setup_env

    local host_platform
    host_platform=$(kube::golang::host_platform)

    local goflags goldflags goasmflags gogcflags gotags
    # shellcheck disable=SC2153
    goldflags="${GOLDFLAGS=-s -w -buildid=} $(kube::version::ldflags)"
    goasmflags="-trimpath=${KUBE_ROOT}"
    gogcflags="${GOGCFLAGS:-} -trimpath=${KUBE_ROOT}"

    # Tags given in GOFLAGS join the tree's own.
    gotags="selinux,notest,$(echo "${GOFLAGS:-}" | sed -e 's|.*-tags=\([^-]*\).*|\1|')"

    local -a targets=()
    local arg
    for arg; do
      if [[ "${arg}" == -* ]]; then
        goflags+=("${arg}")
      else
        targets+=("${arg}")
      fi
    done
    if [[ ${#targets[@]} -eq 0 ]]; then
      targets=("${KUBE_ALL_TARGETS[@]}")
    fi

    local -a platforms
    IFS=" " read -ra platforms <<< "${KUBE_BUILD_PLATFORMS:-}"
    if [[ ${#platforms[@]} -eq 0 ]]; then
      platforms=("${host_platform}")
    fi

    local -a binaries=()
    local target
    for target in "${targets[@]}"; do
      binaries+=("${KUBE_GO_PACKAGE}/${target#./}")
    done

    local platform
    for platform in "${platforms[@]}"; do
      echo "+++ Building go targets for ${platform}"
      (
        kube::golang::set_platform_envs "${platform}"
        kube::golang::build_binaries_for_platform "${platform}"
      )
    done
  )
}
