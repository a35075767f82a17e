# syntax=docker/dockerfile:1
# camactor: the camera actor with two simulated cameras.
#
#   docker compose up          # RabbitMQ and the actor (compose.yaml)
#   docker build -t camactor . && docker run -e CAMACTOR_BROKER_HOST=HOST camactor
#
# Images, the exposure journal and the spool are written to the /data volume.
# tests/test_docker.py checks this file and runs its ENTRYPOINT and CMD.

# Build stage: the wheel, from the sources only (see .dockerignore).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY actor/ actor/
COPY camera_core/ camera_core/
COPY etc/ etc/
COPY schema/ schema/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Runtime stage: the wheel and its runtime dependencies, run by a non-root user.
FROM python:3.11-slim
RUN groupadd --gid 1000 camactor \
    && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin camactor \
    && mkdir /data \
    && chown camactor:camactor /data
COPY --from=build /wheels/ /tmp/wheels/
RUN pip install --no-cache-dir --root-user-action=ignore /tmp/wheels/camactor-*.whl \
    && rm -rf /tmp/wheels
COPY etc/docker.yml /etc/camactor/camactor.yml
ENV CAMACTOR_DATA_DIR=/data \
    XDG_STATE_HOME=/data/state \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
USER 1000:1000
WORKDIR /home/camactor
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["camactor", "-c", "/etc/camactor/camactor.yml", "ping", "--timeout", "5"]
ENTRYPOINT ["camactor", "-c", "/etc/camactor/camactor.yml"]
CMD ["actor", "--foreground"]
