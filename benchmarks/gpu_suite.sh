#!/usr/bin/env bash
# The benchmarks on one accelerator, in at most about 5 minutes, ending with one JSON line:
#
#   {"backend": ..., "device": ..., "curvature": {...}, "nistp": {...},
#    "time_to_target": {"restricted_mnist": {...}, "autoencoder": {...}}, "data_parallel": {...},
#    "order_job": {"steps": ..., "ms_per_step": ..., "paper_job_hours": ..., ...}, "seconds": ...}
#
# - curvature: benchmarks/bench_curvature.py (GGN product and 20-iteration step vs one gradient);
# - nistp: benchmarks/bench_nistp.py (deformed images per second);
# - time_to_target: benchmarks/bench_time_to_target.py --quick (seconds to the targets);
# - data_parallel: benchmarks/bench_data_parallel.py on every device of the machine (the step with
#   its batch sharded over all of them, against one device: equality and ms/step);
# - order_job: one order-robustness training job with the paper's settings
#   (workflow/configs/paper.yaml, `order:`: MLP 500 tanh, minibatches of 512, natural gradient with
#   MINRES-QLP, 20 iterations, damping 3, lr .2, the NISTP stream pnist07) on the embedded `fonts`
#   source (the paper's EMNIST needs files a fresh machine does not have) and for ORDER_SAMPLES
#   online samples instead of 32.7M; the paper's job (63,867 steps) is extrapolated from its
#   ms/step.
#
# Needs the repository installed with its study and test extras (`pip install -e ".[study,test]"`,
# plus the accelerator's jaxlib plugin); run from anywhere: `bash benchmarks/gpu_suite.sh`.
# SUITE_QUICK=1 shrinks everything to a CPU smoke test (about 3 minutes on 2 cores). Logs go to
# SUITE_OUT (default: a temporary folder), whose path is in the JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${SUITE_OUT:-$(mktemp -d -t natgrad-gpu-suite.XXXXXX)}
mkdir -p "$OUT"
START=$(date +%s)

if [[ "${SUITE_QUICK:-0}" == 1 ]]; then
  CURVATURE_ARGS=(--only mlp784-500-10_b512 --repeats 1)
  NISTP_ARGS=(--batch 256 --repeats 2)
  TTT_ARGS=(--quick --problems restricted_mnist --methods ng ng_paper adam --mnist-budget 2)
  DP_ARGS=(--batch 256 --features 64 --hidden 32 --steps 3)
  ORDER_SAMPLES=2048 ORDER_HELDOUT=256
else
  CURVATURE_ARGS=(--repeats 5 --shared)
  NISTP_ARGS=(--repeats 7)
  TTT_ARGS=(--quick)
  DP_ARGS=(--batch 4096 --steps 10)
  ORDER_SAMPLES=${ORDER_SAMPLES:-524288} ORDER_HELDOUT=10000
fi

echo "# curvature" >&2
"$PYTHON" benchmarks/bench_curvature.py "${CURVATURE_ARGS[@]}" > "$OUT/curvature.log"
echo "# nistp" >&2
"$PYTHON" benchmarks/bench_nistp.py "${NISTP_ARGS[@]}" > "$OUT/nistp.log"
echo "# time to target" >&2
"$PYTHON" benchmarks/bench_time_to_target.py "${TTT_ARGS[@]}" > "$OUT/time_to_target.log" \
  2> "$OUT/time_to_target.err"
echo "# data parallel over every device" >&2
"$PYTHON" benchmarks/bench_data_parallel.py "${DP_ARGS[@]}" > "$OUT/data_parallel.log"

echo "# one order-robustness job (paper settings)" >&2
# The job's settings through the study's own API: the paper config's order: section, resolved and
# checked by natgrad.study.config, with the dataset and the run length set for this suite.
"$PYTHON" - "$OUT" "$ORDER_SAMPLES" "$ORDER_HELDOUT" <<'PY'
import json
import sys

import yaml

from natgrad.study import config
from natgrad.study.order import spec

out, samples, heldout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = yaml.safe_load(open("config.yaml"))
paper = yaml.safe_load(open("workflow/configs/paper.yaml"))
order = {**base["order"], **paper["order"]}
order.update(dataset="fonts", online_samples=samples, segment_size=samples // 2, segments=1,
             resamples=2, heldout_size=heldout, validation_size=heldout,
             eval_every=max(1, samples // order["batch_size"] // 4),
             checkpoint_every=10**9)
cfg = config.resolve({**base, "order": order})["order"]
json.dump({"data": spec.data_config(cfg), "job": spec.job_config(cfg, "ng"),
           "paper_steps": paper["order"]["online_samples"] // paper["order"]["batch_size"]},
          open(f"{out}/order_job.json", "w"))
PY
ORDER_DATA=$("$PYTHON" -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['data']))" "$OUT/order_job.json")
ORDER_JOB=$("$PYTHON" -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['job']))" "$OUT/order_job.json")
"$PYTHON" -m natgrad.study order data --config "$ORDER_DATA" --datasets '{"fonts": {"format": "fonts"}}' \
  --train "$OUT/order/train.zarr" --heldout "$OUT/order/heldout.zarr" \
  --validation "$OUT/order/validation.zarr" 2> "$OUT/order_data.log"
ORDER_START=$(date +%s.%N)
"$PYTHON" -m natgrad.study order train --job "$ORDER_JOB" --segment 0 --resamples 0 --seed 0 \
  --out "$OUT/order/run.zarr" --train "$OUT/order/train.zarr" --heldout "$OUT/order/heldout.zarr" \
  --validation "$OUT/order/validation.zarr" 2> "$OUT/order_train.log"
ORDER_END=$(date +%s.%N)

"$PYTHON" - "$OUT" "$START" "$ORDER_START" "$ORDER_END" <<'PY'
import json
import re
import sys
import time

import jax

out, start, order_start, order_end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])


def last_json(name):
    return json.loads(open(f"{out}/{name}").read().strip().splitlines()[-1])


job = json.load(open(f"{out}/order_job.json"))
log = open(f"{out}/order_train.log").read()
found = re.search(r"final validation error ([\d.]+) %; first chunk \(with compilation\) ([\d.]+) s, "
                  r"then ([\d.]+) ms/step", log)
steps = job["job"]["online_samples"] // job["job"]["batch_size"]
order = {"steps": steps, "batch_size": job["job"]["batch_size"], "wall_s": round(order_end - order_start, 1)}
if found:
    error, first_chunk, ms = (float(v) for v in found.groups())
    order.update(validation_error_pct=error, first_chunk_s=first_chunk, ms_per_step=ms,
                 paper_steps=job["paper_steps"],
                 paper_job_hours=round(ms * job["paper_steps"] / 3.6e6, 2))
result = {"backend": jax.default_backend(), "device": str(jax.devices()[0]),
          "curvature": last_json("curvature.log"), "nistp": last_json("nistp.log"),
          "time_to_target": last_json("time_to_target.log"),
          "data_parallel": last_json("data_parallel.log"), "order_job": order,
          "seconds": round(time.time() - start, 1), "logs": out}
print(json.dumps(result))
PY
