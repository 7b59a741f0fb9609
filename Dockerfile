# syntax=docker/dockerfile:1
#
# Gateway image. Build:  docker build -t uws-gateway .
#                Run:    docker run --rm -p 8080:8080 uws-gateway
# With no MQTT_URL the gateway starts its embedded broker on 1883, bound to the container's loopback
# (GATEWAY_BROKER_HOST is deliberately not set here): devices outside cannot reach it. To open it,
# give it logins and bind it together, e.g.
#   docker run -p 8080:8080 -p 1883:1883 -e GATEWAY_BROKER_HOST=0.0.0.0 \
#     -e GATEWAY_BROKER_USERS=@/run/secrets/broker-users.json -v "$PWD/secrets:/run/secrets:ro" uws-gateway
# (bound to 0.0.0.0 without logins it refuses anonymous clients). Or set MQTT_URL to use an
# external broker (mosquitto/compose.yaml does).
#
# Base image choice, both stages on Node 20 + Debian 12 (bookworm, glibc 2.36):
# - uWebSockets.js (npm package uwebsockets@3.0.6) ships prebuilt glibc binaries only. Its Node 20
#   binary (uws_linux_<arch>_115.node) needs glibc >= 2.27, which bookworm has.
# - Not Alpine: musl is not glibc, and uWS has no musl build, so the addon does not load.
# - Not Node 22+ on bookworm: the package's Node 22/24/25 binaries need glibc >= 2.38, which
#   bookworm (2.36) lacks; they fail with "GLIBC_2.38 not found".

# ---- build: full image, it has python3, make and g++ for native modules built from source
# (msgpackr-extract when no prebuild fits, better-sqlite3).
FROM node:20-bookworm AS build
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci

COPY tsconfig.json tsconfig.browser.json ./
COPY src ./src
COPY scripts ./scripts
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

# uWS ships about 60 binaries (every OS, arch and Node ABI, ~250 MB); keep the one this Node
# loads, and fail the build here rather than at start if it does not load.
RUN keep="uws_linux_$(node -p process.arch)_$(node -p process.versions.modules).node" \
 && find node_modules/uWebSockets.js -name 'uws_*.node' ! -name "$keep" -delete \
 && node -e "require('uWebSockets.js')"

# ---- runtime: same Node major and glibc as the build stage, so native addons built there load here.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production

# Files stay owned by root (read-only to the process); only data/ is writable by the app user.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir data && chown node:node data
# The SQLite files (entities, outbox, event history): keep them across container restarts.
ENV GATEWAY_DATA_DIR=/app/data
VOLUME /app/data

# The unprivileged user the official Node images provide.
USER node

# 8080: HTTP and WebSocket (PORT). 1883: embedded MQTT broker (GATEWAY_BROKER_PORT), used when
# MQTT_URL is unset; reachable only with GATEWAY_BROKER_HOST=0.0.0.0 and GATEWAY_BROKER_USERS (above).
EXPOSE 8080 1883

# The slim image has no curl or wget; Node 20's built-in fetch does the probe.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# What `npm start` runs once built (tsc with rootDir '.', so src/main.ts -> dist/src/main.js).
# Run node directly, not through npm, so SIGTERM from `docker stop` reaches the gateway.
CMD ["node", "dist/src/main.js"]
