# ccmon on Debian 12: ccmon-gateway (the default entrypoint), ccmon-agent, ccmon-replay and
# ccmon-pricing in one image.
#   docker build -t ccmon .
#   docker run -d -p 9469:9469 -v ccmon-data:/data ccmon                 # a gateway on :9469
#   docker run --rm -v ccmon-data:/data ccmon device add laptop --data-dir /data   # stopped gw
#   docker run --rm --entrypoint ccmon-replay -v ~/.claude:/claude:ro ccmon summary --config-dir /claude
# The build stage installs with scripts/install-deps.sh and builds with the commands of README.md
# "Deploy" (tests/deploy/compose_test.py checks that they stay the same).

FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCCMON_BUILD_TESTS=OFF \
 && cmake --build build -j"$(nproc)" --target ccmon-gateway ccmon-agent ccmon-replay ccmon-pricing \
 && cmake --install build --prefix /usr/local --strip

FROM debian:12 AS runtime
# Only the shared libraries the four binaries link (their dependencies come with them) and the CA
# certificates for forwarding over HTTPS.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates libboost-program-options1.74.0 libprometheus-cpp-core1.0 libprotobuf32 \
      librocksdb7.8 libsimdjson14 libsnappy1v5 libssl3 \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid/gid (10001), the Helm chart's runAsUser/fsGroup; /data is its RocksDB.
RUN groupadd --system --gid 10001 ccmon \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin ccmon \
 && mkdir -p /data && chown 10001:10001 /data && chmod 0750 /data
COPY --from=build /usr/local/bin/ccmon-* /usr/local/bin/
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# Defaults of `serve` (flags and CCMON_GATEWAY_* variables win over them as usual).
ENV CCMON_GATEWAY_LISTEN=0.0.0.0:9469 \
    CCMON_GATEWAY_DATA_DIR=/data
EXPOSE 9469
ENTRYPOINT ["ccmon-gateway"]
CMD ["serve"]
