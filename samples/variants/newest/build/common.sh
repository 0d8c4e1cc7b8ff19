#!/usr/bin/env bash

# Sample of build/common.sh as the newest trees (v1.35 - v1.38) shape it:
# kube-cross named by KUBE_CROSS_IMAGE and KUBE_CROSS_VERSION and run
# directly with the tree bind-mounted (no kube-build image, no data or rsync
# container, no published port); the server base images picked per binary by
# __default_base_image (go-runner for statically linked binaries, the
# distroless-iptables base otherwise), each overridable from the environment.

set -o errexit
set -o nounset
set -o pipefail

unset CDPATH

DOCKER_OPTS=${DOCKER_OPTS:-""}
IFS=" " read -r -a DOCKER <<< "docker ${DOCKER_OPTS}"
GOPROXY=${GOPROXY:-""}

# This will canonicalize the path
KUBE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")"/.. && pwd -P)

source "${KUBE_ROOT}/hack/lib/init.sh"

# The kube-cross tag: KUBE_CROSS_VERSION when given, else the tree's pin.
KUBE_BUILD_IMAGE_CROSS_TAG="${KUBE_CROSS_VERSION:-"$(cat "${KUBE_ROOT}/build/build-image/cross/VERSION")"}"
readonly KUBE_BUILD_IMAGE_CROSS_TAG

readonly KUBE_DOCKER_REGISTRY="${KUBE_DOCKER_REGISTRY:-registry.k8s.io}"
KUBE_BASE_IMAGE_REGISTRY="${KUBE_BASE_IMAGE_REGISTRY:-registry.k8s.io/build-image}"
readonly KUBE_BASE_IMAGE_REGISTRY

# kube-cross can come from elsewhere than the base image registry.
KUBE_CROSS_IMAGE="${KUBE_CROSS_IMAGE:-"${KUBE_BASE_IMAGE_REGISTRY}/kube-cross"}"
readonly KUBE_CROSS_IMAGE
KUBE_CROSS_VERSION="${KUBE_CROSS_VERSION:-"${KUBE_BUILD_IMAGE_CROSS_TAG}"}"
readonly KUBE_CROSS_VERSION
# Where the tree is mounted inside kube-cross.
KUBE_CROSS_CONTAINER_ROOT="/go/src/k8s.io/kubernetes"
readonly KUBE_CROSS_CONTAINER_ROOT

# Where the containerized build leaves its output (OUT_DIR can come in from the Makefile).
readonly LOCAL_OUTPUT_ROOT="${KUBE_ROOT}/${OUT_DIR:-_output}"
readonly LOCAL_OUTPUT_SUBPATH="${LOCAL_OUTPUT_ROOT}/dockerized"
readonly LOCAL_OUTPUT_BINPATH="${LOCAL_OUTPUT_SUBPATH}/bin"
readonly REMOTE_ROOT="${KUBE_CROSS_CONTAINER_ROOT}"

# Tags of the base images (build/dependencies.yaml declares the same).
readonly __default_distroless_iptables_version=v0.11.0
readonly __default_go_runner_version=v2.4.0-go1.27.1-trixie.0
readonly __default_setcap_version=bookworm-v1.0.6

# Base for dynamically linked binaries; kube-proxy always starts from it (it needs iptables).
readonly __default_dynamic_base_image="$KUBE_BASE_IMAGE_REGISTRY/distroless-iptables:$__default_distroless_iptables_version"

# Base for statically linked binaries, unless a per-binary variable below says otherwise.
readonly KUBE_GORUNNER_IMAGE="${KUBE_GORUNNER_IMAGE:-$KUBE_BASE_IMAGE_REGISTRY/go-runner:$__default_go_runner_version}"

# Given a command's package path, print the base image its linking mode calls for.
__default_base_image() {
  if kube::golang::is_statically_linked "$1"; then
    echo "$KUBE_GORUNNER_IMAGE"
  else
    echo "$__default_dynamic_base_image"
  fi
}

# The base image of each server image; every one can be set from the environment.
readonly KUBE_APISERVER_BASE_IMAGE="${KUBE_APISERVER_BASE_IMAGE:-$(__default_base_image k8s.io/kubernetes/cmd/kube-apiserver)}"
readonly KUBE_CONTROLLER_MANAGER_BASE_IMAGE="${KUBE_CONTROLLER_MANAGER_BASE_IMAGE:-$(__default_base_image k8s.io/kubernetes/cmd/kube-controller-manager)}"
readonly KUBE_SCHEDULER_BASE_IMAGE="${KUBE_SCHEDULER_BASE_IMAGE:-$(__default_base_image k8s.io/kubernetes/cmd/kube-scheduler)}"
readonly KUBE_PROXY_BASE_IMAGE="${KUBE_PROXY_BASE_IMAGE:-$__default_dynamic_base_image}"
readonly KUBECTL_BASE_IMAGE="${KUBECTL_BASE_IMAGE:-$(__default_base_image k8s.io/kubernetes/cmd/kubectl)}"

