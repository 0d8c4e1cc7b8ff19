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

kube::golang::is_statically_linked_library() {
  local e
  for e in "${KUBE_STATIC_LIBRARIES[@]}"; do [[ "${1}" = *"/${e}" ]] && return 0; done
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
