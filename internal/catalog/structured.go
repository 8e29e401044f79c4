package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// loadStructured reads a YAML or JSON list of instance types in protobuf
// JSON form; an object with an "instanceTypes" list is read too. An
// offering without "available" is available.
func loadStructured(name string, data []byte, opts Options) ([]*typesv1.InstanceType, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid YAML or JSON: %s", name, strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
	}
	j = bytes.TrimSpace(j)
	if bytes.Equal(j, []byte("null")) {
		return nil, fmt.Errorf("%s: the catalog has no instance types", name)
	}
	var items []json.RawMessage
	if len(j) > 0 && j[0] == '{' {
		var wrapper struct {
			InstanceTypes []json.RawMessage `json:"instanceTypes"`
		}
		if err := json.Unmarshal(j, &wrapper); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		items = wrapper.InstanceTypes
	} else if err := json.Unmarshal(j, &items); err != nil {
		return nil, fmt.Errorf("%s: the catalog must be a list of instance types (or CSV with a header line)", name)
	}
	var out []*typesv1.InstanceType
	seen := map[string]int{}
	for i, raw := range items {
		where := fmt.Sprintf("%s: item %d", name, i+1)
		it, err := structuredItem(raw, opts)
		if err != nil {
			if it != nil && it.Name != "" {
				where += " (" + it.Name + ")"
			}
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if prev, ok := seen[it.Name]; ok {
			return nil, fmt.Errorf("%s (%s): instance type %q is listed twice (also item %d)", where, it.Name, it.Name, prev)
		}
		seen[it.Name] = i + 1
		out = append(out, it)
	}
	return out, nil
}

func structuredItem(raw json.RawMessage, opts Options) (*typesv1.InstanceType, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("not an instance type object")
	}
	normalizeStructured(m)
	fixed, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	it := &typesv1.InstanceType{}
	if err := protojson.Unmarshal(fixed, it); err != nil {
		return nil, fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "\u00a0", " "))
	}
	if it.Name == "" {
		return it, fmt.Errorf("name: required")
	}
	if len(it.Capacity) == 0 {
		return it, fmt.Errorf("capacity: required")
	}
	if err := checkQuantities(it); err != nil {
		return it, err
	}
	if len(it.Allocatable) == 0 {
		if it.Allocatable, err = allocatable(it.Capacity, opts.Overhead); err != nil {
			return it, err
		}
	}
	if err := checkOfferings(it.Offerings); err != nil {
		return it, err
	}
	addImpliedLabels(it)
	return it, nil
}

// normalizeStructured rewrites a decoded instance type in place into the
// form protojson reads.
func normalizeStructured(m map[string]any) {
	// YAML writes quantities and label values as numbers or booleans
	// unless quoted; the proto maps hold strings.
	for _, field := range []string{"capacity", "allocatable", "labels"} {
		if fm, ok := m[field].(map[string]any); ok {
			for k, v := range fm {
				switch t := v.(type) {
				case json.Number:
					fm[k] = t.String()
				case bool:
					fm[k] = strconv.FormatBool(t)
				}
			}
		}
	}
	if offs, ok := m["offerings"].([]any); ok {
		for _, o := range offs {
			if om, ok := o.(map[string]any); ok {
				if _, has := om["available"]; !has {
					om["available"] = true
				}
			}
		}
	}
}

// checkQuantities checks that every capacity and allocatable quantity
// parses and is not negative.
func checkQuantities(it *typesv1.InstanceType) error {
	for _, field := range []struct {
		name string
		m    map[string]string
	}{{"capacity", it.Capacity}, {"allocatable", it.Allocatable}} {
		for k, v := range field.m {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return fmt.Errorf("%s.%s: invalid quantity %q: %w", field.name, k, v, err)
			}
			if q.Sign() < 0 {
				return fmt.Errorf("%s.%s: invalid quantity %q: must not be negative", field.name, k, v)
			}
		}
	}
	return nil
}

// checkOfferings requires at least one offering, each with a zone, a known
// capacity type and a finite, non-negative price.
func checkOfferings(offerings []*typesv1.Offering) error {
	if len(offerings) == 0 {
		return fmt.Errorf("offerings: at least one offering is required")
	}
	for i, o := range offerings {
		if o.Zone == "" {
			return fmt.Errorf("offerings[%d].zone: required", i)
		}
		switch o.CapacityType {
		case "on-demand", "spot", "reserved":
		default:
			return fmt.Errorf("offerings[%d].capacityType: %q is not spot, on-demand or reserved", i, o.CapacityType)
		}
		if math.IsNaN(o.PricePerHour) || math.IsInf(o.PricePerHour, 0) || o.PricePerHour < 0 {
			return fmt.Errorf("offerings[%d].pricePerHour: must be a non-negative number", i)
		}
	}
	return nil
}

// addImpliedLabels fills in the labels the name and capacity imply,
// keeping any given.
func addImpliedLabels(it *typesv1.InstanceType) {
	if it.Labels == nil {
		it.Labels = map[string]string{}
	}
	implied := nameLabels(it.Name)
	implied[LabelOS] = "linux"
	if q, err := resource.ParseQuantity(it.Capacity["cpu"]); err == nil && it.Capacity["cpu"] != "" {
		implied[LabelCPU] = strconv.FormatInt(q.Value(), 10)
	}
	if q, err := resource.ParseQuantity(it.Capacity["memory"]); err == nil && it.Capacity["memory"] != "" {
		implied[LabelMemory] = strconv.FormatInt(q.Value()/mebi, 10)
	}
	for k, v := range implied {
		if _, ok := it.Labels[k]; !ok {
			it.Labels[k] = v
		}
	}
}
