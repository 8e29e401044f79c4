package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemoHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"demo", "--help"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "--once") {
		t.Fatalf("demo --help: exit %d, %q", code, out.String())
	}
}

func TestDemoOutsideCheckout(t *testing.T) {
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--once"}, &out, &errb)
	if code != exitBadInput || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 || !strings.Contains(errb.String(), "checkout") {
		t.Fatalf("demo outside the checkout: exit %d, stderr %q", code, errb.String())
	}
}