# Handed to the server image builds, which use it to set file capabilities.
readonly KUBE_BUILD_SETCAP_IMAGE="${KUBE_BUILD_SETCAP_IMAGE:-$KUBE_BASE_IMAGE_REGISTRY/setcap:$__default_setcap_version}"

# The server binaries that become images, as "<binary>,<base image>" words.
# $1 - the os the images are for (unused here)
kube::build::get_docker_wrapped_binaries() {
  local targets=(
    "kube-apiserver,${KUBE_APISERVER_BASE_IMAGE}"
    "kube-controller-manager,${KUBE_CONTROLLER_MANAGER_BASE_IMAGE}"
    "kube-scheduler,${KUBE_SCHEDULER_BASE_IMAGE}"
    "kube-proxy,${KUBE_PROXY_BASE_IMAGE}"
    "kubectl,${KUBECTL_BASE_IMAGE}"
  )

  echo "${targets[@]}"
}

kube::log::status() {
  echo "+++ [$(date +'%m%d %H:%M:%S')] $1"
}

# GNU tar is needed: the packaging relies on --transform and --owner.
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

kube::build::is_docker_rootless() {
  "${DOCKER[@]}" info --format '{{json .SecurityOptions}}' | grep -q "name=rootless"
}

# What the build needs: GNU tar, a docker command and an engine answering it.
# The version is computed here, on the host, and handed to the container in a file.
kube::build::verify_prereqs() {
  kube::log::status "Verifying Prerequisites...."
  kube::build::ensure_tar
  if ! command -v "${DOCKER[0]}" >/dev/null; then
    echo "!!! no '${DOCKER[0]}' command on PATH" >&2
    return 1
  fi
  "${DOCKER[@]}" version --format '{{.Server.Version}}' >/dev/null
  mkdir -p "${LOCAL_OUTPUT_SUBPATH}"
  kube::version::get_version_vars
  kube::version::save_version_vars "${KUBE_ROOT}/.dockerized-kube-version-defs"
  umask 0022
}

# Run a command in kube-cross, the tree mounted at KUBE_CROSS_CONTAINER_ROOT.
# The image must be present: this sample never pulls (--pull=never), so an
# offline build fails fast instead of reaching for a registry.
kube::build::run_build_command() {
  local -a opts=(
    --rm
    "--name=kube-build-$$"
    --pull=never
    --network=none
    --env "GOPROXY=${GOPROXY}"
    --env "KUBE_FASTBUILD=${KUBE_FASTBUILD:-false}"
    --env "KUBE_BUILD_PLATFORMS=${KUBE_BUILD_PLATFORMS:-}"
    --env "KUBE_CGO_OVERRIDES=${KUBE_CGO_OVERRIDES:-}"
    --env "KUBE_STATIC_OVERRIDES=${KUBE_STATIC_OVERRIDES:-}"
    --env "FORCE_HOST_GO=${FORCE_HOST_GO:-}"
    --env "GOTOOLCHAIN=${GOTOOLCHAIN:-}"
    --env "GOFLAGS=${GOFLAGS:-}"
    --env "SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-}"
    --env "KUBE_OUTPUT_SUBPATH=_output/dockerized"
    --env "KUBE_GIT_VERSION_FILE=${KUBE_CROSS_CONTAINER_ROOT}/.dockerized-kube-version-defs"
    --env "GOCACHE=${KUBE_CROSS_CONTAINER_ROOT}/_output/dockerized/go-cache"
    --volume "${KUBE_ROOT}:${KUBE_CROSS_CONTAINER_ROOT}"
    --workdir "${KUBE_CROSS_CONTAINER_ROOT}"
  )
  kube::build::is_docker_rootless || opts+=("--user=$(id -u):$(id -g)")
  kube::log::status "Running $* in ${KUBE_CROSS_IMAGE}:${KUBE_CROSS_VERSION}"
  "${DOCKER[@]}" run "${opts[@]}" "${KUBE_CROSS_IMAGE}:${KUBE_CROSS_VERSION}" "$@"
}
