# Gatehouse in a container: one static binary on an empty base image.
#
#   docker build -t gatehouse --build-arg VERSION=1.2.3 .
#   docker run -p 8000:8000 -v gatehouse-data:/data gatehouse
#
# docs/DEPLOYMENT.md explains the settings, the volume and running several
# containers on one PostgreSQL.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same command as the build step of .ci/run, which runs it on every CI
# pass (no container engine runs there); cmd/gatehouse/dockerfile_test.go
# keeps the two equal. No cgo: both database drivers are pure Go, so the
# binary needs no C library and runs on an empty image.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /gatehouse ./cmd/gatehouse
# The data folder, created here because the final image has no shell.
RUN mkdir /data

# scratch rather than a distribution's minimal image: the binary needs nothing
# but CA certificates (social login, OpenID Connect discovery and client
# metadata documents are fetched over HTTPS), copied from the build stage.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /gatehouse /gatehouse
# The SQLite database lives in /data, owned by the user the service runs as
# (no root: 65532 is the conventional "nonroot" id). Mount a volume there, or
# set DATABASE_URL to a PostgreSQL server (required for several containers).
# /data is also the working directory: SQLite puts temporary files in the
# first writable one of /var/tmp, /usr/tmp, /tmp and ".", and this image has
# only the last.
COPY --from=build --chown=65532:65532 /data /data
USER 65532:65532
WORKDIR /data
VOLUME /data
# VERSION is what `gatehouse version` and /health report.
ARG VERSION=1.0.0
ENV VERSION=${VERSION} \
    DATABASE_URL=sqlite:///data/gatehouse.db
EXPOSE 8000
ENTRYPOINT ["/gatehouse"]
CMD ["serve"]
