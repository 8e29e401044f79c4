// Command helmrender renders a Helm chart into one multi-document YAML
// stream, as `helm template --include-crds` does, with Helm's own Go library:
// the chart's CRDs first, then the templates in Helm's install order. It is a
// module of its own (hack/helmrender/go.mod, outside go.work) so that Helm's
// dependencies stay out of Flotilla's modules; hack/render-manifests.sh runs it.
//
//	helmrender -chart deploy/helm/flotilla -namespace flotilla -values v.yaml [-namespace-object] > out.yaml
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// valueFiles collects repeated -values flags.
type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

type options struct {
	chartDir, release, namespace, kubeVersion, header string
	values, sets, only                                valueFiles
	namespaceObject, includeCRDs                      bool
}

func main() {
	var o options
	flag.StringVar(&o.chartDir, "chart", "deploy/helm/flotilla", "chart directory")
	flag.StringVar(&o.release, "release", "flotilla", "release name")
	flag.StringVar(&o.namespace, "namespace", "flotilla", "release namespace")
	flag.StringVar(&o.kubeVersion, "kube-version", "v1.33.0", "Kubernetes version the chart is rendered for (.Capabilities.KubeVersion)")
	flag.StringVar(&o.header, "header", "", "comment printed at the top of the output, one '# ' line per line")
	flag.Var(&o.values, "values", "values file, repeatable (later files win)")
	flag.Var(&o.sets, "set", "a value as helm's --set takes it (key.path=value), repeatable; wins over -values")
	flag.Var(&o.only, "only", "emit only the manifests of this template (as helm's --show-only: templates/x.yaml), repeatable")
	flag.BoolVar(&o.namespaceObject, "namespace-object", false, "also emit the Namespace object, after the CRDs")
	flag.BoolVar(&o.includeCRDs, "include-crds", true, "emit the chart's crds/ first")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "helmrender: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if err := render(os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "helmrender:", err)
		os.Exit(1)
	}
}

func render(w io.Writer, o options) error {
	ch, err := loader.Load(o.chartDir)
	if err != nil {
		return fmt.Errorf("load chart %s: %w", o.chartDir, err)
	}
	vals, err := userValues(o.values, o.sets)
	if err != nil {
		return err
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return fmt.Errorf("dependencies: %w", err)
	}
	kv, err := chartutil.ParseKubeVersion(o.kubeVersion)
	if err != nil {
		return fmt.Errorf("-kube-version: %w", err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	if ch.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, kv.String()) {
		return fmt.Errorf("chart needs Kubernetes %s, rendering for %s", ch.Metadata.KubeVersion, kv.String())
	}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name: o.release, Namespace: o.namespace, Revision: 1, IsInstall: true,
	}, caps)
	if err != nil {
		return fmt.Errorf("values: %w", err)
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	docs, err := documents(ch, files, o)
	if err != nil {
		return err
	}
	return write(w, o.header, docs)
}

// userValues reads and merges the values files, later ones winning, then
// the -set values.
func userValues(paths, sets []string) (map[string]any, error) {
	out := map[string]any{}
	for _, p := range paths {
		v, err := chartutil.ReadValuesFile(p)
		if err != nil {
			return nil, fmt.Errorf("values file %s: %w", p, err)
		}
		out = chartutil.CoalesceTables(v.AsMap(), out)
	}
	for _, s := range sets {
		if err := strvals.ParseInto(s, out); err != nil {
			return nil, fmt.Errorf("-set %s: %w", s, err)
		}
	}
	return out, nil
}

// documents orders the output: CRDs, the Namespace, then the templates'
// manifests in Helm's install order (sorted by file name within a kind).
func documents(ch *chart.Chart, files map[string]string, o options) ([]string, error) {
	var docs []string
	if o.includeCRDs {
		crds := ch.CRDObjects()
		sort.Slice(crds, func(i, j int) bool { return crds[i].Filename < crds[j].Filename })
		for _, c := range crds {
			docs = append(docs, splitDocs(string(c.File.Data))...)
		}
	}
	if o.namespaceObject {
		ns, err := yaml.Marshal(map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": o.namespace},
		})
		if err != nil {
			return nil, fmt.Errorf("namespace: %w", err)
		}
		docs = append(docs, string(ns))
	}
	// Notes and partials are not manifests.
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasPrefix(pathBase(name), "_") {
			delete(files, name)
		}
	}
	_, manifests, err := releaseutil.SortManifests(files, chartutil.VersionSet{}, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("sort manifests: %w", err)
	}
	for _, m := range manifests {
		if len(o.only) > 0 && !selected(m.Name, ch.Name(), o.only) {
			continue
		}
		if err := checkYAML(m.Name, m.Content); err != nil {
			return nil, err
		}
		docs = append(docs, fmt.Sprintf("# Source: %s\n%s", m.Name, strings.TrimSpace(m.Content)))
	}
	if len(docs) == 0 {
		return nil, errors.New("the chart rendered nothing")
	}
	return docs, nil
}

// selected tells whether the manifest of template name (chart/templates/x.yaml)
// is one of only (templates/x.yaml or chart/templates/x.yaml).
func selected(name, chartName string, only []string) bool {
	for _, o := range only {
		if name == o || name == chartName+"/"+o {
			return true
		}
	}
	return false
}

func pathBase(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		return name[i+1:]
	}
	return name
}

// checkYAML fails on a template that rendered invalid YAML, naming it.
func checkYAML(name, content string) error {
	var v map[string]any
	if err := yaml.Unmarshal([]byte(content), &v); err != nil {
		return fmt.Errorf("%s rendered invalid YAML: %w", name, err)
	}
	return nil
}

// splitDocs splits a YAML stream into its non-empty documents.
func splitDocs(s string) []string {
	var out []string
	for _, d := range strings.Split("\n"+s, "\n---") {
		if t := strings.TrimSpace(d); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func write(w io.Writer, header string, docs []string) error {
	var b bytes.Buffer
	if header != "" {
		for _, l := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
			b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
		}
	}
	for _, d := range docs {
		b.WriteString("---\n")
		b.WriteString(strings.TrimSpace(d))
		b.WriteString("\n")
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
