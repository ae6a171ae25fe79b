# The server image: `node dist/cluster/main.js` (one worker per CPU; needs REDIS_URL), or override
# the command with `node dist/server/main.js` for a single process.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
# --ignore-scripts: the `prepare` build needs the sources, copied below (bufferutil ships prebuilt binaries)
RUN npm ci --ignore-scripts
COPY protocol ./protocol
COPY server ./server
COPY client ./client
COPY cluster ./cluster
COPY scripts ./scripts
# tsc (the cluster project and what it references: server, protocol), then the browser bundle
# (dist/web, served at / by the server)
RUN npx tsc -b cluster && node scripts/build-web.mjs

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8888
# The primary forwards SIGTERM to its workers and exits after them (graceful shutdown).
STOPSIGNAL SIGTERM
CMD ["node", "dist/cluster/main.js"]
