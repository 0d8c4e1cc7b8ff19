#!/usr/bin/env bash

# Sample of Kubernetes' build/package-tarballs.sh: package what is in
# _output/dockerized/bin (the release tarballs and the server images).

set -o errexit
set -o nounset
set -o pipefail

KUBE_ROOT=$(dirname "${BASH_SOURCE[0]}")/..
source "${KUBE_ROOT}/build/common.sh"
source "${KUBE_ROOT}/build/lib/release.sh"

kube::build::ensure_tar
kube::version::get_version_vars
kube::release::package_tarballs
