package solver

import (
	"reflect"
	"testing"
)

func TestEffectiveRequests(t *testing.T) {
	cpu := func(m int64) Resources { return Resources{ResourceCPU: m} }
	tests := []struct {
		name       string
		containers []Container
		inits      []Container
		overhead   Resources
		want       Resources
	}{
		{"sum of containers", []Container{{Requests: cpu(100)}, {Requests: cpu(200)}}, nil, nil, cpu(300)},
		{"init container bigger than regular", []Container{{Requests: cpu(100)}}, []Container{{Requests: cpu(500)}}, nil, cpu(500)},
		{"init container smaller than regular", []Container{{Requests: cpu(800)}}, []Container{{Requests: cpu(500)}}, nil, cpu(800)},
		{"sidecar adds to regular", []Container{{Requests: cpu(100)}}, []Container{{Requests: cpu(50), RestartPolicyAlways: true}}, nil, cpu(150)},
		{"init after sidecar includes sidecar", []Container{{Requests: cpu(100)}},
			[]Container{{Requests: cpu(50), RestartPolicyAlways: true}, {Requests: cpu(400)}}, nil, cpu(450)},
		{"init before sidecar excludes it", []Container{{Requests: cpu(100)}},
			[]Container{{Requests: cpu(400)}, {Requests: cpu(50), RestartPolicyAlways: true}}, nil, cpu(400)},
		{"per resource max", []Container{{Requests: Resources{ResourceCPU: 1000, ResourceMemory: 10}}},
			[]Container{{Requests: Resources{ResourceCPU: 10, ResourceMemory: 500}}}, nil,
			Resources{ResourceCPU: 1000, ResourceMemory: 500}},
		{"overhead added", []Container{{Requests: cpu(100)}}, []Container{{Requests: cpu(500)}}, cpu(10), cpu(510)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EffectiveRequests(tt.containers, tt.inits, tt.overhead); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
