# The conventional multi-stage build, for a machine with Docker and Docker
# Hub: the same xtask command as everywhere (`cargo xtask dist`), then the
# same image as deploy/image/Containerfile, FROM scratch.
#
#   docker build -t antibody .
#   docker run -p 8080:8080 -v antibody-data:/data -e ANTIBODY_DEMO=true antibody
#
# Not built where this project is developed (no base image can be pulled
# there); `cargo xtask image` builds the same image there with buildah.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# dist installs what is missing (the wasm and musl targets, wasm-bindgen,
# the npm packages for wasm-opt and Swagger UI, musl-tools), builds the
# release site, then the static binary with the site inside.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm musl-tools \
 && cargo xtask dist \
 && mkdir -p /out/data /out/tmp \
 && cp target/x86_64-unknown-linux-musl/dist/antibody /out/antibody

FROM scratch
COPY --from=build /out/antibody /antibody
COPY --from=build --chown=65534:65534 /out/data /data
COPY --from=build --chown=65534:65534 /out/tmp /tmp
ENV PORT=8080 \
    ANTIBODY_DATABASE_URL=sqlite:///data/antibody.db \
    ANTIBODY_LOG_FORMAT=json
VOLUME /data
EXPOSE 8080
USER 65534:65534
ENTRYPOINT ["/antibody"]
