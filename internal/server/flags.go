package server

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/flotilla-io/flotilla/internal/version"
)

// EnvPrefix prefixes the environment variables that back flags:
// --grpc-addr falls back to FLOTILLA_GRPC_ADDR.
const EnvPrefix = "FLOTILLA"

// EnvOr returns the environment variable name if it is set and non-empty,
// else def. It suits flag defaults of string flags.
func EnvOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// EnvName is the environment variable backing the flag name under prefix:
// EnvName("FLOTILLA", "grpc-addr") is "FLOTILLA_GRPC_ADDR".
func EnvName(prefix, flagName string) string {
	n := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
	if prefix == "" {
		return n
	}
	return prefix + "_" + n
}

// ParseFlags parses args into fs with environment fallbacks: every flag not
// given on the command line takes the value of its environment variable
// (see EnvName) when that is set and non-empty, parsed like the flag, so a
// bad value is an error naming the variable. The variable's name is added
// to each flag's usage. Precedence: command line, then environment, then
// the flag's default.
//
// --version (version.FlagName) is the exception: it asks a question and
// configures nothing, so it has no variable (a deployment may well set
// FLOTILLA_VERSION for its own purposes), and when it is given the
// environment is not read at all, so that a bad FLOTILLA_* value cannot
// keep a binary from saying what it is.
func ParseFlags(fs *flag.FlagSet, args []string, prefix string) error {
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != version.FlagName {
			f.Usage += fmt.Sprintf(" (env %s)", EnvName(prefix, f.Name))
		}
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if v := fs.Lookup(version.FlagName); v != nil && v.Value.String() == "true" {
		return nil
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == version.FlagName {
			return
		}
		env := EnvName(prefix, f.Name)
		if v, ok := os.LookupEnv(env); ok && v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// Flags are the command-line flags every service shares.
type Flags struct {
	GRPCAddr        string
	MetricsAddr     string
	MaxMessageBytes int
	DrainPeriod     time.Duration
	StopTimeout     time.Duration
	LogFormat       string
	LogLevel        string
	TLSCert         string
	TLSKey          string
	TLSCA           string
	Insecure        bool
	TrustDomain     string
	MaxInFlight     int
	Reflection      bool
}

// AddFlags defines the shared flags on fs with the given defaults (zero
// fields take the package defaults) and returns where they are stored.
func AddFlags(fs *flag.FlagSet, def Flags) *Flags {
	if def.MaxMessageBytes == 0 {
		def.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if def.DrainPeriod == 0 {
		def.DrainPeriod = DefaultDrainPeriod
	}
	if def.StopTimeout == 0 {
		def.StopTimeout = DefaultStopTimeout
	}
	if def.LogFormat == "" {
		def.LogFormat = LogFormatAuto
	}
	if def.LogLevel == "" {
		def.LogLevel = "info"
	}
	if def.TrustDomain == "" {
		def.TrustDomain = DefaultTrustDomain
	}
	if def.MaxInFlight == 0 {
		def.MaxInFlight = DefaultMaxInFlight
	}
	f := &Flags{}
	fs.StringVar(&f.GRPCAddr, "grpc-addr", def.GRPCAddr, "gRPC listen address")
	fs.StringVar(&f.MetricsAddr, "metrics-addr", def.MetricsAddr, "HTTP listen address of /metrics and /healthz; empty disables it")
	fs.IntVar(&f.MaxMessageBytes, "max-message-bytes", def.MaxMessageBytes, "largest gRPC message received or sent, in bytes")
	fs.DurationVar(&f.DrainPeriod, "drain-period", def.DrainPeriod, "how long to keep serving with health NOT_SERVING before stopping")
	fs.DurationVar(&f.StopTimeout, "stop-timeout", def.StopTimeout, "how long a graceful stop may wait for in-flight RPCs")
	fs.StringVar(&f.LogFormat, "log-format", def.LogFormat, "log format: auto (JSON unless stderr is a terminal), json or text")
	fs.StringVar(&f.LogLevel, "log-level", def.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&f.TLSCert, "tls-cert", def.TLSCert, "PEM certificate (chain) this service presents to clients and to the services it calls; reloaded when the file changes")
	fs.StringVar(&f.TLSKey, "tls-key", def.TLSKey, "PEM private key of --tls-cert")
	fs.StringVar(&f.TLSCA, "tls-ca", def.TLSCA, "PEM CA bundle that clients' and servers' certificates must chain to")
	fs.BoolVar(&f.Insecure, "insecure", def.Insecure, "serve and dial plaintext, without authentication or authorization (tests only; logs a warning)")
	fs.StringVar(&f.TrustDomain, "trust-domain", def.TrustDomain, "SPIFFE trust domain of peer identities: a certificate with the URI SAN spiffe://<trust-domain>/watcher is the watcher")
	fs.IntVar(&f.MaxInFlight, "max-in-flight", def.MaxInFlight, "calls served at once (health checks excluded); more are refused with RESOURCE_EXHAUSTED before their body is read; -1: no limit")
	fs.BoolVar(&f.Reflection, "reflection", def.Reflection, "serve gRPC reflection (for grpcurl without .proto files)")
	return f
}

// Config checks the flag values and turns them into a Config with a logger.
func (f *Flags) Config(name string) (Config, error) {
	var errs []error
	if _, err := ParseLogFormat(f.LogFormat); err != nil {
		errs = append(errs, fmt.Errorf("--log-format: %w", err))
	}
	if _, err := ParseLogLevel(f.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if f.MaxMessageBytes <= 0 {
		errs = append(errs, fmt.Errorf("--max-message-bytes: %d is not positive", f.MaxMessageBytes))
	}
	if f.DrainPeriod < 0 {
		errs = append(errs, fmt.Errorf("--drain-period: %s is negative", f.DrainPeriod))
	}
	if f.StopTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--stop-timeout: %s is not positive", f.StopTimeout))
	}
	if f.GRPCAddr == "" {
		errs = append(errs, errors.New("--grpc-addr: must not be empty"))
	}
	if f.MaxInFlight == 0 || f.MaxInFlight < -1 {
		errs = append(errs, fmt.Errorf("--max-in-flight: %d is neither positive nor -1", f.MaxInFlight))
	}
	if f.TrustDomain == "" {
		errs = append(errs, errors.New("--trust-domain: must not be empty"))
	}
	files := TLSFiles{Cert: f.TLSCert, Key: f.TLSKey, CA: f.TLSCA}
	switch {
	case f.Insecure && files.set():
		errs = append(errs, errors.New("--insecure: cannot be combined with --tls-cert, --tls-key or --tls-ca"))
	case !f.Insecure:
		if err := files.check(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return Config{
		Name:            name,
		GRPCAddr:        f.GRPCAddr,
		MetricsAddr:     f.MetricsAddr,
		MaxMessageBytes: f.MaxMessageBytes,
		DrainPeriod:     f.DrainPeriod,
		StopTimeout:     f.StopTimeout,
		TLS:             files,
		Insecure:        f.Insecure,
		TrustDomain:     f.TrustDomain,
		MaxInFlight:     f.MaxInFlight,
		Reflection:      f.Reflection,
		Logger:          NewLogger(f.LogFormat, f.LogLevel),
	}, nil
}
