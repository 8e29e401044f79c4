// Package apierr holds the domain error sentinels that Flotilla's services
// wrap (with %w) deep inside their logic. internal/server maps them to gRPC
// status codes exactly once, at the boundary, so domain packages never import
// gRPC. The package depends on the standard library only, so pure packages
// (and the CLI) can use it freely.
package apierr

import "errors"

var (
	// ErrInvalidArgument marks a request the caller must fix; it maps to
	// codes.InvalidArgument.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound marks a reference to something that does not exist; it
	// maps to codes.NotFound.
	ErrNotFound = errors.New("not found")
	// ErrFailedPrecondition marks a request the system is not in a state to
	// carry out; it maps to codes.FailedPrecondition.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable marks a transient failure worth retrying; it maps to
	// codes.Unavailable.
	ErrUnavailable = errors.New("unavailable")
	// ErrResourceExhausted marks a request larger than a configured limit
	// (the message names the limit); it maps to codes.ResourceExhausted.
	ErrResourceExhausted = errors.New("resource exhausted")
)

// Reasons carried in a google.rpc.ErrorInfo detail of a gRPC status, in
// ErrorDomain, so that a caller can tell apart errors that share a code.
// Both reasons come with codes.ResourceExhausted: a launch that found no
// capacity (the detail's metadata "offerings" lists the
// type/zone/capacity-type triples) must change the plan, a server that was
// too busy to take the call must not.
const (
	ErrorDomain                = "flotilla.io"
	ReasonInsufficientCapacity = "INSUFFICIENT_CAPACITY"
	ReasonOverloaded           = "OVERLOADED"
)

// ErrorInfo metadata keys of an INSUFFICIENT_CAPACITY error, always set by
// the launcher: MetadataNodeClaim names the NodeClaim whose launch failed,
// MetadataOfferings the offerings that had no capacity (and that the
// launcher now holds unavailable for a few minutes), comma-separated, each
// as instance-type/zone/capacity-type, e.g.
// "m5.large/us-east-1a/spot,m5.large/us-east-1b/spot".
const (
	MetadataNodeClaim = "node_claim"
	MetadataOfferings = "offerings"
)

// MetadataQuota is the ErrorInfo metadata key of an INSUFFICIENT_CAPACITY
// error that an account quota caused: the EC2 quota error codes,
// comma-separated (VcpuLimitExceeded, MaxSpotInstanceCountExceeded,
// MaxFleetCountExceeded).
const MetadataQuota = "quota"
