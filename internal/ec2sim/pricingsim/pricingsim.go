// Package pricingsim simulates the AWS Price List Query API for EC2 over the
// awsJson1_1 protocol (POST, X-Amz-Target: AWSPriceListService.<Operation>,
// Content-Type application/x-amz-json-1.1): GetProducts with filters and
// NextToken/MaxResults pagination, and minimal DescribeServices and
// GetAttributeValues. Each catalog type is one Linux, shared-tenancy,
// on-demand product whose document is shaped like the real one (see
// ec2catalog.ProductDocument) and is returned, as the real API does, as a
// JSON string inside PriceList.
package pricingsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
)

// TargetPrefix is the X-Amz-Target service prefix this handler serves.
const TargetPrefix = "AWSPriceListService"

// ServiceCode is the only service the simulator prices.
const ServiceCode = "AmazonEC2"

// Publication is the publicationDate and effectiveDate written into product
// documents: the generation time of the embedded catalog's price source.
const Publication = "2026-07-20T13:44:30Z"

// Handler serves a fixed set of EC2 products. Create it with New.
type Handler struct {
	region string

	mu       sync.Mutex
	specs    []ec2catalog.Spec // sorted by Name
	docs     []product         // parallel to specs
	calls    map[string]int
	failures map[string]*failure
}

type product struct {
	attrs  map[string]string // attributes plus productFamily, sku, servicecode
	encode string            // the document as JSON
}

type failure struct {
	status        int
	code, message string
	remaining     int
}

// New serves catalog's types as products of region (e.g. us-east-1; its
// "location" is the Price List's name for it, "US East (N. Virginia)").
func New(catalog []ec2catalog.Spec, region string) *Handler {
	h := &Handler{region: region, calls: map[string]int{}, failures: map[string]*failure{}}
	h.specs = append([]ec2catalog.Spec(nil), catalog...)
	sort.Slice(h.specs, func(i, j int) bool { return h.specs[i].Name < h.specs[j].Name })
	h.docs = make([]product, len(h.specs))
	for i := range h.specs {
		h.docs[i] = h.build(h.specs[i])
	}
	return h
}

func (h *Handler) build(s ec2catalog.Spec) product {
	doc := ec2catalog.ProductDocument(s, h.region, Publication)
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // maps of strings: cannot fail
	}
	attrs := map[string]string{}
	for k, v := range doc.Product.Attributes {
		attrs[strings.ToLower(k)] = v
	}
	attrs["productfamily"] = doc.Product.ProductFamily
	attrs["sku"] = doc.Product.SKU
	return product{attrs: attrs, encode: string(b)}
}

// SetPrice changes the on-demand price of a served type; it reports false
// when the type is not served.
func (h *Handler) SetPrice(instanceType string, usdPerHour float64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := sort.Search(len(h.specs), func(i int) bool { return h.specs[i].Name >= instanceType })
	if i == len(h.specs) || h.specs[i].Name != instanceType {
		return false
	}
	h.specs[i].OnDemandPrice = usdPerHour
	h.docs[i] = h.build(h.specs[i])
	return true
}

// Calls returns how many requests for an operation (e.g. "GetProducts") the
// handler has received, including failed ones; "" counts all.
func (h *Handler) Calls(op string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if op != "" {
		return h.calls[op]
	}
	n := 0
	for _, c := range h.calls {
		n += c
	}
	return n
}

// ResetCalls zeroes the call counters.
func (h *Handler) ResetCalls() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = map[string]int{}
}

// Fail makes the next times requests for op ("" for any) fail with an AWS
// error (status, code such as ThrottlingException or
// InternalErrorException). times < 0 fails until Fail is called with 0.
func (h *Handler) Fail(op string, status int, code, message string, times int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if times == 0 {
		delete(h.failures, op)
		return
	}
	h.failures[op] = &failure{status: status, code: code, message: message, remaining: times}
}

