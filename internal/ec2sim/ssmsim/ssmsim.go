// Package ssmsim simulates the part of AWS Systems Manager Parameter Store
// that node autoscalers use to resolve AMI aliases: GetParameter,
// GetParameters and GetParametersByPath over the awsJson1_1 protocol
// (POST, X-Amz-Target: AmazonSSM.<Operation>, Content-Type
// application/x-amz-json-1.1). It is an http.Handler; mount it at the root
// of a server (the SDK posts to "/") or behind a router that dispatches on
// the X-Amz-Target prefix "AmazonSSM".
package ssmsim

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
	"time"
)

// TargetPrefix is the X-Amz-Target service prefix this handler serves.
const TargetPrefix = "AmazonSSM"

// Handler is a parameter store. The zero value is not usable; call New.
type Handler struct {
	// Region and Account go into parameter ARNs. Parameters under /aws/
	// are public and get an empty account, as real public parameters do.
	Region  string
	Account string
	// Now stamps LastModifiedDate; time.Now when nil.
	Now func() time.Time

	mu       sync.Mutex
	params   map[string][]version // name → history, oldest first
	calls    map[string]int
	failures map[string]*failure
}

type version struct {
	value    string
	number   int64
	modified time.Time
}

type failure struct {
	status        int
	code, message string
	remaining     int
}

// New returns a store holding params (name → value), each at version 1.
func New(params map[string]string) *Handler {
	h := &Handler{Region: "us-east-1", Account: "123456789012", params: map[string][]version{}, calls: map[string]int{}, failures: map[string]*failure{}}
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h.Set(n, params[n])
	}
	return h
}

// Set creates a parameter or, when value differs from the current one,
// adds a new version of it (as PutParameter with Overwrite does).
func (h *Handler) Set(name, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hist := h.params[name]
	if n := len(hist); n > 0 && hist[n-1].value == value {
		return
	}
	h.params[name] = append(hist, version{value: value, number: int64(len(hist) + 1), modified: h.now()})
}

// Delete removes a parameter and its history.
func (h *Handler) Delete(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.params, name)
}

// Get returns a parameter's current value.
func (h *Handler) Get(name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hist := h.params[name]
	if len(hist) == 0 {
		return "", false
	}
	return hist[len(hist)-1].value, true
}

// Calls returns how many requests for an operation (e.g. "GetParameter")
// the handler has received, including failed ones; "" counts all.
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
// error: status (e.g. 400, 500, 503) and code (e.g. ThrottlingException,
// InternalServerError). times < 0 fails until Fail is called again with 0.
func (h *Handler) Fail(op string, status int, code, message string, times int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if times == 0 {
		delete(h.failures, op)
		return
	}
	h.failures[op] = &failure{status: status, code: code, message: message, remaining: times}
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// wire shapes

type parameterJSON struct {
	Name             string  `json:"Name"`
	Type             string  `json:"Type"`
	Value            string  `json:"Value"`
	Version          int64   `json:"Version"`
	Selector         string  `json:"Selector,omitempty"`
	LastModifiedDate float64 `json:"LastModifiedDate"`
	ARN              string  `json:"ARN"`
	DataType         string  `json:"DataType"`
}

// apiError is an AWS JSON protocol error.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

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
	case "GetParameter":
		out, aerr = h.getParameter(body)
	case "GetParameters":
		out, aerr = h.getParameters(body)
	case "GetParametersByPath":
		out, aerr = h.getParametersByPath(body)
	default:
		aerr = errf(http.StatusBadRequest, "UnknownOperationException", "operation %q is not supported by the simulator", op)
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func decode(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return errf(http.StatusBadRequest, "SerializationException", "%v", err)
	}
	return nil
}

func (h *Handler) getParameter(body []byte) (any, *apiError) {
	var in struct {
		Name           *string `json:"Name"`
		WithDecryption *bool   `json:"WithDecryption"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Name == nil || *in.Name == "" {
		return nil, errf(http.StatusBadRequest, "ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	p, err := h.lookup(*in.Name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Parameter": p}, nil
}

func (h *Handler) getParameters(body []byte) (any, *apiError) {
	var in struct {
		Names          []string `json:"Names"`
		WithDecryption *bool    `json:"WithDecryption"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Names) == 0 || len(in.Names) > 10 {
		return nil, errf(http.StatusBadRequest, "ValidationException", "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length between 1 and 10")
	}
	params := []parameterJSON{}
	invalid := []string{}
	seen := map[string]bool{}
	for _, n := range in.Names {
		if seen[n] {
			continue
		}
		seen[n] = true
		p, err := h.lookup(n)
		if err != nil {
			invalid = append(invalid, n)
			continue
		}
		params = append(params, p)
	}
	return map[string]any{"Parameters": params, "InvalidParameters": invalid}, nil
}

