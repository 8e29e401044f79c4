package dashboards

import (
	"errors"
	"fmt"
	"strings"
)

// MetricNames returns the metric names a PromQL expression selects, in
// order of appearance, and an error when the expression is empty or its
// brackets or strings do not close. It is a scanner, not a parser (the
// Prometheus parser is a large dependency): it skips strings, label
// matchers {...}, ranges [...], numbers, durations and Grafana variables
// ($name, ${name}); a word followed by "(" is a function or an aggregation;
// aggregation operators, keywords and the label lists after by, without,
// on, ignoring, group_left and group_right are not metrics; every other
// word is. Metrics named like a keyword or selected by {__name__=...} are
// not found.
func MetricNames(expr string) ([]string, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("empty expression")
	}
	var names []string
	open := 0 // parentheses open
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '{' || c == '[':
			end, err := skipGroup(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '}' || c == ']':
			return nil, fmt.Errorf("unopened %q at %d", c, i)
		case c == '(':
			open++
			i++
		case c == ')':
			if open == 0 {
				return nil, fmt.Errorf("unopened ')' at %d", i)
			}
			open--
			i++
		case c == '$':
			end, err := skipVariable(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case isDigit(c) || c == '.':
			i = skipNumber(expr, i)
		case isWordStart(c):
			end, name, err := scanWord(expr, i)
			if err != nil {
				return nil, err
			}
			if name != "" {
				names = append(names, name)
			}
			i = end
		default:
			i++
		}
	}
	if open > 0 {
		return nil, fmt.Errorf("%d unclosed '('", open)
	}
	return names, nil
}

// scanWord reads the word starting at i and returns the index after it (and
// after the label list following by, on, ...) and the word when it is a
// metric name.
func scanWord(expr string, i int) (int, string, error) {
	end := i + 1
	for end < len(expr) && isWordPart(expr[end]) {
		end++
	}
	word, next := expr[i:end], nextNonSpace(expr, end)
	called := next < len(expr) && expr[next] == '('
	switch {
	case labelListKeywords[word]:
		if !called {
			return end, "", nil // group_left without labels
		}
		end, err := skipLabelList(expr, next)
		if err != nil {
			return 0, "", fmt.Errorf("after %s: %w", word, err)
		}
		return end, "", nil
	case keywords[word] || aggregations[word] || called:
		return end, "", nil
	default:
		return end, word, nil
	}
}

// labelListKeywords are followed by a list of label names in parentheses.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// keywords are PromQL's other reserved words.
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "Inf": true, "nan": true, "NaN": true, "start": true, "end": true,
}

// aggregations may come before their by/without clause, so the "(" that
// marks them as calls is not always next.
var aggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// skipString returns the index after the string literal starting at i.
// Backquoted strings have no escapes.
func skipString(expr string, i int) (int, error) {
	quote := expr[i]
	for j := i + 1; j < len(expr); j++ {
		switch expr[j] {
		case '\\':
			if quote != '`' {
				j++
			}
		case quote:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d", i)
}

// skipGroup returns the index after the label matchers {...} or the range
// [...] starting at i, skipping the strings inside.
func skipGroup(expr string, i int) (int, error) {
	closing := byte('}')
	if expr[i] == '[' {
		closing = ']'
	}
	for j := i + 1; j < len(expr); {
		var err error
		switch c := expr[j]; c {
		case '"', '\'', '`':
			j, err = skipString(expr, j)
		case '$':
			j, err = skipVariable(expr, j)
		case closing:
			return j + 1, nil
		case '{', '[', '(', ')', '}', ']':
			err = fmt.Errorf("unexpected %q at %d inside %q", c, j, expr[i])
		default:
			j++
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("unclosed %q at %d", expr[i], i)
}

// skipLabelList returns the index after the list of label names in
// parentheses starting at i.
func skipLabelList(expr string, i int) (int, error) {
	for j := i + 1; j < len(expr); j++ {
		c := expr[j]
		if c == ')' {
			return j + 1, nil
		}
		if !isWordPart(c) && !strings.ContainsRune(", \t\r\n", rune(c)) {
			return 0, fmt.Errorf("unexpected %q at %d in a label list", c, j)
		}
	}
	return 0, fmt.Errorf("unclosed label list at %d", i)
}

// skipVariable returns the index after the Grafana variable ($name or
// ${name...}) starting at i.
func skipVariable(expr string, i int) (int, error) {
	j := i + 1
	if j < len(expr) && expr[j] == '{' {
		end := strings.IndexByte(expr[j:], '}')
		if end < 0 {
			return 0, fmt.Errorf("unclosed variable at %d", i)
		}
		return j + end + 1, nil
	}
	for j < len(expr) && isWordPart(expr[j]) {
		j++
	}
	if j == i+1 {
		return 0, fmt.Errorf("'$' without a variable name at %d", i)
	}
	return j, nil
}

// skipNumber returns the index after the number or duration starting at i
// (0.99, 1e-3, 5m, 1h30m).
func skipNumber(expr string, i int) int {
	j := i
	for j < len(expr) {
		c := expr[j]
		switch {
		case isWordPart(c) || c == '.':
			j++
		case (c == '+' || c == '-') && j > i && (expr[j-1] == 'e' || expr[j-1] == 'E'):
			j++
		default:
			return j
		}
	}
	return j
}

func nextNonSpace(expr string, i int) int {
	for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isWordStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
func isWordPart(c byte) bool { return isWordStart(c) || isDigit(c) }
