# ringsync: one image for every role (receiver, worker, sandbox, one-off commands).
#   docker build -t ringsync .
#   docker run --env-file .env -p 8000:8000 ringsync serve --host 0.0.0.0
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every dependency ships wheels for CPython 3.11 on Linux (uvloop, httptools, hiredis, asyncpg,
# orjson), so no compiler is needed. .dockerignore lets in only what the package is built from.
COPY . /src
RUN pip install /src && rm -rf /src

RUN useradd --create-home --uid 10001 --user-group ringsync
USER ringsync
# The default SQLite store (DATABASE_URL unset) lands in the user's home, which it can write.
WORKDIR /home/ringsync

# 8000: the receiver; 8090: the sandbox; 9108: the worker's metrics, reachable from outside the
# container only with RINGSYNC_METRICS_HOST=0.0.0.0 (its healthcheck runs inside).
EXPOSE 8000 8090 9108
ENTRYPOINT ["ringsync"]
CMD ["serve", "--host", "0.0.0.0"]
