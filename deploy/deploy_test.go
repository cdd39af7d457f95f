// Package deploy_test checks the deployment files under deploy/: every
// Kubernetes object decodes strictly into its API type (unknown or
// misspelt fields fail), and every metric the Grafana dashboard queries is
// one the metrics package exports. (No cluster or kubeconform is reachable
// from CI; kubectl kustomize in .ci/run checks the kustomization itself.)
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/stroem/stroem/metrics"
	"github.com/stroem/stroem/persistence"
)

// storeless is a sampler for describing metrics; it is never called.
type storeless struct{}

func (storeless) MetricsSample(context.Context) (persistence.MetricsSample, error) {
	return persistence.MetricsSample{}, nil
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	var kust struct {
		Resources []string `json:"resources"`
	}
	b, err := os.ReadFile("kubernetes/kustomization.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &kust))
	require.NotEmpty(t, kust.Resources)

	kinds := map[string]int{}
	for _, res := range kust.Resources {
		b, err := os.ReadFile(filepath.Join("kubernetes", res))
		require.NoError(t, err)
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			require.NoError(t, yaml.Unmarshal(doc, &meta), "%s doc %d", res, i)
			var obj any
			switch meta.APIVersion + " " + meta.Kind {
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "policy/v1 PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			default:
				t.Fatalf("%s doc %d: unexpected %s %s", res, i, meta.APIVersion, meta.Kind)
			}
			require.NoError(t, yaml.UnmarshalStrict(doc, obj), "%s doc %d (%s)", res, i, meta.Kind)
			kinds[meta.Kind]++
			if d, ok := obj.(*appsv1.Deployment); ok {
				require.Equal(t, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels, "%s: the selector matches the pods", d.Name)
				for _, c := range d.Spec.Template.Spec.Containers {
					require.NotEmpty(t, c.Args, "%s: stroem needs a command", d.Name)
					require.Contains(t, []string{"server", "worker"}, c.Args[0])
				}
			}
		}
	}
	require.Equal(t, map[string]int{"ConfigMap": 1, "Deployment": 2, "Service": 1, "PodDisruptionBudget": 1}, kinds)
}

func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("grafana/stroem-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &dash))
	require.NotEmpty(t, dash.Panels)

	// Every metric registered, series or not, by its description.
	known := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, reg := range []*prometheus.Registry{
		metrics.NewServer("r", storeless{}).Registry(), metrics.NewWorker("w", 1).Registry(),
	} {
		ch := make(chan *prometheus.Desc)
		go func() { reg.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fq.FindStringSubmatch(d.String()); m != nil {
				known[m[1]] = true
			}
		}
	}
	require.True(t, known["stroem_steps_ready"], "store gauges are described")
	name := regexp.MustCompile(`\bstroem_[a-z_]+`)
	queried := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
			for _, m := range name.FindAllString(tg.Expr, -1) {
				base := m
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if !known[base] {
						base = strings.TrimSuffix(base, suf)
					}
				}
				require.True(t, known[base], "panel %q queries %s, which is not exported", p.Title, m)
				queried++
			}
		}
	}
	require.Positive(t, queried)
}
