package server

import (
	"context"
	"strings"
)

// The identities of Flotilla's own services, as their certificates carry
// them (spiffe://<trust-domain>/<name>).
const (
	IdentityWatcher      = "watcher"
	IdentityInterruption = "interruption"
	IdentityLauncher     = "launcher"
	IdentitySolver       = "solver"
)

// anyone allows every authenticated peer: a certificate that chains to the
// CA bundle, whatever its identity.
const anyone = "*"

// policy says who may call each method of every Flotilla server; a method
// it does not name is denied to everyone. It is the one place authorization
// is decided (docs/operations.md shows it): calls with side effects are
// allowed to the one service whose job needs them, read-only calls to any
// authenticated peer, so other tools may call the solver with their own
// certificate.
var policy = map[string][]string{
	// Launcher: EC2 side effects for the watcher; the interruption
	// service marks offerings it saw reclaimed and lists instances.
	"/flotilla.launcher.v1.LauncherService/Launch":            {IdentityWatcher},
	"/flotilla.launcher.v1.LauncherService/Terminate":         {IdentityWatcher},
	"/flotilla.launcher.v1.LauncherService/ResolveNodeClass":  {IdentityWatcher},
	"/flotilla.launcher.v1.LauncherService/MarkUnavailable":   {IdentityInterruption, IdentityWatcher},
	"/flotilla.launcher.v1.LauncherService/ListInstances":     {IdentityInterruption, IdentityWatcher},
	"/flotilla.launcher.v1.LauncherService/ListInstanceTypes": {anyone},
	// Watcher: only the interruption service asks for a disruption.
	"/flotilla.watcher.v1.WatcherService/Disrupt":   {IdentityInterruption},
	"/flotilla.watcher.v1.WatcherService/GetStatus": {anyone},
	"/flotilla.watcher.v1.WatcherService/GetState":  {anyone},
	// Solver and interruption: read-only.
	"/flotilla.solver.v1.SolverService/Solve":                        {anyone},
	"/flotilla.solver.v1.SolverService/Consolidate":                  {anyone},
	"/flotilla.interruption.v1.InterruptionService/ListRecentEvents": {anyone},
}

// openServices are served to every authenticated peer, whole: health
// checks and, where it is turned on, reflection.
var openServices = []string{"/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"}

// Allowed reports whether identity may call fullMethod
// ("/package.Service/Method").
func Allowed(fullMethod, identity string) bool {
	for _, prefix := range openServices {
		if strings.HasPrefix(fullMethod, prefix) {
			return true
		}
	}
	for _, who := range policy[fullMethod] {
		if who == anyone || who == identity {
			return true
		}
	}
	return false
}

// PolicyTable lists the policy's methods with the identities allowed to
// call each, for documentation and tests; "*" means any authenticated peer.
func PolicyTable() map[string][]string {
	out := make(map[string][]string, len(policy))
	for m, who := range policy {
		out[m] = append([]string(nil), who...)
	}
	return out
}

type identityKey struct{}

// PeerIdentity returns the authenticated caller's identity inside a
// handler: "watcher" for spiffe://<trust-domain>/watcher, or a certificate's
// common name. It is false on a server started with Insecure, where callers
// are not authenticated.
func PeerIdentity(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(identityKey{}).(string)
	return id, ok
}

// WithPeerIdentity returns ctx carrying identity as PeerIdentity reports
// it; for tests of handlers that read it.
func WithPeerIdentity(ctx context.Context, identity string) context.Context {
	return context.WithValue(ctx, identityKey{}, identity)
}
