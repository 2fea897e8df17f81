#!/usr/bin/env bash
# Every GPU check of radpersona in one run (under 10 minutes on one H100/H200), one JSON:
#   1. the CUDA tests (every test file with a `pytest.mark.gpu` test, run with `pytest -m gpu`);
#   2. the radiomics engine on cuda: benchmarks/radiomics.py --engines ours --device cuda --patients 64,
#      extrapolated to 1,370 patients x 162 patches (goal < 60 s);
#   3. benchmarks/gpu.py measure: DDPM training and DDIM-50 sampling volumes/s at 32x128x128 with the
#      paper preset's U-Net (goals on an H200: >= 60 and >= 4.6), the usage predictor's epoch time, and
#      the peak memory of each.
# Writes ${OUT:-results/benchmarks}/gpu.json and prints it; exits 0 when every part ran and every test
# passed, 1 otherwise (the JSON is written either way), 2 without CUDA or a needed module (nothing written).
#
#   bash benchmarks/gpu.sh                 # on a machine with a GPU
#   bash benchmarks/gpu.sh --cpu-dry-run   # tiny shapes on the CPU, writes gpu-dry-run.json: checks the script
#
# Environment: PYTHON (default python3; needs torch), OUT (output folder), MONAI_WHEEL (a MONAI wheel,
# pip-installed with --no-deps into a temporary folder when `import monai` fails, e.g. on a machine
# without internet), WHEELS (a folder of further wheels installed the same way, e.g. jsonschema,
# referencing, rpds-py, jsonschema-specifications), RADIOMICS_PATIENTS (default 64), and the time limits
# in seconds GPU_SH_TIMEOUT_TESTS (140), GPU_SH_TIMEOUT_RADIOMICS (170), GPU_SH_TIMEOUT_MODELS (200).
set -uo pipefail

me=benchmarks/gpu.sh
die() {
    echo "$me: $*" >&2
    exit 2
}

dry_run=0
case "${1:-}" in
    "") ;;
    --cpu-dry-run) dry_run=1 ;;
    -h | --help)
        sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$1' (usage: bash $me [--cpu-dry-run])" ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || die "cannot find the repository"
cd "$repo" || die "cannot enter $repo"
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || die "no Python: '$PY' is not on PATH (set PYTHON to a Python with torch)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

# --- CUDA first: without it nothing else is worth checking ----------------------------------------------------
cuda=$("$PY" - 2>/dev/null <<'EOF'
import sys
try:
    import torch
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")
    sys.exit(3)
print(torch.cuda.get_device_name() if torch.cuda.is_available() else torch.__version__)
sys.exit(0 if torch.cuda.is_available() else 4)
EOF
)
case $? in
    0) ;;
    3) die "torch is not importable with $PY (${cuda##*$'\n'}); this script needs torch with CUDA" ;;
    4)
        if [ "$dry_run" = 0 ]; then
            die "no CUDA device (torch.cuda.is_available() is False; torch ${cuda##*$'\n'}," \
                "CUDA_VISIBLE_DEVICES='${CUDA_VISIBLE_DEVICES-<unset>}'); this script needs a GPU"
        fi
        ;;
    *) die "could not ask $PY whether CUDA is available" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/radpersona-gpu.XXXXXX") || die "cannot make a temporary folder"
trap 'rm -rf "$work"' EXIT

# --- modules: MONAI and others may be missing on a machine without internet; install given wheels -------------
modules="monai jsonschema yaml numpy scipy pandas pyarrow skimage sklearn einops pytest"
missing_modules() {
    "$PY" - $modules 2>/dev/null <<'EOF'
import importlib, sys
missing = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        missing.append(name)
print(" ".join(missing))
EOF
}
missing=$(missing_modules)
if [ -n "$missing" ]; then
    wheels=()
    [ -n "${MONAI_WHEEL:-}" ] && wheels+=("$MONAI_WHEEL")
    if [ -n "${WHEELS:-}" ]; then
        for w in "$WHEELS"/*.whl; do [ -e "$w" ] && wheels+=("$w"); done
    fi
    if [ "${#wheels[@]}" -gt 0 ]; then
        echo "$me: installing ${#wheels[@]} wheel(s) (--no-deps) for: $missing" >&2
        "$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check \
            --target "$work/site" "${wheels[@]}" >"$work/pip.log" 2>&1 ||
            die "pip could not install ${wheels[*]}: $(tail -n 1 "$work/pip.log")"
        export PYTHONPATH="$repo:$work/site${PYTHONPATH#"$repo"}"
        missing=$(missing_modules)
    fi
    [ -z "$missing" ] || die "missing Python modules: $missing (give their wheels: MONAI_WHEEL=/path/to/monai-*.whl," \
        "WHEELS=/folder/of/wheels; they are installed with pip --no-deps)"
fi

out_dir=${OUT:-results/benchmarks}
if [ "$dry_run" = 1 ]; then
    out="$out_dir/gpu-dry-run.json"
    device=cpu
else
    out="$out_dir/gpu.json"
    device=cuda
fi
rm -f "$out" # a JSON left by an earlier run must not pass for this one's

# run NAME LIMIT CMD...: stdout to NAME.json, stderr to NAME.log, exit status to NAME.rc
run() {
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    echo "$me: $name (at most ${limit} s) ..." >&2
    timeout --kill-after=10 "$limit" "$@" >"$work/$name.json" 2>"$work/$name.log"
    rc=$?
    echo "$rc" >"$work/$name.rc"
    echo "$me: $name: exit $rc after $((SECONDS - start)) s" >&2
}

# 1. the CUDA tests
grep -rl --include='*.py' -e 'pytest.mark.gpu' tests | sort >"$work/tests.files"
# shellcheck disable=SC2046
run tests "${GPU_SH_TIMEOUT_TESTS:-140}" "$PY" -m pytest -m gpu -q -p no:cacheprovider \
    --junitxml="$work/tests.xml" $(cat "$work/tests.files")
cat "$work/tests.json" >>"$work/tests.log"

# 2. the radiomics engine on cuda, extrapolated to the cohort
if [ "$dry_run" = 1 ]; then
    radiomics_args=(--device cpu --patients 1 --repeats 1)
else
    radiomics_args=(--device cuda --patients "${RADIOMICS_PATIENTS:-64}" --repeats 3)
fi
run radiomics "${GPU_SH_TIMEOUT_RADIOMICS:-170}" "$PY" benchmarks/radiomics.py --engines ours \
    "${radiomics_args[@]}" --extrapolate-to 1370

# 3. DDPM training and sampling, usage predictor
models_args=(--device "$device")
[ "$dry_run" = 1 ] && models_args+=(--tiny)
run models "${GPU_SH_TIMEOUT_MODELS:-200}" "$PY" benchmarks/gpu.py measure "${models_args[@]}"

combine_args=("$work" --out "$out" --wall-seconds "$SECONDS")
[ "$dry_run" = 1 ] && combine_args+=(--dry-run)
"$PY" benchmarks/gpu.py combine "${combine_args[@]}" 2>"$work/combine.log"
rc=$?
[ -f "$out" ] || die "could not write $out: $(tail -n 3 "$work/combine.log")"
cat "$out"
if [ "$rc" != 0 ]; then
    echo "$me: some part failed or a test did not pass; see $out" >&2
fi
exit "$rc"
