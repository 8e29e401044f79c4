package awsclient

import (
	"errors"

	"github.com/aws/smithy-go"
)

func errorAs(err error) (smithy.APIError, bool) {
	var ae smithy.APIError
	ok := errors.As(err, &ae)
	return ae, ok
}

// HasCode reports whether err is an AWS API error with one of codes.
func HasCode(err error, codes ...string) bool {
	ae, ok := errorAs(err)
	if !ok {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}
