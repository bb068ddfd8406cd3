package main

import (
	"os"
	"regexp"
	"testing"
)

var (
	goBuildLine = regexp.MustCompile(`(?m)^(?:RUN )?(CGO_ENABLED=\S+ go build .*)$`)
	outputFlag  = regexp.MustCompile(`-o \S+`)
)

// buildCommand returns the one `go build` command in the file at path, with
// its output path (which differs: /gatehouse in the image, a temporary file
// in CI) replaced by OUTPUT.
func buildCommand(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := goBuildLine.FindAllStringSubmatch(string(b), -1)
	if len(m) != 1 {
		t.Fatalf("%s has %d go build commands, want exactly one", path, len(m))
	}
	return outputFlag.ReplaceAllString(m[0][1], "-o OUTPUT")
}

// No container engine runs in CI, so CI cannot build the image; .ci/run runs
// the Dockerfile's build command instead. This keeps the two the same, and
// the Dockerfile's Go image on the Go version go.mod asks for.
func TestDockerfileBuildsLikeCI(t *testing.T) {
	t.Parallel()
	docker, ci := buildCommand(t, "../../Dockerfile"), buildCommand(t, "../../.ci/run")
	if docker != ci {
		t.Errorf("the Dockerfile builds with\n  %s\nbut .ci/run with\n  %s", docker, ci)
	}

	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	image := regexp.MustCompile(`(?m)^FROM golang:(\d+\.\d+)\b`).FindSubmatch(dockerfile)
	want := regexp.MustCompile(`(?m)^go (\d+\.\d+)\b`).FindSubmatch(gomod)
	if image == nil || want == nil || string(image[1]) != string(want[1]) {
		t.Errorf("the Dockerfile's build stage is not FROM golang:<the go version of go.mod> (found %q, go.mod says %q)", image, want)
	}
}
