#!/usr/bin/env bash

# Sample of hack/lib/golang.sh as the newest trees (v1.35 - v1.38) shape it:
# modules and a go.work, no GOPATH tree, `go install` with -trimpath, the
# `-flag=value` spelling, KUBE_STATIC_BINARIES (kubelet included) and a
# toolchain pinned by .go-version through GOTOOLCHAIN.

readonly KUBE_GOPATH="${KUBE_GOPATH:-"${KUBE_OUTPUT}/go"}"
export KUBE_GOPATH

readonly KUBE_SUPPORTED_SERVER_PLATFORMS=(
  linux/amd64
  linux/arm64
  linux/s390x
  linux/ppc64le
)

readonly KUBE_SUPPORTED_NODE_PLATFORMS=(
  linux/amd64
  linux/arm64
  windows/amd64
)

readonly KUBE_SUPPORTED_CLIENT_PLATFORMS=(
  linux/amd64
  linux/386
  linux/arm
  linux/arm64
  darwin/amd64
  darwin/arm64
  windows/amd64
)

kube::golang::server_targets() {
  local targets=(
    cmd/kube-apiserver
    cmd/kubelet
    staging/src/k8s.io/component-base/logs/kube-log-runner
  )
  echo "${targets[@]}"
}

IFS=" " read -ra KUBE_SERVER_TARGETS <<< "$(kube::golang::server_targets)"
readonly KUBE_SERVER_TARGETS
readonly KUBE_SERVER_BINARIES=("${KUBE_SERVER_TARGETS[@]##*/}")

# Images: kube-log-runner goes first, into every server image, and is not an image itself.
kube::golang::server_image_targets() {
  local targets=(
    staging/src/k8s.io/component-base/logs/kube-log-runner
    cmd/kube-apiserver
    cmd/kubectl
  )
  echo "${targets[@]}"
}

IFS=" " read -ra KUBE_SERVER_IMAGE_TARGETS <<< "$(kube::golang::server_image_targets)"
readonly KUBE_SERVER_IMAGE_TARGETS
readonly KUBE_SERVER_IMAGE_BINARIES=("${KUBE_SERVER_IMAGE_TARGETS[@]##*/}")

kube::golang::node_targets() {
  local targets=(
    cmd/kubelet
    staging/src/k8s.io/component-base/logs/kube-log-runner
  )
  echo "${targets[@]}"
}

IFS=" " read -ra KUBE_NODE_TARGETS <<< "$(kube::golang::node_targets)"
readonly KUBE_NODE_TARGETS
readonly KUBE_NODE_BINARIES=("${KUBE_NODE_TARGETS[@]##*/}")

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

readonly KUBE_CLIENT_TARGETS=(
  cmd/kubectl
)
readonly KUBE_CLIENT_BINARIES=("${KUBE_CLIENT_TARGETS[@]##*/}")

readonly KUBE_ALL_TARGETS=(
  "${KUBE_SERVER_TARGETS[@]}"
  "${KUBE_CLIENT_TARGETS[@]}"
)
readonly KUBE_ALL_BINARIES=("${KUBE_ALL_TARGETS[@]##*/}")

# Everything is static here, kubelet too.
readonly KUBE_STATIC_BINARIES=(
  kube-apiserver
  kube-log-runner
  kubectl
  kubelet
)

IFS=" " read -ra KUBE_CGO_OVERRIDES_LIST <<< "${KUBE_CGO_OVERRIDES:-}"
readonly KUBE_CGO_OVERRIDES_LIST
IFS=" " read -ra KUBE_STATIC_OVERRIDES_LIST <<< "${KUBE_STATIC_OVERRIDES:-}"
readonly KUBE_STATIC_OVERRIDES_LIST

# CGO overrides win over the static list; static overrides add to it.
kube::golang::is_statically_linked() {
  local e
  if [[ -n "${KUBE_CGO_OVERRIDES_LIST:+x}" ]]; then
    for e in "${KUBE_CGO_OVERRIDES_LIST[@]}"; do [[ "${1}" == *"/${e}" ]] && return 1; done
  fi
  for e in "${KUBE_STATIC_BINARIES[@]}"; do [[ "${1}" == *"/${e}" ]] && return 0; done
  if [[ -n "${KUBE_STATIC_OVERRIDES_LIST:+x}" ]]; then
    for e in "${KUBE_STATIC_OVERRIDES_LIST[@]}"; do [[ "${1}" == *"/${e}" ]] && return 0; done
  fi
  return 1
}

# Package names for the targets: ./path, asked of `go list` (module and workspace aware).
kube::golang::normalize_go_targets() {
  local target
  for target; do
    go list -find -e "./${target#./}"
  done
}

kube::golang::host_platform() {
  echo "$(go env GOHOSTOS)/$(go env GOHOSTARCH)"
}

kube::golang::set_platform_envs() {
  export GOOS=${platform%/*}
  export GOARCH=${platform##*/}
  if [[ $(kube::golang::host_platform) != "$platform" ]]; then
    case "${platform}" in
      "linux/arm64")
        export CGO_ENABLED=1
        export CC=${KUBE_LINUX_ARM64_CC:-aarch64-linux-gnu-gcc}
        ;;
    esac
  fi
}

