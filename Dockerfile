# memebot: one image per role.
#   serve   - the bots (`memebot run`): onnxruntime only, never torch
#   trainer - `memebot trainer`: adds the [train] extra (torch CPU, timm, ...)
# Debian trixie: its postgresql-client (17) can back up the compose's postgres:16 (pg_dump
# refuses a server newer than itself; bookworm's is 15).
FROM python:3.11-slim-trixie AS serve
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    MEMEBOT_DATA_DIR=/data/var MEMEBOT_MODEL_DIR=/data/models
WORKDIR /app
# Tesseract reads memes' text (inference/text.py); MEMEBOT_READ_TEXT=false turns it off.
# postgresql-client: pg_dump/pg_restore for `memebot db backup|restore` on PostgreSQL.
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 memebot && mkdir -p /data && chown memebot /data
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY config ./config
COPY inference ./inference
COPY storage ./storage
COPY model_training ./model_training
RUN pip install .
USER memebot
VOLUME ["/data"]
CMD ["memebot", "run"]

FROM serve AS trainer
USER root
# CPU wheels of torch (the default index would pull CUDA builds of several GB).
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu ".[train]"
USER memebot
CMD ["memebot", "trainer"]
