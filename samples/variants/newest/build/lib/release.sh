#!/usr/bin/env bash

# Sample of build/lib/release.sh as the newest trees shape it: the release
# tarballs and the server images, from the binaries in
# _output/dockerized/bin/<os>/<arch>. Each server image build gets its base
# image and the setcap image (KUBE_BUILD_SETCAP_IMAGE) as --build-args, and
# kube-log-runner (first in kube::golang::server_image_targets) goes into
# every server image rather than becoming one.

readonly RELEASE_STAGE="${LOCAL_OUTPUT_ROOT}/release-stage"
readonly RELEASE_TARS="${LOCAL_OUTPUT_ROOT}/release-tars"
readonly RELEASE_IMAGES="${LOCAL_OUTPUT_ROOT}/release-images"

KUBE_BUILD_CONFORMANCE=${KUBE_BUILD_CONFORMANCE:-y}
KUBE_BUILD_PULL_LATEST_IMAGES=${KUBE_BUILD_PULL_LATEST_IMAGES:-y}

function kube::release::package_tarballs() {
  # Clean out any old releases
  rm -rf "${RELEASE_STAGE}" "${RELEASE_TARS}" "${RELEASE_IMAGES}"
  mkdir -p "${RELEASE_TARS}"
  kube::release::package_src_tarball
  kube::release::package_client_tarballs
  kube::release::package_node_tarballs
  kube::release::package_server_tarballs
  kube::release::package_final_tarball
}

# Package the source code we built.
function kube::release::package_src_tarball() {
  local -r src_tarball="${RELEASE_TARS}/kubernetes-src.tar.gz"
  kube::log::status "Building tarball: src"
  find "${KUBE_ROOT}" -mindepth 1 -maxdepth 1 ! \( \( -path "${KUBE_ROOT}"/_\* -o -path "${KUBE_ROOT}"/.git\* \) -prune \) -print0 \
    | "${TAR}" czf "${src_tarball}" --owner=0 --group=0 --transform "s|${KUBE_ROOT#/*}|kubernetes|" --null -T -
}

