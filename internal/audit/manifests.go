package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
)

// MaxManifestBytes bounds how much one manifest file may hold.
const MaxManifestBytes = 64 << 20

// manifestExts are the file name extensions read from a directory.
var manifestExts = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// LoadManifests reads the objects of manifest files and directories
// (recursively: every .yaml, .yml and .json file). Each file may hold many
// YAML documents and List objects. Kinds the checks do not look at are
// ignored; namespaced objects without a namespace are put in "default", as
// kubectl apply would. Errors name the file and the 1-based index of the
// document (counting non-empty documents).
func LoadManifests(paths []string) (*Inputs, error) {
	if len(paths) == 0 {
		return nil, errors.New("no manifest files given")
	}
	in := &Inputs{}
	for _, p := range paths {
		files, err := manifestFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if err := loadFile(in, f); err != nil {
				return nil, err
			}
		}
	}
	return in, nil
}

// manifestFiles expands a path: a file is itself, a directory is its
// manifest files in lexical order.
func manifestFiles(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var out []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && manifestExts[strings.ToLower(filepath.Ext(path))] {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no .yaml, .yml or .json files in the directory", p)
	}
	sort.Strings(out)
	return out, nil
}

func loadFile(in *Inputs, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("reading manifests: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestBytes+1))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxManifestBytes {
		return fmt.Errorf("%s: larger than %d MiB", name, MaxManifestBytes>>20)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	index := 0
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, index+1, err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return fmt.Errorf("%s: document %d: invalid YAML: %s", name, index+1, strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
		}
		j = bytes.TrimSpace(j)
		if len(j) == 0 || bytes.Equal(j, []byte("null")) {
			continue
		}
		index++
		if j[0] != '{' {
			return fmt.Errorf("%s: document %d: not a Kubernetes object (a mapping with apiVersion and kind)", name, index)
		}
		if err := in.addObject(j); err != nil {
			return fmt.Errorf("%s: document %d%s", name, index, err.Error())
		}
	}
}

// typeMeta is the part of an object that says what it is.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// objectError renders as ` (Kind name): message`, to follow the file and
// document index.
type objectError struct {
	kind, name string
	err        error
}

func (e *objectError) Error() string {
	if e.kind == "" {
		return ": " + e.err.Error()
	}
	return fmt.Sprintf(" (%s %s): %s", e.kind, e.name, e.err)
}

func (e *objectError) Unwrap() error { return e.err }

// addObject decodes one object (or the items of a List) into in.
func (in *Inputs) addObject(j []byte) error {
	var tm typeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return &objectError{err: fmt.Errorf("apiVersion, kind or metadata: %w", err)}
	}
	if tm.Kind == "" || tm.APIVersion == "" {
		return &objectError{err: errors.New("missing apiVersion or kind")}
	}
	if strings.HasSuffix(tm.Kind, "List") && tm.Items != nil {
		for i, item := range tm.Items {
			if err := in.addObject(item); err != nil {
				return &objectError{err: fmt.Errorf("item %d%s", i+1, err.Error())}
			}
		}
		return nil
	}
	target := in.target(tm.APIVersion, tm.Kind)
	if target == nil {
		return nil
	}
	if err := target(j); err != nil {
		return &objectError{kind: tm.Kind, name: tm.Metadata.Name, err: err}
	}
	return nil
}

// target returns the function that decodes an object of this kind into
// in, or nil for kinds the checks do not look at.
func (in *Inputs) target(apiVersion, kind string) func([]byte) error {
	switch apiVersion + "/" + kind {
	case karpv1.APIVersion + "/" + karpv1.KindNodePool:
		return decodeInto(&in.NodePools, nil)
	case awsv1.GroupVersion.String() + "/" + awsv1.KindEC2NodeClass:
		return decodeInto(&in.EC2NodeClasses, nil)
	case "apps/v1/Deployment":
		return decodeInto(&in.Deployments, func(d *appsv1.Deployment) { defaultNS(&d.Namespace) })
	case "apps/v1/StatefulSet":
		return decodeInto(&in.StatefulSets, func(s *appsv1.StatefulSet) { defaultNS(&s.Namespace) })
	case "apps/v1/DaemonSet":
		return decodeInto(&in.DaemonSets, func(d *appsv1.DaemonSet) { defaultNS(&d.Namespace) })
	case "v1/Pod":
		return decodeInto(&in.Pods, func(p *corev1.Pod) { defaultNS(&p.Namespace) })
	case "policy/v1/PodDisruptionBudget":
		return decodeInto(&in.PDBs, func(p *policyv1.PodDisruptionBudget) { defaultNS(&p.Namespace) })
	case "v1/Namespace":
		return decodeInto(&in.Namespaces, nil)
	case "v1/LimitRange":
		return decodeInto(&in.LimitRanges, func(l *corev1.LimitRange) { defaultNS(&l.Namespace) })
	case "v1/ConfigMap":
		return decodeInto(&in.ConfigMaps, func(c *corev1.ConfigMap) { defaultNS(&c.Namespace) })
	case "v1/Node":
		return decodeInto(&in.Nodes, nil)
	}
	return nil
}

func defaultNS(ns *string) {
	if *ns == "" {
		*ns = "default"
	}
}

// decodeInto returns a function that decodes an object, fixes it up and
// appends it to list.
func decodeInto[T any](list *[]T, fix func(*T)) func([]byte) error {
	return func(j []byte) error {
		var v T
		if err := json.Unmarshal(j, &v); err != nil {
			return err
		}
		if fix != nil {
			fix(&v)
		}
		*list = append(*list, v)
		return nil
	}
}
