# auditfwd in a container. Build: docker build -t auditfwd .   Run: see docs/operations.md, "Run it in a container".
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
# `npm ci` builds dist/ (the prepare script); then the dev dependencies go.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    STATE_DIRECTORY=/var/lib/auditfwd
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
RUN mkdir -p /var/lib/auditfwd /etc/auditfwd && chown node:node /var/lib/auditfwd && chmod 0700 /var/lib/auditfwd
USER node
VOLUME /var/lib/auditfwd
EXPOSE 9100
# /healthz is served by --metrics-listen, which the entrypoint always sets.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9100/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# One malloc arena, as bin/auditfwd's #! line sets it (docs/operations.md, memory).
ENV MALLOC_ARENA_MAX=1
ENTRYPOINT ["node", "--max-semi-space-size=1", "--no-concurrent-sparkplug", "--no-maglev", "--no-liftoff", "--expose-gc", "--use-openssl-ca", "/app/bin/auditfwd", "--metrics-listen", "0.0.0.0:9100"]
CMD ["--config", "/etc/auditfwd/config.yml"]
