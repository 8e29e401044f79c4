package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLoggerFormat(t *testing.T) {
	for _, tc := range []struct {
		format   string
		terminal bool
		json     bool
	}{
		{"json", true, true},
		{"json", false, true},
		{"text", false, false},
		{"auto", false, true},
		{"auto", true, false},
		{"", false, true},
	} {
		var buf bytes.Buffer
		newLogger(&buf, tc.terminal, tc.format, "info").Info("hello", "k", "v")
		isJSON := json.Valid(bytes.TrimSpace(buf.Bytes()))
		if isJSON != tc.json {
			t.Errorf("format %q terminal %v: output %q, want JSON %v", tc.format, tc.terminal, buf.String(), tc.json)
		}
	}
}

func TestNewLoggerLevel(t *testing.T) {
	var buf bytes.Buffer
	l := newLogger(&buf, false, "json", "warn")
	l.Info("quiet")
	l.Warn("loud")
	if strings.Contains(buf.String(), "quiet") || !strings.Contains(buf.String(), "loud") {
		t.Errorf("level warn logged %q", buf.String())
	}
	if _, err := ParseLogLevel("verbose"); err == nil {
		t.Error("ParseLogLevel accepted verbose")
	}
}
