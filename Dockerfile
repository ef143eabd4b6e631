# The image the Helm chart runs (deploy/helm/originagent). A static binary:
# the BPF objects are embedded, so the image needs nothing else. Not built in
# CI: these machines have no container engine.
FROM golang:1.26 AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /originagent ./cmd/originagent

FROM gcr.io/distroless/static-debian12
COPY --from=build /originagent /originagent
ENTRYPOINT ["/originagent"]
CMD ["run"]
