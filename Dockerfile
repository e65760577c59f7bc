# syntax=docker/dockerfile:1
# image-csv-processor. Node by default; Bun with --build-arg RUNTIME=bun. Both run the same dist/.
#   docker build -t icp .                      # Node 24 LTS
#   docker build -t icp:bun --build-arg RUNTIME=bun .
ARG RUNTIME=node

# ---- build: full install, transpile src/ and workers/ to dist/ ------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# ---- production dependencies only (installed by Node's npm for both runtimes) ---------------
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtimes: each says how to start and how to check health (no curl in slim images) ------
FROM node:24-bookworm-slim AS runtime-node
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main.js"]

FROM oven/bun:1-slim AS runtime-bun
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["bun", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["bun", "dist/src/main.js"]

# ---- final image -----------------------------------------------------------------------------
FROM runtime-${RUNTIME}
WORKDIR /app
ENV NODE_ENV=production \
    PORT=8000 \
    DATA_DIR=/data \
    IMAGE_STORAGE_PATH=/data/images
# uid 1000 is the unprivileged user of both base images ("node" and "bun").
# Private (0700): the store holds webhook secrets and source URLs; outputs are capabilities.
RUN mkdir -p /data/images && chown -R 1000:1000 /data && chmod -R 700 /data
COPY --from=deps --chown=1000:1000 /app/node_modules ./node_modules
COPY --from=build --chown=1000:1000 /app/dist ./dist
COPY --chown=1000:1000 package.json ./
USER 1000:1000
VOLUME ["/data", "/data/images"]
EXPOSE 8000
