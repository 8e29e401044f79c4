package server

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
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
func ParseFlags(fs *flag.FlagSet, args []string, prefix string) error {
	fs.VisitAll(func(f *flag.Flag) {
		f.Usage += fmt.Sprintf(" (env %s)", EnvName(prefix, f.Name))
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
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
	f := &Flags{}
	fs.StringVar(&f.GRPCAddr, "grpc-addr", def.GRPCAddr, "gRPC listen address")
	fs.StringVar(&f.MetricsAddr, "metrics-addr", def.MetricsAddr, "HTTP listen address of /metrics and /healthz; empty disables it")
	fs.IntVar(&f.MaxMessageBytes, "max-message-bytes", def.MaxMessageBytes, "largest gRPC message received or sent, in bytes")
	fs.DurationVar(&f.DrainPeriod, "drain-period", def.DrainPeriod, "how long to keep serving with health NOT_SERVING before stopping")
	fs.DurationVar(&f.StopTimeout, "stop-timeout", def.StopTimeout, "how long a graceful stop may wait for in-flight RPCs")
	fs.StringVar(&f.LogFormat, "log-format", def.LogFormat, "log format: auto (JSON unless stderr is a terminal), json or text")
	fs.StringVar(&f.LogLevel, "log-level", def.LogLevel, "log level: debug, info, warn or error")
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
		Logger:          NewLogger(f.LogFormat, f.LogLevel),
	}, nil
}
