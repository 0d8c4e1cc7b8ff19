#!/usr/bin/env bash

# Sample of Kubernetes' build/common.sh: registries and base images for the
# dockerized build.

set -o errexit
set -o nounset
set -o pipefail

# This will canonicalize the path
KUBE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")"/.. && pwd -P)

source "${KUBE_ROOT}/hack/lib/init.sh"

readonly KUBE_DOCKER_REGISTRY="${KUBE_DOCKER_REGISTRY:-k8s.gcr.io}"
readonly KUBE_BASE_IMAGE_REGISTRY="${KUBE_BASE_IMAGE_REGISTRY:-k8s.gcr.io/build-image}"

# Get the set of master binaries that run in Docker (on Linux)
# Entry format is "<name-of-binary>,<base-image>".
kube::build::get_docker_wrapped_binaries() {
  local debian_iptables_version=buster-v1.3.0
  local go_runner_version=buster-v2.2.2
  local targets=(
    "kube-apiserver,${KUBE_BASE_IMAGE_REGISTRY}/go-runner:${go_runner_version}"
    "kube-proxy,${KUBE_BASE_IMAGE_REGISTRY}/debian-iptables:${debian_iptables_version}"
  )

  echo "${targets[@]}"
}

# Where the dockerized build leaves its output (OUT_DIR can come in from the Makefile).
readonly LOCAL_OUTPUT_ROOT="${KUBE_ROOT}/${OUT_DIR:-_output}"
readonly LOCAL_OUTPUT_SUBPATH="${LOCAL_OUTPUT_ROOT}/dockerized"
readonly LOCAL_OUTPUT_BINPATH="${LOCAL_OUTPUT_SUBPATH}/bin"
readonly REMOTE_ROOT="/go/src/${KUBE_GO_PACKAGE}"

DOCKER=(docker)

# Find GNU tar (the packaging relies on --transform and --owner).
kube::build::ensure_tar() {
  if [[ -n "${TAR:-}" ]]; then
    return
  fi
  TAR=tar
  if ! "${TAR}" --version 2>/dev/null | grep -q GNU; then
    echo "  !!! Cannot find GNU tar." >&2
    return 1
  fi
}

kube::log::status() {
  echo "+++ [$(date +'%m%d %H:%M:%S')] $1"
}
