package kubeyaml

import (
	"testing"

	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A DaemonSet's host ports reach the solver through its template, from the
// YAML loader (flotilla solve) and from the watcher's converter alike.
func TestDaemonSetHostPorts(t *testing.T) {
	want := []*typesv1.HostPort{
		{Port: 9100, Protocol: "TCP"},
		{Port: 8125, Protocol: "UDP", HostIp: "10.0.0.1"},
	}
	check := func(t *testing.T, got []*typesv1.HostPort) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("host ports %v, want %v", got, want)
		}
		for i := range want {
			if !proto.Equal(got[i], want[i]) {
				t.Errorf("host port %d = %v, want %v", i, got[i], want[i])
			}
		}
	}
	t.Run("yaml", func(t *testing.T) {
		d := load(t, `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-exporter, namespace: monitoring}
spec:
  selector: {matchLabels: {app: node-exporter}}
  template:
    metadata: {labels: {app: node-exporter}}
    spec:
      containers:
      - name: c
        ports:
        - {containerPort: 9100, hostPort: 9100}
        - {containerPort: 8125, hostPort: 8125, protocol: UDP, hostIP: 10.0.0.1}
        - {containerPort: 8080}
`)
		if len(d.DaemonSets) != 1 {
			t.Fatalf("daemonsets %v", d.DaemonSets)
		}
		check(t, d.DaemonSets[0].GetTemplate().GetHostPorts())
	})
	t.Run("converter", func(t *testing.T) {
		ds := &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "node-exporter", Namespace: "monitoring"},
			Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{
					{ContainerPort: 9100, HostPort: 9100},
					{ContainerPort: 8125, HostPort: 8125, Protocol: corev1.ProtocolUDP, HostIP: "10.0.0.1"},
					{ContainerPort: 8080},
				}}},
			}}},
		}
		got, err := NewConverter(nil, nil, nil).DaemonSet(ds)
		if err != nil {
			t.Fatal(err)
		}
		check(t, got.GetTemplate().GetHostPorts())
	})
}
