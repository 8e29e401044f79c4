// Package catalog reads instance type catalogs: the shapes a cloud can
// launch, with their capacity, allocatable resources, well-known labels and
// priced offerings.
//
// Two formats are read. CSV has one header line naming its columns and one
// row per instance type, offered on demand in every zone (and on spot at a
// fraction of the price when asked). YAML or JSON is a list of instance
// types in the protobuf JSON form of flotilla.types.v1.InstanceType
// (camelCase field names) with explicit offerings.
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// MaxInputBytes bounds how much a catalog may hold.
const MaxInputBytes = 64 << 20

// DefaultZones are the zones offerings are made in when Options.Zones is
// empty.
var DefaultZones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

// DefaultMaxPods is the pod capacity of a CSV row whose max_pods is empty.
const DefaultMaxPods = 110

// Overhead names.
const (
	// OverheadNone makes allocatable equal to capacity.
	OverheadNone = "none"
	// OverheadEKS subtracts the kube-reserved resources and eviction
	// thresholds Karpenter assumes for EKS nodes.
	OverheadEKS = "eks"
)

// Options tune how a catalog is read.
type Options struct {
	// Zones are the zones CSV rows are offered in; empty means DefaultZones.
	Zones []string
	// SpotPriceFactor, when above 0, also offers every CSV row as spot at
	// its on-demand price times the factor.
	SpotPriceFactor float64
	// Overhead is "" or "none" (allocatable is capacity) or "eks"
	// (allocatable is capacity less EKS's kube-reserved resources and
	// eviction thresholds). It applies to CSV rows and to YAML/JSON
	// instance types that give no allocatable.
	Overhead string
}

// Load reads a catalog, CSV or YAML/JSON, choosing by the file name's
// extension (.csv, .json, .yaml, .yml) or else by the content.
func Load(name string, r io.Reader, opts Options) ([]*typesv1.InstanceType, error) {
	if err := opts.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxInputBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, MaxInputBytes>>20)
	}
	var types []*typesv1.InstanceType
	if isCSV(name, data) {
		types, err = loadCSV(name, data, opts)
	} else {
		types, err = loadStructured(name, data, opts)
	}
	if err != nil {
		return nil, err
	}
	if len(types) == 0 {
		return nil, fmt.Errorf("%s: the catalog has no instance types", name)
	}
	return types, nil
}

func (o Options) check() error {
	if math.IsNaN(o.SpotPriceFactor) || math.IsInf(o.SpotPriceFactor, 0) || o.SpotPriceFactor < 0 {
		return fmt.Errorf("spot price factor must be a non-negative number, not %v", o.SpotPriceFactor)
	}
	switch o.Overhead {
	case "", OverheadNone, OverheadEKS:
	default:
		return fmt.Errorf("unknown overhead %q: use none or eks", o.Overhead)
	}
	seen := map[string]bool{}
	for _, z := range o.Zones {
		if strings.TrimSpace(z) == "" {
			return errors.New("zones must not be empty")
		}
		if seen[z] {
			return fmt.Errorf("zone %q is listed twice", z)
		}
		seen[z] = true
	}
	return nil
}

func (o Options) zones() []string {
	if len(o.Zones) == 0 {
		return DefaultZones
	}
	return o.Zones
}

// isCSV decides the format: by extension when it tells, else CSV when the
// first meaningful line has a comma and no colon or brace.
func isCSV(name string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return true
	case ".json", ".yaml", ".yml":
		return false
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		return bytes.Contains(t, []byte(",")) && !bytes.ContainsAny(t, ":{[")
	}
	return false
}

// roundPrice trims floating-point noise from a computed price.
func roundPrice(p float64) float64 { return math.Round(p*1e7) / 1e7 }
