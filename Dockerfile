# DistillWatch worker / sink / CLI image. Configuration only via DW_* environment variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml setup.py README.md* ./
COPY pipeline ./pipeline
COPY schemas ./schemas
# gcc only while installing: setup.py compiles the detection core (Cython); then it is removed.
# pipeline/store.py reads ../schemas/clickhouse relative to the installed package: link it there.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
    && ln -s /app/schemas "$(python -c 'import pathlib, pipeline; print(pathlib.Path(pipeline.__file__).parent.parent)')/schemas" \
    && useradd --system --uid 10001 --home-dir /data distillwatch \
    && mkdir -p /data/worker && chown -R distillwatch /data

USER 10001
WORKDIR /data
ENV DW_WORKER_DATA_DIR=/data/worker
EXPOSE 6066 6067
ENTRYPOINT ["distillwatch"]
CMD ["--help"]
