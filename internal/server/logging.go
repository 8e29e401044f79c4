package server

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Log formats accepted by NewLogger.
const (
	LogFormatAuto = "auto"
	LogFormatJSON = "json"
	LogFormatText = "text"
)

// NewLogger returns a logger writing to stderr: JSON when format is "json",
// or "auto" (or empty) and stderr is not a terminal; text otherwise. level
// is debug, info, warn or error (case-insensitive, empty meaning info); an
// unknown level or format falls back to info and auto. Use ParseLogLevel
// and ParseLogFormat to reject bad flag values first.
func NewLogger(format string, level string) *slog.Logger {
	return newLogger(os.Stderr, isTerminal(os.Stderr), format, level)
}

func newLogger(w io.Writer, terminal bool, format, level string) *slog.Logger {
	lvl, err := ParseLogLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	f, err := ParseLogFormat(format)
	if err != nil {
		f = LogFormatAuto
	}
	if f == LogFormatText || (f == LogFormatAuto && terminal) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// ParseLogLevel parses debug, info, warn (or warning) or error; empty means
// info.
func ParseLogLevel(level string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", level)
}

// ParseLogFormat parses auto, json or text; empty means auto.
func ParseLogFormat(format string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(format)); f {
	case "":
		return LogFormatAuto, nil
	case LogFormatAuto, LogFormatJSON, LogFormatText:
		return f, nil
	}
	return "", fmt.Errorf("unknown log format %q (want auto, json or text)", format)
}

// isTerminal reports whether f is a character device, such as a terminal.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
