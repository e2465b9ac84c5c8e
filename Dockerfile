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

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/mfad /usr/local/bin/mfad
# The data dir holds mfad.db and, without MFAD_SECRET_KEY, the generated sealing key.
VOLUME ["/data"]
ENV MFAD_DATA_DIR=/data \
    MFAD_HTTP_ADDR=:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/mfad"]
CMD ["serve"]