function kube::release::package_client_tarballs() {
  local long_platforms=("${LOCAL_OUTPUT_BINPATH}"/*/*)
  if [[ -n ${KUBE_BUILD_PLATFORMS-} ]]; then
    read -ra long_platforms <<< "${KUBE_BUILD_PLATFORMS}"
  fi
  local platform_long
  for platform_long in "${long_platforms[@]}"; do
    local platform=${platform_long##"${LOCAL_OUTPUT_BINPATH}"/}
    local platform_tag=${platform/\//-}
    kube::log::status "Starting tarball: client ${platform_tag}"
    local release_stage="${RELEASE_STAGE}/client/${platform_tag}/kubernetes"
    rm -rf "${release_stage}"
    mkdir -p "${release_stage}/client/bin"
    cp "${KUBE_CLIENT_BINARIES[@]/#/${LOCAL_OUTPUT_BINPATH}/${platform}/}" "${release_stage}/client/bin/"
    kube::release::create_tarball "${RELEASE_TARS}/kubernetes-client-${platform_tag}.tar.gz" "${release_stage}/.."
  done
}

function kube::release::package_node_tarballs() {
  local platform
  for platform in "${KUBE_NODE_PLATFORMS[@]}"; do
    local platform_tag=${platform/\//-}
    kube::log::status "Building tarball: node ${platform_tag}"
    local release_stage="${RELEASE_STAGE}/node/${platform_tag}/kubernetes"
    rm -rf "${release_stage}"
    mkdir -p "${release_stage}/node/bin"
    cp "${KUBE_NODE_BINARIES[@]/#/${LOCAL_OUTPUT_BINPATH}/${platform}/}" "${release_stage}/node/bin/"
    cp "${KUBE_CLIENT_BINARIES[@]/#/${LOCAL_OUTPUT_BINPATH}/${platform}/}" "${release_stage}/node/bin/"
    cp "${RELEASE_TARS}/kubernetes-src.tar.gz" "${release_stage}/"
    kube::release::create_tarball "${RELEASE_TARS}/kubernetes-node-${platform_tag}.tar.gz" "${release_stage}/.."
  done
}

function kube::release::build_server_images() {
  rm -rf "${RELEASE_IMAGES}"
  local platform
  for platform in "${KUBE_SERVER_PLATFORMS[@]}"; do
    local platform_tag=${platform/\//-}
    local arch
    arch=$(basename "${platform}")
    kube::log::status "Building images: ${platform_tag}"
    local release_stage="${RELEASE_STAGE}/server/${platform_tag}/kubernetes"
    rm -rf "${release_stage}"
    mkdir -p "${release_stage}/server/bin"
    cp "${KUBE_SERVER_IMAGE_BINARIES[@]/#/${LOCAL_OUTPUT_BINPATH}/${platform}/}" "${release_stage}/server/bin/"
    kube::release::create_docker_images_for_server "${release_stage}/server/bin" "${arch}"
  done
}

function kube::release::package_server_tarballs() {
  kube::release::build_server_images
  local platform
  for platform in "${KUBE_SERVER_PLATFORMS[@]}"; do
    local platform_tag=${platform/\//-}
    kube::log::status "Building tarball: server ${platform_tag}"
    local release_stage="${RELEASE_STAGE}/server/${platform_tag}/kubernetes"
    cp "${KUBE_SERVER_BINARIES[@]/#/${LOCAL_OUTPUT_BINPATH}/${platform}/}" "${release_stage}/server/bin/"
    cp "${KUBE_CLIENT_BINARIES[@]/#/${LOCAL_OUTPUT_BINPATH}/${platform}/}" "${release_stage}/server/bin/"
    cp "${RELEASE_TARS}/kubernetes-src.tar.gz" "${release_stage}/"
    kube::release::create_tarball "${RELEASE_TARS}/kubernetes-server-${platform_tag}.tar.gz" "${release_stage}/.."
  done
}

# An image per docker-wrapped binary, FROM its base image, saved beside it.
# The Dockerfile is written here; it takes BASEIMAGE, SETCAP_IMAGE and BINARY
# as build arguments. (The real apiserver image runs setcap in a stage FROM
# the setcap image; this sample only records which one it was given.)
function kube::release::create_docker_images_for_server() {
  local binary_dir="$1"
  local arch="$2"
  local os="${3:-linux}"
  local binaries
  binaries=$(kube::build::get_docker_wrapped_binaries "${os}")
  local images_dir="${RELEASE_IMAGES}/${arch}"
  mkdir -p "${images_dir}"

  local -r docker_registry="registry.k8s.io"
  local docker_tag="${KUBE_GIT_VERSION/+/_}"
  if [[ -z "${docker_tag}" ]]; then
    echo "git version information missing; cannot create Docker tag" >&2
    return 1
  fi
  local docker_build_opts=
  if [[ "${KUBE_BUILD_PULL_LATEST_IMAGES}" =~ [yY] ]]; then
    docker_build_opts='--pull'
  fi

  local wrappable
  for wrappable in $binaries; do
    local binary_name=${wrappable%%,*}
    local base_image=${wrappable##*,}
    local binary_file_path="${binary_dir}/${binary_name}"
    [[ -f "${binary_file_path}" ]] || continue
    local docker_build_path="${binary_file_path}.dockerbuild"
    local docker_image_tag="${docker_registry}/${binary_name}-${arch}:${docker_tag}"
    kube::log::status "Starting docker build for image: ${binary_name}-${os}-${arch}"
    rm -rf "${docker_build_path}"
    mkdir -p "${docker_build_path}"
    ln "${binary_file_path}" "${docker_build_path}/${binary_name}"
    local log_runner=()
    if [[ -f "${binary_dir}/kube-log-runner" ]]; then
      ln "${binary_dir}/kube-log-runner" "${docker_build_path}/kube-log-runner"
      log_runner=(COPY kube-log-runner /usr/local/bin/kube-log-runner)
    fi
    {
      echo 'ARG BASEIMAGE'
      echo 'FROM ${BASEIMAGE}'
      echo 'ARG SETCAP_IMAGE'
      echo 'ARG BINARY'
      echo 'LABEL io.kbuild.sample.setcap-image=${SETCAP_IMAGE}'
      echo 'COPY ${BINARY} /usr/local/bin/${BINARY}'
      if [[ ${#log_runner[@]} -gt 0 ]]; then echo "${log_runner[*]}"; fi
    } > "${docker_build_path}/Dockerfile"
    DOCKER_BUILDKIT=0 "${DOCKER[@]}" build ${docker_build_opts:+"${docker_build_opts}"} -q -t "${docker_image_tag}" \
      --build-arg BASEIMAGE="${base_image}" \
      --build-arg SETCAP_IMAGE="${KUBE_BUILD_SETCAP_IMAGE}" \
      --build-arg BINARY="${binary_name}" \
      "${docker_build_path}" >/dev/null
    "${DOCKER[@]}" save -o "${binary_file_path}.tar" "${docker_image_tag}"
    echo "${docker_tag}" > "${binary_file_path}.docker_tag"
    rm -rf "${docker_build_path}"
    ln "${binary_file_path}.tar" "${images_dir}/"
    kube::log::status "Deleting docker image ${docker_image_tag}"
    "${DOCKER[@]}" rmi "${docker_image_tag}" &>/dev/null || true
  done
}

function kube::release::package_final_tarball() {
  kube::log::status "Building tarball: final"
  local release_stage="${RELEASE_STAGE}/full/kubernetes"
  rm -rf "${release_stage}"
  mkdir -p "${release_stage}"
  cp "${KUBE_ROOT}/README.md" "${release_stage}/"
  echo "${KUBE_GIT_VERSION}" > "${release_stage}/version"
  kube::release::create_tarball "${RELEASE_TARS}/kubernetes.tar.gz" "${release_stage}/.."
}

function kube::release::create_tarball() {
  kube::build::ensure_tar
  local tarfile=$1
  local stagingdir=$2
  "${TAR}" czf "${tarfile}" -C "${stagingdir}" kubernetes --owner=0 --group=0
}
