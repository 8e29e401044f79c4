package ec2sim

import "testing"

func TestStarPatternsMatchLikeGlob(t *testing.T) {
	vals := []string{"", "a", "abc", ",x,", ",a,b,c,", "aXbXc", "abab", "ba"}
	pats := []string{"*", "a*", "*c", "*,b,*", "a*b*c", "*ab*", "ab*ab", "*a*a*", "b*a", "**"}
	for _, p := range pats {
		f := newFilter("x", []string{p})
		for _, v := range vals {
			if got, want := f.matches([]string{v}), glob(p, v); got != want {
				t.Errorf("pattern %q value %q: %v, glob says %v", p, v, got, want)
			}
		}
	}
}
