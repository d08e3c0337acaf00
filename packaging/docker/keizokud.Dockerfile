# keizokud, the controller (docs/keizokud.md). Built from the repository root:
#   docker build -f packaging/docker/keizokud.Dockerfile -t keizokud .
# Run (docs/operations.md#containers):
#   docker run -d --name keizokud --stop-timeout 35 \
#     -v /etc/keizoku:/etc/keizoku:ro -v keizoku-state:/var/lib/keizoku \
#     -p 7480:7480 -p 7481:7481 keizokud
# The base images are pinned by exact tag only: the digest could not be looked up where this
# file was written (no registry access). Pin node:20.20.2-bookworm-slim@sha256:... where you
# build (docker buildx imagetools inspect node:20.20.2-bookworm-slim).

# Dependencies, installed where compilers exist (ssh2's optional native cpu-features).
FROM node:20.20.2-bookworm AS deps
WORKDIR /opt/keizoku
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20.20.2-bookworm-slim
# fping: ICMP to each host's managementAddress (host health). The file capability lets the
# unprivileged user below open raw sockets; Docker's default capabilities include NET_RAW
# (with --cap-drop ALL, add --cap-add NET_RAW back). no-new-privileges would void it.
RUN apt-get update -q \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends fping libcap2-bin \
  && setcap cap_net_raw+ep /usr/bin/fping \
  && rm -rf /var/lib/apt/lists/* \
  && install -d -o node -g node -m 0750 /var/lib/keizoku /var/lib/keizoku/audit /var/lib/keizoku/drills
WORKDIR /opt/keizoku
ENV NODE_ENV=production
COPY --from=deps /opt/keizoku/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY policies ./policies
COPY packaging/docker/healthcheck.mjs ./packaging/docker/healthcheck.mjs
# audit.dir and drills.dir default to /var/lib/keizoku/audit and /var/lib/keizoku/drills.
VOLUME /var/lib/keizoku
USER node
EXPOSE 7480 7481
# /readyz: 200 once the inventory made its first pass and the workers run. With api.tls or
# another api.listen, set KEIZOKU_HEALTHCHECK_URL (e.g. https://127.0.0.1:7480/readyz).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "packaging/docker/healthcheck.mjs", "http://127.0.0.1:7480/readyz"]
# SIGTERM drains within 25 s: stop with a timeout above it (--stop-timeout 35; Docker's
# default is 10 s, after which it kills).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/keizokud.mjs"]
CMD ["--config", "/etc/keizoku/keizokud.yaml"]
