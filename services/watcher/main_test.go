package main

import (
	"bytes"
	"flag"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func TestFlagsRejectBadValues(t *testing.T) {
	fs := flag.NewFlagSet("watcher", flag.ContinueOnError)
	f := addFlags(fs)
	if err := fs.Parse([]string{"--cluster-name=test"}); err != nil {
		t.Fatal(err)
	}
	if err := f.check(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if f.kubeQPS != 200 || f.kubeBurst != 300 || f.controllerMetricsAddr != "0" {
		t.Errorf("defaults: qps %v burst %d controller metrics %q", f.kubeQPS, f.kubeBurst, f.controllerMetricsAddr)
	}
	if err := fs.Parse([]string{"--kube-api-qps=0", "--batch-idle-duration=20s"}); err != nil {
		t.Fatal(err)
	}
	err := f.check()
	for _, want := range []string{"--kube-api-qps", "--batch-max-duration"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check() = %v, want an error naming %s", err, want)
		}
	}
}

func TestDisruptMinGraceFlag(t *testing.T) {
	fs := flag.NewFlagSet("watcher", flag.ContinueOnError)
	f := addFlags(fs)
	if err := fs.Parse([]string{"--cluster-name=test"}); err != nil {
		t.Fatal(err)
	}
	if f.disruptMinGrace.String() != "30s" {
		t.Errorf("--disrupt-min-grace default %s, want 30s", f.disruptMinGrace)
	}
	if err := fs.Parse([]string{"--disrupt-min-grace=0s"}); err != nil {
		t.Fatal(err)
	}
	if err := f.check(); err == nil || !strings.Contains(err.Error(), "--disrupt-min-grace") {
		t.Errorf("check() = %v, want an error naming --disrupt-min-grace", err)
	}
}

// TestSetLoggers: controller-runtime's and klog's lines land in the
// service's logger.
func TestSetLoggers(t *testing.T) {
	var buf bytes.Buffer
	setLoggers(slog.New(slog.NewJSONHandler(&buf, nil)))
	ctrllog.Log.WithName("test").Info("from controller-runtime")
	klog.Info("from klog")
	klog.Flush()
	for _, want := range []string{`"msg":"from controller-runtime"`, `"msg":"from klog"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the service's log lacks %s:\n%s", want, buf.String())
		}
	}
}
