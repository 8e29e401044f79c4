package patternlp

import (
	"context"
	"errors"
	"math"
)

// master is the restricted master LP of column generation,
//
//	minimize Σ_j cost_j z_j  subject to  Σ_j a_j z_j ≥ n,  z ≥ 0,
//
// solved by a revised simplex that keeps the basis inverse explicitly (the
// master has one row per pod class, a hundred or so). Surplus variables
// s_c ≥ 0 turn the rows into equalities; a column index ≥ 0 names a
// pattern, -1-c the surplus of row c.
type master struct {
	m    int
	n    []float64   // right-hand side: pods per class
	cols [][]float64 // pattern columns
	cost []float64

	basis []int       // column in each basis position
	binv  [][]float64 // basis inverse
	xb    []float64   // basic variable values
	since int         // pivots since the last refactorization
}

// newMaster starts from a basis of one column per row: start[c] must be a
// column with a positive entry in row c only (a pattern of one class).
func newMaster(n []float64, start [][]float64, startCost []float64) (*master, error) {
	m := len(n)
	ms := &master{m: m, n: n}
	for c := range start {
		ms.basis = append(ms.basis, ms.add(start[c], startCost[c]))
	}
	return ms, ms.refactor()
}

func (ms *master) add(col []float64, cost float64) int {
	ms.cols = append(ms.cols, col)
	ms.cost = append(ms.cost, cost)
	return len(ms.cols) - 1
}

func (ms *master) column(j int) []float64 {
	if j >= 0 {
		return ms.cols[j]
	}
	col := make([]float64, ms.m)
	col[-1-j] = -1
	return col
}

func (ms *master) costOf(j int) float64 {
	if j >= 0 {
		return ms.cost[j]
	}
	return 0
}

// refactor recomputes the basis inverse and the basic solution from
// scratch, by Gauss-Jordan elimination with partial pivoting.
func (ms *master) refactor() error {
	m := ms.m
	a := make([][]float64, m)
	for i := range a {
		a[i] = make([]float64, 2*m)
		a[i][m+i] = 1
	}
	for k, j := range ms.basis {
		col := ms.column(j)
		for i := range m {
			a[i][k] = col[i]
		}
	}
	for k := range m {
		p := k
		for i := k + 1; i < m; i++ {
			if math.Abs(a[i][k]) > math.Abs(a[p][k]) {
				p = i
			}
		}
		if math.Abs(a[p][k]) < 1e-12 {
			return errors.New("patternlp: singular basis")
		}
		a[k], a[p] = a[p], a[k]
		piv := a[k][k]
		for c := range a[k] {
			a[k][c] /= piv
		}
		for i := range m {
			if i == k || a[i][k] == 0 {
				continue
			}
			f := a[i][k]
			for c := range a[i] {
				a[i][c] -= f * a[k][c]
			}
		}
	}
	ms.binv = make([][]float64, m)
	for i := range m {
		ms.binv[i] = a[i][m:]
	}
	ms.xb = make([]float64, m)
	for i := range m {
		ms.xb[i] = dotv(ms.binv[i], ms.n)
	}
	ms.since = 0
	return nil
}

func dotv(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// duals returns y = c_B B⁻¹, the price of one pod of each class.
func (ms *master) duals() []float64 {
	y := make([]float64, ms.m)
	for k, j := range ms.basis {
		c := ms.costOf(j)
		if c == 0 {
			continue
		}
		for i, v := range ms.binv[k] {
			y[i] += c * v
		}
	}
	return y
}

// objective is the cost of the current basic solution.
func (ms *master) objective() float64 {
	s := 0.0
	for k, j := range ms.basis {
		s += ms.costOf(j) * ms.xb[k]
	}
	return s
}

// errStopped is solve's error when ctx ends first; the basis is then
// still feasible, only not optimal.
var errStopped = errors.New("patternlp: stopped")

// solve pivots until no column prices out, or maxPivots pivots, or ctx
// ends.
func (ms *master) solve(ctx context.Context, maxPivots int) error {
	const eps = 1e-9
	for pivot := range maxPivots {
		if pivot%64 == 63 && ctx.Err() != nil {
			return errStopped
		}
		y := ms.duals()
		enter, best := 0, -eps
		found := false
		for j, col := range ms.cols {
			d := ms.cost[j] - dotv(y, col)
			if d < best*(1+1e-9) && d < -eps*math.Max(1, ms.cost[j]) {
				enter, best, found = j, d, true
			}
		}
		for c := range ms.m {
			if y[c] < best {
				enter, best, found = -1-c, y[c], true
			}
		}
		if !found {
			return nil
		}
		col := ms.column(enter)
		u := make([]float64, ms.m)
		for i := range ms.m {
			u[i] = dotv(ms.binv[i], col)
		}
		leave, ratio := -1, math.Inf(1)
		for i := range ms.m {
			if u[i] > 1e-11 {
				r := math.Max(ms.xb[i], 0) / u[i]
				if r < ratio-1e-12 || (r <= ratio+1e-12 && leave >= 0 && ms.basis[i] < ms.basis[leave]) {
					leave, ratio = i, r
				}
			}
		}
		if leave < 0 {
			return errors.New("patternlp: master unbounded")
		}
		ms.pivot(leave, enter, u, ratio)
	}
	return errors.New("patternlp: pivot limit reached")
}

func (ms *master) pivot(r, enter int, u []float64, theta float64) {
	for i := range ms.m {
		if i != r {
			ms.xb[i] -= theta * u[i]
		}
	}
	ms.xb[r] = theta
	row := ms.binv[r]
	piv := u[r]
	for c := range row {
		row[c] /= piv
	}
	for i := range ms.m {
		if i == r || u[i] == 0 {
			continue
		}
		f := u[i]
		bi := ms.binv[i]
		for c := range bi {
			bi[c] -= f * row[c]
		}
	}
	ms.basis[r] = enter
	ms.since++
	if ms.since >= 64 {
		_ = ms.refactor()
	}
}
