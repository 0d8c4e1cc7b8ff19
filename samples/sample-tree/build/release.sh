#!/usr/bin/env bash

# Small stand-in for Kubernetes' build/release.sh. Like the real one it runs
# `make cross` inside the kube-cross image (which must already be present:
# --pull=false), with the version computed on the host in a version file, then
# `make test` unless KUBE_RELEASE_RUN_TESTS=n, then packages with
# build/lib/release.sh (kube::release::package_tarballs).
#
# Unlike the real one (v1.34 and older) it bind-mounts the tree instead of
# syncing it into a data container with rsync, so the engine must be local.

set -o errexit
set -o nounset
set -o pipefail

KUBE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")"/.. && pwd -P)
source "${KUBE_ROOT}/build/common.sh"
source "${KUBE_ROOT}/build/lib/release.sh"

KUBE_RELEASE_RUN_TESTS=${KUBE_RELEASE_RUN_TESTS-y}

readonly KUBE_BUILD_IMAGE_CROSS_TAG="$(cat "${KUBE_ROOT}/build/build-image/cross/VERSION")"
readonly KUBE_CROSS_IMAGE="k8s.gcr.io/build-image/kube-cross:${KUBE_BUILD_IMAGE_CROSS_TAG}"

kube::log::status "Verifying Prerequisites...."
kube::build::ensure_tar
"${DOCKER[@]}" version --format '{{.Server.Version}}' >/dev/null
if ! "${DOCKER[@]}" image inspect "${KUBE_CROSS_IMAGE}" >/dev/null 2>&1; then
  echo "!!! ${KUBE_CROSS_IMAGE} is not present (and this build never pulls it)" >&2
  exit 1
fi

mkdir -p "${LOCAL_OUTPUT_SUBPATH}"
kube::version::get_version_vars
kube::version::save_version_vars "${KUBE_ROOT}/.dockerized-kube-version-defs"
cache="${GOCACHE:-${LOCAL_OUTPUT_SUBPATH}/go-cache}"
mkdir -p "${cache}"

kube::build::run_build_command() {
  # The command run inside the container: argv, not an interpolated string.
  "${DOCKER[@]}" run --rm --network none --name "kube-build-$$" \
    -v "${KUBE_ROOT}:${REMOTE_ROOT}" -v "${cache}:/gocache" -w "${REMOTE_ROOT}" \
    -e KUBE_OUTPUT_SUBPATH=_output/dockerized \
    -e KUBE_GIT_VERSION_FILE="${REMOTE_ROOT}/.dockerized-kube-version-defs" \
    -e "KUBE_FASTBUILD=${KUBE_FASTBUILD:-false}" -e "KUBE_BUILD_PLATFORMS=${KUBE_BUILD_PLATFORMS:-}" \
    -e "GOFLAGS=${GOFLAGS:-}" -e "SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-}" -e GOCACHE=/gocache \
    "${KUBE_CROSS_IMAGE}" "$@"
}

kube::log::status "Running build command (make cross) in ${KUBE_CROSS_IMAGE}"
kube::build::run_build_command make cross

if [[ "${KUBE_RELEASE_RUN_TESTS}" =~ ^[yY]$ ]]; then
  kube::build::run_build_command make test
  kube::build::run_build_command make test-integration
fi

kube::release::package_tarballs
kube::log::status "done: $(ls "${RELEASE_TARS}")"
