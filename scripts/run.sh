#!/usr/bin/env bash
# The README's first command: set up, get a model (train one if there is none), then run.
#   - dataset: $MEMEBOT_DATASET_DIR, else ../shared/data/memes beside this checkout, else
#     `memebot data fetch` (Kaggle, needs internet).
#   - then classify a few images, and start `memebot run` when that command exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh train
export PATH="$PWD/.venv/bin:$PATH"

model_dir=${MEMEBOT_MODEL_DIR:-models}
data=${MEMEBOT_DATASET_DIR:-}
if [ -z "$data" ]; then
  if [ -d ../shared/data/memes ]; then data=../shared/data/memes
  else data=data/memes; [ -d "$data" ] || memebot data fetch --out "$data"
  fi
fi
export MEMEBOT_DATASET_DIR="$data"

# Tesseract reads memes' text (the words move doom vs Animal Crossing); without it the model
# and the bot work on the image alone.
if ! command -v tesseract >/dev/null 2>&1; then
  echo "== installing tesseract-ocr (reads memes' text)"
  { apt-get update -qq && apt-get install -y -qq tesseract-ocr >/dev/null; } \
    || echo "   could not install tesseract-ocr: memes will be classified without their text"
fi

if [ ! -f "$model_dir/ACTIVE" ]; then
  echo "== no model yet: training on $data (about 5 minutes on 2 idle CPU cores, 2.5 of them reading text)"
  memebot train "$data" --model-dir "$model_dir"
fi

echo "== a few predictions"
samples=$(find "$data" -type f \( -name '*.jpg' -o -name '*.png' \) | sort | awk 'NR % 400 == 1' | head -6)
# shellcheck disable=SC2086
memebot predict --model "$model_dir" $samples

if memebot run --help >/dev/null 2>&1; then
  echo "== starting memebot (Ctrl-C to stop)"
  exec memebot run
fi
