#!/usr/bin/env bash

# Small stand-in for Kubernetes' build/release.sh. Like the real one it builds
# inside the kube-cross image (which must already be present: --pull=false),
# stamps the binaries with the host's version (kube::version::ldflags), copies
# them to _output/dockerized/bin and packages _output/release-tars.
#
# Honoured: KUBE_FASTBUILD, KUBE_BUILD_PLATFORMS (linux only), KUBE_RELEASE_RUN_TESTS,
# KUBE_GIT_VERSION_FILE, GOCACHE (mounted as the container's build cache), DOCKER_HOST.
# Unlike the real one it bind-mounts the tree, so the engine must be local.

set -o errexit
set -o nounset
set -o pipefail

KUBE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")"/.. && pwd -P)
cd "${KUBE_ROOT}"

readonly KUBE_GO_PACKAGE=k8s.io/kubernetes
source "${KUBE_ROOT}/hack/lib/version.sh"

readonly KUBE_BUILD_IMAGE_CROSS_TAG="$(cat "${KUBE_ROOT}/build/build-image/cross/VERSION")"
readonly KUBE_CROSS_IMAGE="k8s.gcr.io/build-image/kube-cross:${KUBE_BUILD_IMAGE_CROSS_TAG}"
readonly RELEASE_TARS="${KUBE_ROOT}/_output/release-tars"
readonly DOCKERIZED_BIN="${KUBE_ROOT}/_output/dockerized/bin"
readonly TARGETS=(cmd/kube-apiserver cmd/kubectl cmd/kubelet)

if [[ "${KUBE_FASTBUILD:-}" == "true" ]]; then
  platforms=(linux/amd64)
else
  IFS=" " read -ra platforms <<< "${KUBE_BUILD_PLATFORMS:-linux/amd64 linux/arm64}"
fi

echo "+++ [release] verifying prerequisites"
docker version --format '{{.Server.Version}}' >/dev/null
if ! docker image inspect "${KUBE_CROSS_IMAGE}" >/dev/null 2>&1; then
  echo "!!! ${KUBE_CROSS_IMAGE} is not present (and this build never pulls it)" >&2
  exit 1
fi

echo "+++ [release] generating files"
make generated_files >/dev/null

kube::version::get_version_vars
ldflags="-s -w -buildid= $(kube::version::ldflags)"
echo "+++ [release] version ${KUBE_GIT_VERSION:-unknown} (${KUBE_GIT_TREE_STATE:-unknown})"

cache="${GOCACHE:-${KUBE_ROOT}/_output/dockerized/go-cache}"
mkdir -p "${cache}" "${DOCKERIZED_BIN}" "${RELEASE_TARS}"
rm -f "${RELEASE_TARS}"/*.tar.gz

for platform in "${platforms[@]}"; do
  echo "+++ [release] building ${TARGETS[*]} for ${platform} in ${KUBE_CROSS_IMAGE}"
  # The script run inside the container: argv, not an interpolated string.
  docker run --rm --network none --name "kube-build-$$-${platform//\//-}" \
    -v "${KUBE_ROOT}:/go/src/${KUBE_GO_PACKAGE}" -v "${cache}:/gocache" \
    -w "/go/src/${KUBE_GO_PACKAGE}" \
    -e GOPATH=/go -e GO111MODULE=off -e CGO_ENABLED=0 -e GOCACHE=/gocache -e GOFLAGS="${GOFLAGS:-}" \
    -e GOOS="${platform%/*}" -e GOARCH="${platform##*/}" -e LDFLAGS="${ldflags}" \
    -e OUT="_output/dockerized/bin/${platform}" \
    "${KUBE_CROSS_IMAGE}" sh -c '
      set -e
      mkdir -p "$OUT"
      for target in "$@"; do
        go build -trimpath -tags selinux,notest -ldflags "$LDFLAGS" -o "$OUT/${target##*/}" "k8s.io/kubernetes/$target"
      done
    ' sh "${TARGETS[@]}"
done

if [[ "${KUBE_RELEASE_RUN_TESTS:-y}" =~ ^[yY] ]]; then
  echo "+++ [release] running tests: go vet ./cmd/... in ${KUBE_CROSS_IMAGE}"
  docker run --rm --network none -v "${KUBE_ROOT}:/go/src/${KUBE_GO_PACKAGE}" -v "${cache}:/gocache" \
    -w "/go/src/${KUBE_GO_PACKAGE}" -e GOPATH=/go -e GO111MODULE=off -e GOCACHE=/gocache \
    "${KUBE_CROSS_IMAGE}" go vet ./cmd/...
fi

echo "+++ [release] packaging"
stage="$(mktemp -d "${KUBE_ROOT}/_output/release-stage.XXXXXX")"
trap 'rm -rf "${stage}"' EXIT
for platform in "${platforms[@]}"; do
  arch="${platform##*/}"
  mkdir -p "${stage}/server-${arch}/kubernetes/server/bin"
  cp "${DOCKERIZED_BIN}/${platform}"/* "${stage}/server-${arch}/kubernetes/server/bin/"
  tar -czf "${RELEASE_TARS}/kubernetes-server-linux-${arch}.tar.gz" -C "${stage}/server-${arch}" kubernetes
done
mkdir -p "${stage}/full/kubernetes"
echo "${KUBE_GIT_VERSION:-unknown}" > "${stage}/full/kubernetes/version"
cp README.md "${stage}/full/kubernetes/"
tar -czf "${RELEASE_TARS}/kubernetes.tar.gz" -C "${stage}/full" kubernetes
echo "+++ [release] done: $(ls "${RELEASE_TARS}")"
