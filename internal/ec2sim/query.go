package ec2sim

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// apiError is an EC2 error answer.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errInvalidParam(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf(format, args...)}
}

func errMissingParam(name string) *apiError {
	return &apiError{http.StatusBadRequest, "MissingParameter", "The request must contain the parameter " + name}
}

func errNotFound(code, format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, code, fmt.Sprintf(format, args...)}
}

// query is a parsed EC2 query request.
type query struct {
	v map[string][]string
}

func (q query) get(k string) string {
	if vs := q.v[k]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (q query) has(k string) bool { _, ok := q.v[k]; return ok }

// indices returns the sorted N of every key prefix.N or prefix.N.*.
func (q query) indices(prefix string) []int {
	p := prefix + "."
	seen := map[int]bool{}
	for k := range q.v {
		rest, ok := strings.CutPrefix(k, p)
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// list returns the values of prefix.1, prefix.2, ... in index order.
func (q query) list(prefix string) []string {
	var out []string
	for _, n := range q.indices(prefix) {
		k := fmt.Sprintf("%s.%d", prefix, n)
		if q.has(k) {
			out = append(out, q.get(k))
		}
	}
	return out
}

func (q query) boolean(k string) bool {
	b, _ := strconv.ParseBool(q.get(k))
	return b
}

// integer parses k; absent gives def.
func (q query) integer(k string, def int) (int, *apiError) {
	v := q.get(k)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errInvalidParam("Value (%s) for parameter %s is invalid. Expected an integer.", v, k)
	}
	return n, nil
}

// withPrefix returns the parameters under prefix+".", keys stripped.
func (q query) withPrefix(prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range q.v {
		if rest, ok := strings.CutPrefix(k, prefix+"."); ok && len(v) > 0 {
			out[rest] = v[0]
		}
	}
	return out
}

// filter is one EC2 Filter.N.
type filter struct {
	Name   string
	Values []string
	// exact holds the values without wildcards, stars the values whose only
	// wildcard is *, split at it, and globs the rest: a lookup with
	// hundreds of values stays cheap.
	exact map[string]bool
	stars [][]string
	globs []string
}

func newFilter(name string, values []string) filter {
	f := filter{Name: name, Values: values, exact: map[string]bool{}}
	for _, v := range values {
		switch {
		case !strings.ContainsAny(v, `*?\`):
			f.exact[v] = true
		case !strings.ContainsAny(v, `?\`):
			f.stars = append(f.stars, strings.Split(v, "*"))
		default:
			f.globs = append(f.globs, v)
		}
	}
	return f
}

// matches reports whether some value matches some of the filter's values.
func (f filter) matches(vals []string) bool {
	for _, v := range vals {
		if f.exact[v] {
			return true
		}
		for _, parts := range f.stars {
			if starMatch(parts, v) {
				return true
			}
		}
		for _, p := range f.globs {
			if glob(p, v) {
				return true
			}
		}
	}
	return false
}

// starMatch matches s against a pattern whose only wildcard is *, given
// as the literal parts between the stars (at least two). Taking each
// middle part at its leftmost place is enough for such patterns.
func starMatch(parts []string, s string) bool {
	first, last := parts[0], parts[len(parts)-1]
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}

func (q query) filters() []filter {
	var out []filter
	for _, n := range q.indices("Filter") {
		p := fmt.Sprintf("Filter.%d", n)
		out = append(out, newFilter(q.get(p+".Name"), q.list(p+".Value")))
	}
	return out
}

// tags reads prefix.N.Key/Value.
func (q query) tags(prefix string) map[string]string {
	out := map[string]string{}
	for _, n := range q.indices(prefix) {
		p := fmt.Sprintf("%s.%d", prefix, n)
		if k := q.get(p + ".Key"); k != "" {
			out[k] = q.get(p + ".Value")
		}
	}
	return out
}

// tagSpecs reads prefix.N.ResourceType and prefix.N.Tag.M into tags by
// resource type.
func (q query) tagSpecs(prefix string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, n := range q.indices(prefix) {
		p := fmt.Sprintf("%s.%d", prefix, n)
		rt := q.get(p + ".ResourceType")
		if out[rt] == nil {
			out[rt] = map[string]string{}
		}
		for k, v := range q.tags(p + ".Tag") {
			out[rt][k] = v
		}
	}
	return out
}

// fieldFunc gives a resource's values for a filter name; ok is false for
// a filter name the resource kind does not support. Tag filters are
// handled by matchFilters.
type fieldFunc[T any] func(r T, name string) (vals []string, ok bool)

// checkFilters rejects filter names that fields does not know.
func checkFilters[T any](fs []filter, fields fieldFunc[T]) *apiError {
	var zero T
	for _, f := range fs {
		if f.Name == "" {
			return errInvalidParam("The filter name must not be empty")
		}
		if isTagFilter(f.Name) {
			continue
		}
		if _, ok := fields(zero, f.Name); !ok {
			return errInvalidParam("The filter '%s' is invalid", f.Name)
		}
	}
	return nil
}

func isTagFilter(name string) bool {
	return strings.HasPrefix(name, "tag:") || name == "tag-key" || name == "tag-value"
}

// matchFilters reports whether r passes every filter: some value of r
// matches some filter value (with * and ? wildcards).
func matchFilters[T any](r T, tags map[string]string, fs []filter, fields fieldFunc[T]) bool {
	for _, f := range fs {
		var vals []string
		switch {
		case strings.HasPrefix(f.Name, "tag:"):
			if v, ok := tags[strings.TrimPrefix(f.Name, "tag:")]; ok {
				vals = []string{v}
			}
		case f.Name == "tag-key":
			for k := range tags {
				vals = append(vals, k)
			}
		case f.Name == "tag-value":
			for _, v := range tags {
				vals = append(vals, v)
			}
		default:
			vals, _ = fields(r, f.Name)
		}
		if !f.matches(vals) {
			return false
		}
	}
	return true
}

// glob matches s against pattern with * (any run) and ? (one character);
// a backslash escapes the next character.
func glob(pattern, s string) bool {
	if !strings.ContainsAny(pattern, `*?\`) {
		return pattern == s
	}
	p, str := []rune(pattern), []rune(s)
	var match func(i, j int) bool
	memo := map[[2]int]bool{}
	match = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var res bool
		switch {
		case i == len(p):
			res = j == len(str)
		case p[i] == '*':
			res = match(i+1, j) || (j < len(str) && match(i, j+1))
		case p[i] == '?':
			res = j < len(str) && match(i+1, j+1)
		case p[i] == '\\' && i+1 < len(p):
			res = j < len(str) && str[j] == p[i+1] && match(i+2, j+1)
		default:
			res = j < len(str) && str[j] == p[i] && match(i+1, j+1)
		}
		memo[key] = res
		return res
	}
	return match(0, 0)
}

// page cuts items to one page per MaxResults/NextToken. min and max bound
// MaxResults as EC2 does for the action; def applies when it is absent.
func page[T any](q query, items []T, def, min, max int) ([]T, string, *apiError) {
	n, err := q.integer("MaxResults", def)
	if err != nil {
		return nil, "", err
	}
	if q.has("MaxResults") && (n < min || n > max) {
		return nil, "", errInvalidParam("Value ( %d ) for parameter maxResults is invalid. Parameter must be between %d and %d.", n, min, max)
	}
	start := 0
	if tok := q.get("NextToken"); tok != "" {
		raw, derr := base64.RawURLEncoding.DecodeString(tok)
		off, aerr := strconv.Atoi(strings.TrimPrefix(string(raw), "ec2sim:"))
		if derr != nil || aerr != nil || !strings.HasPrefix(string(raw), "ec2sim:") || off < 0 {
			return nil, "", &apiError{http.StatusBadRequest, "InvalidNextToken", "The token '" + tok + "' is invalid."}
		}
		start = min2(off, len(items))
	}
	end := len(items)
	if n > 0 && start+n < end {
		end = start + n
	}
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte("ec2sim:" + strconv.Itoa(end)))
	}
	return items[start:end], next, nil
}

func min2(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// xb builds an XML document.
type xb struct{ bytes.Buffer }

func (b *xb) open(name string)  { _, _ = b.WriteString("<" + name + ">") }
func (b *xb) close(name string) { _, _ = b.WriteString("</" + name + ">") }

// el writes <name>text</name>.
func (b *xb) el(name, text string) {
	b.open(name)
	_ = xml.EscapeText(&b.Buffer, []byte(text))
	b.close(name)
}

// opt writes el only when text is not empty.
func (b *xb) opt(name, text string) {
	if text != "" {
		b.el(name, text)
	}
}

func (b *xb) num(name string, n int64) { b.el(name, strconv.FormatInt(n, 10)) }

func (b *xb) boolean(name string, v bool) { b.el(name, strconv.FormatBool(v)) }

func (b *xb) time(name string, t time.Time) { b.el(name, fmtTime(t)) }

// items writes <name><item>v</item>...</name>.
func (b *xb) items(name string, vals []string) {
	b.open(name)
	for _, v := range vals {
		b.el("item", v)
	}
	b.close(name)
}

// tagSet writes <tagSet> sorted by key (nothing when there are no tags).
func (b *xb) tagSet(tags map[string]string) {
	if len(tags) == 0 {
		return
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.open("tagSet")
	for _, k := range keys {
		b.open("item")
		b.el("key", k)
		b.el("value", tags[k])
		b.close("item")
	}
	b.close("tagSet")
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
