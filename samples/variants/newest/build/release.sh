#!/usr/bin/env bash

# Sample of build/release.sh in the newest trees: kube-cross runs directly
# (kube::build::run_build_command in build/common.sh) with the tree
# bind-mounted - no kube-build image, no data container, no rsync, no
# published port - so the engine must see this tree's path. Then `make test`
# unless KUBE_RELEASE_RUN_TESTS=n, then the packaging of build/lib/release.sh.

set -o errexit
set -o nounset
set -o pipefail

KUBE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")"/.. && pwd -P)
source "${KUBE_ROOT}/build/common.sh"
source "${KUBE_ROOT}/build/lib/release.sh"

KUBE_RELEASE_RUN_TESTS=${KUBE_RELEASE_RUN_TESTS-y}

kube::build::verify_prereqs
kube::build::run_build_command make cross

if [[ "${KUBE_RELEASE_RUN_TESTS}" =~ ^[yY]$ ]]; then
  kube::build::run_build_command make test
  kube::build::run_build_command make test-integration
fi

kube::release::package_tarballs
kube::log::status "done: $(ls "${RELEASE_TARS}")"
