# syntax=docker/dockerfile:1
# mfad: multi-stage build. SQLite (mattn/go-sqlite3) needs cgo, so the build stage has
# gcc and the runtime stage has glibc (distroless/base), nothing else: no shell, no
# package manager, a non-root user.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/mfad ./cmd/mfad
# The data dir, made here because the runtime image has no shell to make it with.
RUN mkdir -p /out/data

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/mfad /usr/local/bin/mfad
# /data must exist, owned by nonroot (uid and gid 65532), before VOLUME declares it:
# Docker fills a new volume with the image's directory, owner included, and makes a
# directory the image lacks root-owned, where mfad could not create mfad.db.
COPY --from=build --chown=65532:65532 /out/data /data
# The data dir holds mfad.db, the embedded JetStream store and, without
# MFAD_SECRET_KEY, the generated sealing key.
VOLUME ["/data"]
ENV MFAD_DATA_DIR=/data \
    MFAD_HTTP_ADDR=:8080
EXPOSE 8080
# Numeric, so that Kubernetes' runAsNonRoot can check it: distroless's nonroot user.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mfad"]
CMD ["serve"]
