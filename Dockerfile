# syntax=docker/dockerfile:1
# sipspan: a transparent SIP proxy that traces every call.
#   docker build -t sipspan .
#   docker run --network host -v $PWD/sipspan.yaml:/etc/sipspan/sipspan.yaml sipspan run --config /etc/sipspan/sipspan.yaml

# ---- build: compile TypeScript to dist/ ----
FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# The pinned Node dev dependency is for machines whose system Node is older; the image has Node 24.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
# The native pieces (Node-API): the kernel receive clock's helper (native/kernel-stamp.c) and the
# batched UDP socket (native/udp-io.c). A C compiler in this stage only.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY native ./native
RUN sh native/build.sh && test -f build/kernel-stamp.node && test -f build/udp-io.node

# ---- runtime: production dependencies and compiled JavaScript only ----
FROM node:24-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force \
 && groupadd --system --gid 10001 sipspan && useradd --system --uid 10001 --gid sipspan --no-create-home sipspan
COPY --from=build /src/dist ./dist
COPY --from=build /src/build ./build
COPY bin ./bin
COPY deploy/compose/sipspan.yaml /etc/sipspan/sipspan.yaml
USER 10001:10001
# SIP (gateway and signaling sides), route metrics, admin.
EXPOSE 5060/udp 5060/tcp 5062/udp 5062/tcp 13012 13022 13000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:13000/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# bin/sipspan execs node, so node is PID 1 and receives SIGTERM: it drains and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/bin/sipspan"]
CMD ["run", "--config", "/etc/sipspan/sipspan.yaml"]
