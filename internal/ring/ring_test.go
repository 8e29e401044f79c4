package ring

import (
	"slices"
	"testing"
)

func TestRecentNewestFirstAndBounded(t *testing.T) {
	r := New[int](3)
	if got := r.Recent(0, nil); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	for i := 1; i <= 5; i++ {
		r.Add(i)
	}
	if got := r.Recent(0, nil); !slices.Equal(got, []int{5, 4, 3}) {
		t.Errorf("all = %v, want [5 4 3]", got)
	}
	if got := r.Recent(2, nil); !slices.Equal(got, []int{5, 4}) {
		t.Errorf("limit 2 = %v, want [5 4]", got)
	}
	odd := func(v *int) bool { return *v%2 == 1 }
	if got := r.Recent(0, odd); !slices.Equal(got, []int{5, 3}) {
		t.Errorf("odd = %v, want [5 3]", got)
	}
}

func TestSizeAtLeastOne(t *testing.T) {
	r := New[string](0)
	r.Add("a")
	r.Add("b")
	if got := r.Recent(0, nil); !slices.Equal(got, []string{"b"}) {
		t.Errorf("got %v, want [b]", got)
	}
}
