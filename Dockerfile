# syntax=docker/dockerfile:1
#
# regmirror container image: one static binary on distroless/static
# (CA certificates, /etc/passwd with "nonroot", tzdata; no shell).
#
#   docker build -t regmirror .
#   docker run -d --name mirror -p 9090:9090 -v $PWD/config.yaml:/config.yaml:ro regmirror
#   docker run --rm -v $PWD/config.yaml:/config.yaml:ro regmirror sync --config /config.yaml
#
# The default command is the daemon, as with dregsy's image: tasks run on
# their interval, /healthz, /readyz and /metrics are served on :9090.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X github.com/regmirror/regmirror/internal/cli.version=${VERSION}" \
    -o /out/regmirror ./cmd/regmirror

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/regmirror /usr/local/bin/regmirror
# 65532 is distroless's "nonroot"; numeric so that Kubernetes'
# runAsNonRoot can check it.
USER 65532:65532
ENV HOME=/home/nonroot
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/regmirror"]
CMD ["serve", "--config", "/config.yaml", "--listen", ":9090"]
