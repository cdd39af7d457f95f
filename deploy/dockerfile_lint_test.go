package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

// The Dockerfile passes BuildKit's own linter: the checks `docker build
// --check` runs (dockerfile2llb.DockerfileLint, every rule of
// frontend/dockerfile/linter), here without a Docker engine or the
// network. Base images are not fetched: an offline resolver answers every
// image with an empty linux config, which the rules need no more of.
func TestDockerfileLint(t *testing.T) {
	t.Parallel()
	dt, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	require.NoError(t, err)
	warnings, buildErr := lintDockerfile(t, dt)
	require.Empty(t, buildErr)
	require.Empty(t, warnings)
}

// The linter is live: a Dockerfile with known mistakes gets the rule of
// each.
func TestDockerfileLintFindsMistakes(t *testing.T) {
	t.Parallel()
	bad := "FROM golang:1.26 as build\nARG API_TOKEN=x\nWORKDIR app\nCMD echo hi\nFROM alpine\nENV A 1\n"
	warnings, buildErr := lintDockerfile(t, []byte(bad))
	require.Empty(t, buildErr)
	joined := strings.Join(warnings, "\n")
	for _, rule := range []string{"FromAsCasing", "SecretsUsedInArgOrEnv", "WorkdirRelativePath", "JSONArgsRecommended", "LegacyKeyValueFormat"} {
		require.Contains(t, joined, rule+":")
	}
}

// offlineResolver answers every base image with an empty linux config.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return ref, digest.FromString(ref), []byte(`{"architecture":"amd64","os":"linux","config":{}}`), nil
}

// lintDockerfile returns each warning as "Rule: detail (line N)" and the
// build error, if the file does not even convert.
func lintDockerfile(t *testing.T, dt []byte) ([]string, string) {
	t.Helper()
	sm := llb.NewSourceMap(nil, "Dockerfile", "Dockerfile", dt)
	sm.Definition = &llb.Definition{} // no build: the source is all the report needs
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
		Config: dockerui.Config{}, SourceMap: sm, MetaResolver: offlineResolver{},
	})
	require.NoError(t, err)
	var out []string
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 && w.Location.Ranges[0].Start != nil {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		out = append(out, fmt.Sprintf("%s: %s (line %d)", w.RuleName, w.Detail, line))
	}
	buildErr := ""
	if res.Error != nil {
		buildErr = res.Error.Message
	}
	return out, buildErr
}
