#!/usr/bin/env bash
# Everything about deep_nets that only a CUDA machine can verify, in under 8 minutes on one GPU; one JSON of figures.
#   benchmarks/gpu_check.sh [OUT.json]               the GPU tests (pytest -m gpu), then throughput of resnet18_plain
#                                                    w64 b256 in fp32 / bf16 / bf16+channels_last / +compile, one full
#                                                    evaluation, the projected 100-epoch run (default gpu_check.json)
#   benchmarks/gpu_check.sh --cpu-smoke [OUT.json]   the same script at a tiny size on CPU (GPU tests skip there)
#   benchmarks/gpu_check.sh --help                   this text
# Exit status: the GPU tests' (0 when they pass); 2 for an unknown option.
set -euo pipefail
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
SMOKE=()
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  --cpu-smoke) SMOKE=(--cpu-smoke); shift ;;
  -*) echo "error: unknown option $1 (benchmarks/gpu_check.sh --help lists them)" >&2; exit 2 ;;
esac
if [ $# -gt 1 ]; then echo "error: one OUT.json at most, got: $*" >&2; exit 2; fi
OUT=${1:-gpu_check.json}
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

start=$(date +%s)
set +e
"$PY" -m pytest -q -m gpu tests/test_gpu.py --junitxml="$WORK/gpu_tests.xml" -p no:cacheprovider
tests_status=$?
set -e
tests_s=$(( $(date +%s) - start ))
"$PY" benchmarks/bench_gpu.py "${SMOKE[@]}" --out "$WORK/bench.json"
"$PY" - "$WORK/gpu_tests.xml" "$WORK/bench.json" "$OUT" "$tests_status" "$tests_s" "$(( $(date +%s) - start ))" <<'PYEOF'
import json, sys, xml.etree.ElementTree as ET
xml, bench, out, status, tests_s, total_s = sys.argv[1:]
suite = ET.parse(xml).getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
cases = {c.get("name"): ("failed" if c.find("failure") is not None or c.find("error") is not None
                         else "skipped" if c.find("skipped") is not None else "passed") for c in suite.iter("testcase")}
figures = {"gpu_tests": cases, "gpu_tests_exit_status": int(status), "gpu_tests_s": int(tests_s),
           **json.load(open(bench)), "total_s": int(total_s)}
json.dump(figures, open(out, "w"), indent=1)
print(f"wrote {out}: tests {', '.join(f'{k} {v}' for k, v in cases.items())}")
PYEOF
exit "$tests_status"
