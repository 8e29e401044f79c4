package service

import (
	"errors"
	"fmt"
	"strings"
)

// replaceFirstFlag is the flag after the semicolon of a
// DisruptionAnnotationKey value asking for a replacement before the drain.
const replaceFirstFlag = "replace-first"

// errMalformedAnnotation marks a DisruptionAnnotationKey value that Disrupt
// could not have written.
var errMalformedAnnotation = errors.New("malformed disruption annotation")

// disruptionRecord is what Disrupt recorded on a NodeClaim.
type disruptionRecord struct {
	Reason       string
	ReplaceFirst bool
}

// String is the annotation value of the record, as parseDisruption reads it.
func (r disruptionRecord) String() string {
	if r.ReplaceFirst {
		return r.Reason + ";" + replaceFirstFlag
	}
	return r.Reason
}

// parseDisruption reads a DisruptionAnnotationKey value: a reason as
// Disrupt accepts it, optionally followed by ";replace-first". Anything
// else (an empty value, an unknown flag, a reason with characters Disrupt
// refuses) is an error wrapping errMalformedAnnotation: the value was
// written by someone else, or mangled, and must not start a disruption.
func parseDisruption(value string) (disruptionRecord, error) {
	reason, flag, hasFlag := strings.Cut(value, ";")
	if !reasonPattern.MatchString(reason) {
		return disruptionRecord{}, fmt.Errorf("%w: reason %q: want up to 63 letters, digits, '.', '_' or '-'", errMalformedAnnotation, clip(reason))
	}
	if hasFlag && flag != replaceFirstFlag {
		return disruptionRecord{}, fmt.Errorf("%w: flag %q: want %q or none", errMalformedAnnotation, clip(flag), replaceFirstFlag)
	}
	return disruptionRecord{Reason: reason, ReplaceFirst: hasFlag}, nil
}
