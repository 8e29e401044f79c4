package kubeyaml

import (
	"errors"
	"fmt"
	"strings"
)

// Source names where an object came from: the file, the 1-based document
// index, the 1-based item index within a List document (0 outside a List),
// and the object's kind and name.
type Source struct {
	File      string
	Document  int
	Item      int
	Kind      string
	Namespace string
	Name      string
}

// String renders the source as `file: document N (Kind ns/name)`.
func (s Source) String() string {
	var b strings.Builder
	b.WriteString(s.File)
	fmt.Fprintf(&b, ": document %d", s.Document)
	if s.Item > 0 {
		fmt.Fprintf(&b, " item %d", s.Item)
	}
	if s.Kind != "" {
		b.WriteString(" (")
		b.WriteString(s.Kind)
		if s.Name != "" {
			b.WriteString(" ")
			if s.Namespace != "" {
				b.WriteString(s.Namespace)
				b.WriteString("/")
			}
			b.WriteString(s.Name)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Error is a problem with one document of an input file. Its message is a
// single line: `file: document N (Kind ns/name): field: problem`.
type Error struct {
	Source Source
	// Field is the path of the offending field within the document, such as
	// spec.template.spec.containers[0].resources.requests.cpu; empty when
	// the problem is with the document as a whole.
	Field string
	Err   error
}

func (e *Error) Error() string {
	msg := e.Source.String() + ": "
	if e.Field != "" {
		msg += e.Field + ": "
	}
	if e.Err != nil {
		msg += e.Err.Error()
	}
	return oneLine(msg)
}

func (e *Error) Unwrap() error { return e.Err }

// oneLine folds a message onto a single line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return strings.Join(parts, "; ")
}

// fieldError is a problem at a path inside an object, before the source is
// known.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.err.Error()
	}
	return e.field + ": " + e.err.Error()
}

func (e *fieldError) Unwrap() error { return e.err }

func ferr(field, format string, args ...any) error {
	return &fieldError{field: field, err: fmt.Errorf(format, args...)}
}

// withSource turns any error into an *Error naming src.
func withSource(src Source, err error) error {
	if err == nil {
		return nil
	}
	var ke *Error
	if errors.As(err, &ke) {
		return err
	}
	var fe *fieldError
	if errors.As(err, &fe) {
		return &Error{Source: src, Field: fe.field, Err: fe.err}
	}
	return &Error{Source: src, Err: err}
}
