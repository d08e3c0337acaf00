# keizoku-probe, the probe agent (docs/probe.md). Built from the repository root:
#   docker build -f packaging/docker/keizoku-probe.Dockerfile -t keizoku-probe .
# Run (docs/operations.md#containers), with listen: 0.0.0.0:9464 in probe.yaml, or with
# --network host and the address keizokud reaches it on:
#   docker run -d --name keizoku-probe --cap-drop ALL --cap-add NET_RAW \
#     -v /etc/keizoku:/etc/keizoku:ro -p 9464:9464 keizoku-probe
# Base images pinned by exact tag only (no registry access where this was written to look up
# the digest); pin @sha256:... where you build.

FROM node:20.20.2-bookworm AS deps
WORKDIR /opt/keizoku
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20.20.2-bookworm-slim
# fping (the default prober) and iputils ping (prober: ping) send ICMP from raw sockets: their
# file capability gives the unprivileged user CAP_NET_RAW, which the container must keep
# (Docker's defaults include it; with --cap-drop ALL, --cap-add NET_RAW). Do not use
# no-new-privileges: it voids file capabilities.
RUN apt-get update -q \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends fping iputils-ping libcap2-bin \
  && setcap cap_net_raw+ep /usr/bin/fping \
  && setcap cap_net_raw+ep /usr/bin/ping \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/keizoku
ENV NODE_ENV=production
COPY --from=deps /opt/keizoku/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY agents ./agents
COPY packaging/docker/healthcheck.mjs ./packaging/docker/healthcheck.mjs
USER node
EXPOSE 9464
# The agent has no readiness of its own: /v1/targets answers once it listens and probes.
# With another listen address, set KEIZOKU_HEALTHCHECK_URL.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "packaging/docker/healthcheck.mjs", "http://127.0.0.1:9464/v1/targets"]
# SIGTERM stops every pinger and exits within a second or two.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/keizoku-probe.mjs"]
CMD ["--config", "/etc/keizoku/probe.yaml"]
