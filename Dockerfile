# botwire-server: the self-hosted botwire memory service.
#
#   docker build -t botwire-server .
#   docker run -p 8765:8765 -v botwire-data:/data \
#       -e BOTWIRE_TOKEN_SECRET="$(openssl rand -hex 32)" botwire-server
#
# The image binds 0.0.0.0, so it refuses to start without a token secret unless you pass
# --allow-anonymous (or --free-tier). Data lives in /data (SQLite) unless BOTWIRE_DATABASE_URL
# names a PostgreSQL database. See docs/server.md.

ARG PYTHON_VERSION=3.12

# --- build: wheels of the two workspace packages + the locked dependency list ----------------
FROM python:${PYTHON_VERSION}-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY packages/ packages/
RUN uv export --frozen --no-dev --no-emit-workspace --package botwire-server \
        --output-file /dist/requirements.txt \
 && uv build --wheel --package botwire-core --out-dir /dist \
 && uv build --wheel --package botwire-server --out-dir /dist

# --- runtime ---------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 botwire \
 && useradd --system --uid 10001 --gid botwire --home-dir /data --no-create-home botwire \
 && mkdir /data && chown botwire:botwire /data
COPY --from=build /dist /dist
# Dependencies pinned (with hashes) by uv.lock, then the two packages themselves.
RUN pip install --require-hashes -r /dist/requirements.txt \
 && pip install --no-deps /dist/botwire_core-*.whl /dist/botwire_server-*.whl \
 && rm -rf /dist

USER botwire
WORKDIR /data
VOLUME ["/data"]
ENV BOTWIRE_HOST=0.0.0.0 \
    BOTWIRE_PORT=8765 \
    BOTWIRE_DATABASE_URL=/data/botwire.db
EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BOTWIRE_PORT', '8765') + '/healthz', timeout=4)"]
# uvicorn handles SIGTERM: in-flight requests finish, then the store is closed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["botwire-server"]
