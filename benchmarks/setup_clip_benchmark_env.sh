#!/usr/bin/env bash
# A side environment for CLIP_benchmark 1.6.2, which fails under numpy 2.4:
# it sees every package of .venv except numpy, which it pins below 2.4.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$(realpath .venv/lib/python3.*/site-packages)
"${PYTHON:-python3.11}" -m venv .venv-cb
site=$(echo .venv-cb/lib/python3.*/site-packages)
printf "%s\n%s\n" "$base" "$PWD" > "$site/clipstudy_base.pth"
.venv-cb/bin/pip install --quiet "numpy==2.3.5" scikit-learn==1.8.0 joblib==1.6.0 \
    threadpoolctl==3.8.0
.venv-cb/bin/pip install --quiet --no-deps clip-benchmark==1.6.2
.venv-cb/bin/python -c "import clip_benchmark.metrics.zeroshot_classification"
