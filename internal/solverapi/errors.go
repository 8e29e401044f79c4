package solverapi

import (
	"strconv"
	"strings"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
)

// ErrInvalidArgument is wrapped by every validation error Solve and
// Consolidate return, so errors.Is(err, ErrInvalidArgument) tells a bad
// request from a solver failure. It is apierr.ErrInvalidArgument, which the
// gRPC server maps to codes.InvalidArgument.
var ErrInvalidArgument = apierr.ErrInvalidArgument

// maxFieldErrors caps how many field errors one ValidationError lists.
const maxFieldErrors = 10

// FieldError says what is wrong with one field of a request. Field is a
// path of proto field names with list indexes and map keys, such as
// pods[3].containers[0].requests["cpu"].
type FieldError struct {
	Field  string
	Reason string
}

// Error returns "field: reason".
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(e, ErrInvalidArgument) hold.
func (e *FieldError) Unwrap() error { return ErrInvalidArgument }

// ValidationError is a request's field errors: the first few found, in
// request order, and how many more there were.
type ValidationError struct {
	Errors  []*FieldError
	Omitted int
}

// Error joins the field errors with "; " so it reads on one line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	if e.Omitted > 0 {
		b.WriteString("; and " + strconv.Itoa(e.Omitted) + " more")
	}
	return b.String()
}

// Unwrap returns the field errors (for errors.As) and ErrInvalidArgument.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, 0, len(e.Errors)+1)
	for _, fe := range e.Errors {
		out = append(out, fe)
	}
	return append(out, ErrInvalidArgument)
}