type apiError struct {
	status        int
	code, message string
}

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// ServeHTTP implements the awsJson1_1 protocol for the supported operations.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	prefix, op, _ := strings.Cut(target, ".")
	h.mu.Lock()
	h.calls[op]++
	var injected *apiError
	for _, key := range []string{op, ""} {
		if f := h.failures[key]; f != nil {
			injected = &apiError{status: f.status, code: f.code, message: f.message}
			if f.remaining > 0 {
				if f.remaining--; f.remaining == 0 {
					delete(h.failures, key)
				}
			}
			break
		}
	}
	h.mu.Unlock()
	if injected != nil {
		writeError(w, injected)
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, errf(http.StatusMethodNotAllowed, "UnknownOperationException", "use POST"))
		return
	}
	if prefix != TargetPrefix {
		writeError(w, errf(http.StatusBadRequest, "UnknownOperationException", "unknown target %q", target))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, "SerializationException", "reading body: %v", err))
		return
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	var out any
	var aerr *apiError
	switch op {
	case "GetProducts":
		out, aerr = h.getProducts(body)
	case "DescribeServices":
		out, aerr = h.describeServices(body)
	case "GetAttributeValues":
		out, aerr = h.getAttributeValues(body)
	default:
		aerr = errf(http.StatusBadRequest, "UnknownOperationException", "operation %q is not supported by the simulator", op)
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type filter struct {
	Type  string `json:"Type"`
	Field string `json:"Field"`
	Value string `json:"Value"`
}

func (f filter) match(attrs map[string]string) bool {
	v, ok := attrs[strings.ToLower(f.Field)]
	switch strings.ToUpper(f.Type) {
	case "", "TERM_MATCH", "EQUALS":
		return ok && strings.EqualFold(v, f.Value)
	case "CONTAINS":
		return ok && strings.Contains(strings.ToLower(v), strings.ToLower(f.Value))
	case "ANY_OF":
		for _, want := range strings.Split(f.Value, ",") {
			if ok && strings.EqualFold(v, strings.TrimSpace(want)) {
				return true
			}
		}
		return false
	case "NONE_OF":
		for _, want := range strings.Split(f.Value, ",") {
			if ok && strings.EqualFold(v, strings.TrimSpace(want)) {
				return false
			}
		}
		return true
	}
	return false
}

func validFilterType(t string) bool {
	switch strings.ToUpper(t) {
	case "TERM_MATCH", "EQUALS", "CONTAINS", "ANY_OF", "NONE_OF":
		return true
	}
	return false
}

func (h *Handler) getProducts(body []byte) (any, *apiError) {
	var in struct {
		ServiceCode   *string  `json:"ServiceCode"`
		Filters       []filter `json:"Filters"`
		FormatVersion *string  `json:"FormatVersion"`
		NextToken     *string  `json:"NextToken"`
		MaxResults    *int32   `json:"MaxResults"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errf(http.StatusBadRequest, "SerializationException", "%v", err)
	}
	if in.ServiceCode == nil || *in.ServiceCode == "" {
		return nil, errf(http.StatusBadRequest, "InvalidParameterException", "ServiceCode is required")
	}
	if in.FormatVersion != nil && *in.FormatVersion != "aws_v1" {
		return nil, errf(http.StatusBadRequest, "InvalidParameterException", "unsupported FormatVersion %q", *in.FormatVersion)
	}
	for _, f := range in.Filters {
		if !validFilterType(f.Type) || f.Field == "" {
			return nil, errf(http.StatusBadRequest, "InvalidParameterException", "invalid filter %+v", f)
		}
	}
	limit, start, aerr := page(in.MaxResults, in.NextToken)
	if aerr != nil {
		return nil, aerr
	}
	out := map[string]any{"FormatVersion": "aws_v1"}
	list := []string{}
	if *in.ServiceCode != ServiceCode {
		out["PriceList"] = list
		return out, nil
	}
	h.mu.Lock()
	var matched []string
	for _, p := range h.docs {
		ok := true
		for _, f := range in.Filters {
			if !f.match(p.attrs) {
				ok = false
				break
			}
		}
		if ok {
			matched = append(matched, p.encode)
		}
	}
	h.mu.Unlock()
	if start > len(matched) {
		return nil, errf(http.StatusBadRequest, "InvalidNextTokenException", "the next token is not valid")
	}
	end := min(start+limit, len(matched))
	list = append(list, matched[start:end]...)
	out["PriceList"] = list
	if end < len(matched) {
		out["NextToken"] = token(end)
	}
	return out, nil
}

// attributeNames are the product attributes DescribeServices lists.
var attributeNames = []string{"capacitystatus", "currentGeneration", "instanceFamily", "instanceType", "licenseModel",
	"location", "locationType", "marketoption", "memory", "operatingSystem", "operation", "physicalProcessor",
	"preInstalledSw", "processorArchitecture", "regionCode", "servicecode", "tenancy", "usagetype", "vcpu"}

func (h *Handler) describeServices(body []byte) (any, *apiError) {
	var in struct {
		ServiceCode *string `json:"ServiceCode"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errf(http.StatusBadRequest, "SerializationException", "%v", err)
	}
	services := []map[string]any{}
	if in.ServiceCode == nil || *in.ServiceCode == "" || *in.ServiceCode == ServiceCode {
		services = append(services, map[string]any{"ServiceCode": ServiceCode, "AttributeNames": attributeNames})
	}
	return map[string]any{"Services": services, "FormatVersion": "aws_v1"}, nil
}

func (h *Handler) getAttributeValues(body []byte) (any, *apiError) {
	var in struct {
		ServiceCode   *string `json:"ServiceCode"`
		AttributeName *string `json:"AttributeName"`
		NextToken     *string `json:"NextToken"`
		MaxResults    *int32  `json:"MaxResults"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errf(http.StatusBadRequest, "SerializationException", "%v", err)
	}
	if in.ServiceCode == nil || *in.ServiceCode != ServiceCode {
		return nil, errf(http.StatusBadRequest, "NotFoundException", "service not found")
	}
	if in.AttributeName == nil || *in.AttributeName == "" {
		return nil, errf(http.StatusBadRequest, "InvalidParameterException", "AttributeName is required")
	}
	limit, start, aerr := page(in.MaxResults, in.NextToken)
	if aerr != nil {
		return nil, aerr
	}
	key := strings.ToLower(*in.AttributeName)
	set := map[string]bool{}
	h.mu.Lock()
	for _, p := range h.docs {
		if v, ok := p.attrs[key]; ok {
			set[v] = true
		}
	}
	h.mu.Unlock()
	values := make([]string, 0, len(set))
	for v := range set {
		values = append(values, v)
	}
	sort.Strings(values)
	if start > len(values) {
		return nil, errf(http.StatusBadRequest, "InvalidNextTokenException", "the next token is not valid")
	}
	end := min(start+limit, len(values))
	items := []map[string]string{}
	for _, v := range values[start:end] {
		items = append(items, map[string]string{"Value": v})
	}
	out := map[string]any{"AttributeValues": items}
	if end < len(values) {
		out["NextToken"] = token(end)
	}
	return out, nil
}

// page reads MaxResults (1..100, default 100) and an offset NextToken.
func page(maxResults *int32, next *string) (limit, start int, _ *apiError) {
	limit = 100
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > 100 {
			return 0, 0, errf(http.StatusBadRequest, "InvalidParameterException", "MaxResults must be between 1 and 100")
		}
		limit = int(*maxResults)
	}
	if next != nil && *next != "" {
		b, err := base64.RawURLEncoding.DecodeString(*next)
		rest, ok := strings.CutPrefix(string(b), "offset:")
		n, err2 := strconv.Atoi(rest)
		if err != nil || !ok || err2 != nil || n < 0 {
			return 0, 0, errf(http.StatusBadRequest, "InvalidNextTokenException", "the next token is not valid")
		}
		start = n
	}
	return limit, start, nil
}

func token(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"__type":"InternalErrorException","message":"encoding response"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("X-Amzn-ErrorType", e.code)
	writeJSON(w, e.status, map[string]string{"__type": e.code, "message": e.message})
}