# Pick the toolchain: GOTOOLCHAIN as given, or the host's with FORCE_HOST_GO,
# else the release .go-version names (which go downloads when it is not the local one).
kube::golang::internal::verify_go_version() {
  GO_VERSION="${GO_VERSION:-"$(cat "${KUBE_ROOT}/.go-version")"}"
  if [ "${GOTOOLCHAIN:-auto}" != 'auto' ]; then
    :
  elif [ -n "${FORCE_HOST_GO:-}" ]; then
    export GOTOOLCHAIN='local'
  else
    GOTOOLCHAIN="go${GO_VERSION}"
    export GOTOOLCHAIN
  fi

  if [[ -z "$(command -v go)" ]]; then
    echo "Can't find 'go' in PATH, please fix and retry." >&2
    return 2
  fi

  local go_version
  IFS=" " read -ra go_version <<< "$(GOFLAGS='' go version)"
  local minimum_go_version
  minimum_go_version=go1.27
  if [[ "${minimum_go_version}" != $(echo -e "${minimum_go_version}\n${go_version[2]}" | sort -s -t. -k 1,1 -k 2,2n -k 3,3n | head -n1) && "${go_version[2]}" != "devel" ]]; then
    echo "Detected go version: ${go_version[*]}. Kubernetes requires ${minimum_go_version} or greater." >&2
    return 2
  fi
}

kube::golang::setup_env() {
  export GOPATH="${KUBE_GOPATH}"
  export GOCACHE="${GOCACHE:-"${KUBE_GOPATH}/cache/build"}"
  export GOMODCACHE="${GOMODCACHE:-"${KUBE_GOPATH}/cache/mod"}"
  export PATH="${KUBE_GOPATH}/bin:${PATH}"
  unset GOBIN
  unset GO111MODULE
  unset GOWORK
  kube::golang::internal::verify_go_version
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

kube::golang::build_some_binaries() {
  GOPROXY=off go install "${build_args[@]}" "$@"
}

kube::golang::build_binaries_for_platform() {
  umask 0022
  local platform=$1
  local -a statics=()
  local -a nonstatics=()
  local binary
  for binary in "${binaries[@]}"; do
    if kube::golang::is_statically_linked "${binary}"; then
      statics+=("${binary}")
    else
      nonstatics+=("${binary}")
    fi
  done

  local -a build_args
  if [[ "${#statics[@]}" != 0 ]]; then
    build_args=(
      -installsuffix=static
      ${goflags:+"${goflags[@]}"}
      -gcflags="${gogcflags}"
      -ldflags="${goldflags}"
      -tags="${gotags:-}"
    )
    CGO_ENABLED=0 kube::golang::build_some_binaries "${statics[@]}"
  fi

  if [[ "${#nonstatics[@]}" != 0 ]]; then
    build_args=(
      ${goflags:+"${goflags[@]}"}
      -gcflags="${gogcflags}"
      -ldflags="${goldflags}"
      -tags="${gotags:-}"
    )
    kube::golang::build_some_binaries "${nonstatics[@]}"
  fi
}

# Build the given targets (or KUBE_ALL_TARGETS) for KUBE_BUILD_PLATFORMS (or the host).
# Arguments starting with a dash are passed on to go.
kube::golang::build_binaries() {
  local host_platform
  host_platform=$(kube::golang::host_platform)

  local goflags goldflags gogcflags gotags
  goflags=()
  gogcflags="${GOGCFLAGS:-}"
  goldflags="all=$(kube::version::ldflags) ${GOLDFLAGS:-}"

  local grpcnotrace
  grpcnotrace=""
  if [[ "${DBG:-}" == 1 ]]; then
    # A debugger wants optimisations and inlining off and full paths.
    gogcflags="${gogcflags} all=-N -l"
  else
    # Release binaries: no symbol table or DWARF, no build paths, no x/net/trace in grpc.
    goldflags="${goldflags} -s -w"
    goflags+=("-trimpath")
    grpcnotrace=",grpcnotrace"
  fi

  # Tags given in GOFLAGS come after the tree's own.
  gotags="selinux,notest,kustomize_disable_go_plugin_support${grpcnotrace},$(echo "${GOFLAGS:-}" | sed -ne 's|.*-tags=\([^-]*\).*|\1|p')"

  local -a targets=()
  local arg
  for arg; do
    if [[ "${arg}" == -* ]]; then
      goflags+=("${arg}")
    else
      targets+=("${arg}")
    fi
  done

  local -a platforms
  IFS=" " read -ra platforms <<< "${KUBE_BUILD_PLATFORMS:-}"
  if [[ ${#platforms[@]} -eq 0 ]]; then
    platforms=("${host_platform}")
  fi
  if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${KUBE_ALL_TARGETS[@]}")
  fi

  local -a binaries
  IFS=$'\n' read -d '' -ra binaries < <(kube::golang::normalize_go_targets "${targets[@]}") || true

  local platform
  for platform in "${platforms[@]}"; do
    echo "+++ Building go targets for ${platform}"
    (
      kube::golang::set_platform_envs "${platform}"
      kube::golang::build_binaries_for_platform "${platform}"
    )
  done
}
