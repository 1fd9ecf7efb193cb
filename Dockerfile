# The cuttle agent in a container, for dynamic worker pools (docs/operations.md, "In a container,
# for dynamic worker pools", has the docker run line). From a checkout:
#
#   npm ci && npm run build && docker build -t cuttle-agent:0.1.0 .
#
# NODE_BASE: any Node.js 20 image with /bin/sh. npm is used only when the build installs the
# dependencies itself, which needs the npm registry from the build's containers.
ARG NODE_BASE=node:20-bookworm-slim
FROM ${NODE_BASE}

LABEL org.opencontainers.image.title="cuttle agent" \
      org.opencontainers.image.description="Worker agent: runs deployment steps in Docker containers" \
      org.opencontainers.image.licenses="Apache-2.0"

WORKDIR /opt/cuttle

# Production dependencies. When the build cannot reach the npm registry, install them beforehand
# into .prebuilt/ (see docs/operations.md): its node_modules/ is then copied and npm is not run.
# The [t] makes .prebuilt optional: a wildcard may match nothing when another source exists.
COPY package.json package-lock.json .prebuil[t] ./
# A registry mirror for npm, e.g. --build-arg NPM_CONFIG_REGISTRY=https://npm.example.com/
ARG NPM_CONFIG_REGISTRY
# --omit=optional: typescript (dev) is also valibot's optional peer, which npm would install.
RUN if [ -d node_modules ]; then \
      echo "using the node_modules from .prebuilt/"; \
    else \
      npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force; \
    fi

COPY dist/ ./dist/

# The agent's user (uid and gid 10001) and its default home. The code stays root's, read-only to
# the agent. The engine's socket is reached through its group, given at run time with
# --group-add "$(stat -c %g /var/run/docker.sock)". No VOLUME for the home: an anonymous volume
# lives at another path on the host, and the home must be at the same path inside and outside.
RUN echo 'cuttle:x:10001:10001:cuttle agent:/var/lib/cuttle:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'cuttle:x:10001:' >> /etc/group \
 && mkdir -p /var/lib/cuttle \
 && chown 10001:10001 /var/lib/cuttle \
 && chmod 0700 /var/lib/cuttle

# Every setting is a CUTTLE_* variable (README, "Configuration"), or a flag after the image name.
ENV NODE_ENV=production \
    CUTTLE_HOME=/var/lib/cuttle

USER 10001:10001
# SIGTERM drains: running steps get graceSeconds; give docker stop a longer --stop-timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/opt/cuttle/dist/agent/cli.js"]
CMD ["agent"]
