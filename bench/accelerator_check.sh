#!/usr/bin/env bash
# Checks that TensorFlow sees this machine's GPU (or TPU) and measures WaveGAN on it, in about
# five minutes:
#   1. the accelerator TensorFlow sees            accelerator=GPU gpus=N gpu_name=...
#   2. bench/train_step.py at paper size (d=64, batch 64) in float32, mixed_float16 and
#      with XLA                                   peak_gflops=... d64b64_default_sec_per_iter=...
#   3. bench/generate.py (exported G at d=64)     rtf_float32=... rtf_bfloat16=...
# each printing its name=value line. Without a GPU or TPU it prints that no accelerator was
# found and exits 0, so it can run anywhere. The benchmarks run on one device; on a TPU only
# the first step runs (they do not use TPUStrategy).
#
#   bash bench/accelerator_check.sh                 # uses `python`; PYTHON=... to choose one
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

# One line: "accelerator=GPU gpus=N gpu_name=NAME", "accelerator=TPU tpu_cores=N" or "none".
found=$("$PYTHON" - <<'EOF'
import glob

import tensorflow as tf

gpus = tf.config.list_physical_devices("GPU")
if gpus:
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "unknown")
    print(f"accelerator=GPU gpus={len(gpus)} gpu_name={name.replace(' ', '_')}")
elif glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        print(f"accelerator=TPU tpu_cores={len(tf.config.list_logical_devices('TPU'))}")
    except (ValueError, RuntimeError, tf.errors.OpError):
        print("none")
else:
    print("none")
EOF
)
found=$(printf '%s\n' "$found" | tail -n 1)

if [ "$found" = "none" ]; then
  echo "no accelerator found: TensorFlow sees no GPU or TPU on this machine, nothing to measure"
  exit 0
fi
echo "$found"
if [[ "$found" == accelerator=TPU* ]]; then
  echo "the benchmarks run on one device without TPUStrategy: train on the TPU with" \
       "train.py --strategy tpu --tpu local"
  exit 0
fi

echo "== bench/train_step.py: paper size (d=64, batch 64), float32, mixed_float16, XLA"
"$PYTHON" bench/train_step.py --sizes 64x64 --modes default,fp16,jit --iters 5
echo "== bench/generate.py: exported G at d=64, batch 64"
"$PYTHON" bench/generate.py --model_dim 64 --batch_size 64 --batches 10