func (h *Handler) getParametersByPath(body []byte) (any, *apiError) {
	var in struct {
		Path           *string `json:"Path"`
		Recursive      *bool   `json:"Recursive"`
		MaxResults     *int32  `json:"MaxResults"`
		NextToken      *string `json:"NextToken"`
		WithDecryption *bool   `json:"WithDecryption"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Path == nil || !strings.HasPrefix(*in.Path, "/") {
		return nil, errf(http.StatusBadRequest, "ValidationException", "the parameter path must begin with a slash (/)")
	}
	limit := 10
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 10 {
			return nil, errf(http.StatusBadRequest, "ValidationException", "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10", *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	after := ""
	if in.NextToken != nil && *in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		if err != nil {
			return nil, errf(http.StatusBadRequest, "InvalidNextToken", "the specified token is not valid")
		}
		after = string(b)
	}
	recursive := in.Recursive != nil && *in.Recursive
	prefix := strings.TrimSuffix(*in.Path, "/") + "/"

	h.mu.Lock()
	var names []string
	for n := range h.params {
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok || rest == "" || (!recursive && strings.Contains(rest, "/")) || n <= after {
			continue
		}
		names = append(names, n)
	}
	h.mu.Unlock()
	sort.Strings(names)

	out := map[string]any{}
	params := []parameterJSON{}
	for i, n := range names {
		if i == limit {
			out["NextToken"] = base64.RawURLEncoding.EncodeToString([]byte(names[i-1]))
			break
		}
		p, err := h.lookup(n)
		if err != nil { // deleted meanwhile
			continue
		}
		params = append(params, p)
	}
	out["Parameters"] = params
	return out, nil
}

// lookup resolves a name, an ARN, or either with a ":<version>" selector.
func (h *Handler) lookup(ref string) (parameterJSON, *apiError) {
	name := ref
	if strings.HasPrefix(name, "arn:") {
		if i := strings.Index(name, ":parameter"); i >= 0 {
			name = name[i+len(":parameter"):]
		}
	}
	selector := ""
	if i := strings.LastIndex(name, ":"); i >= 0 {
		name, selector = name[:i], name[i:]
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	hist := h.params[name]
	if len(hist) == 0 && strings.HasPrefix(ref, "arn:") && strings.HasPrefix(name, "/") {
		name = name[1:]
		hist = h.params[name]
	}
	if len(hist) == 0 {
		return parameterJSON{}, errf(http.StatusBadRequest, "ParameterNotFound", "Parameter %s not found.", name)
	}
	v := hist[len(hist)-1]
	if selector != "" {
		n, err := strconv.ParseInt(selector[1:], 10, 64)
		if err != nil || n < 1 || n > int64(len(hist)) {
			return parameterJSON{}, errf(http.StatusBadRequest, "ParameterVersionNotFound", "Systems Manager could not find version %s of %s.", selector[1:], name)
		}
		v = hist[n-1]
	}
	return h.render(name, selector, v), nil
}

func (h *Handler) render(name, selector string, v version) parameterJSON {
	account := h.Account
	if strings.HasPrefix(name, "/aws/") {
		account = ""
	}
	arnName := name
	if !strings.HasPrefix(arnName, "/") {
		arnName = "/" + arnName
	}
	dataType := "text"
	if strings.HasPrefix(v.value, "ami-") {
		dataType = "aws:ec2:image"
	}
	return parameterJSON{
		Name:             name,
		Type:             "String",
		Value:            v.value,
		Version:          v.number,
		Selector:         selector,
		LastModifiedDate: float64(v.modified.UnixMilli()) / 1000,
		ARN:              fmt.Sprintf("arn:aws:ssm:%s:%s:parameter%s", h.Region, account, arnName),
		DataType:         dataType,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"__type":"InternalServerError","message":"encoding response"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("X-Amzn-ErrorType", e.code)
	writeJSON(w, e.status, map[string]string{"__type": e.code, "message": e.message})
}

var (
	reqMu  sync.Mutex
	reqSeq uint64
)

func requestID() string {
	reqMu.Lock()
	reqSeq++
	n := reqSeq
	reqMu.Unlock()
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", n)
}
