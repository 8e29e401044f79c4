package solver

// Scanning bins.
//
// First fit asks every bin, in order, whether it takes the next pod of a
// class. Most refusals are permanent (the bin is too full, its taints or
// labels are wrong, a hostname anti-affinity pod is there): bins only fill
// up and claims only narrow while a plan is built. Others are not: a zonal
// spread refuses a zone today and accepts it once the other zones caught
// up. Each level therefore keeps, per kind of scan, the bins that have not
// refused it for good (live, in bin order) and the first bin it has not
// looked at yet (next). A bin leaves the list the first time it refuses
// for good, so a spread rejection never makes the level re-read the bins
// before it that were full long ago.

// binScan is one level's list of the bins that may still take its pods.
type binScan struct {
	live []int32 // ids of examined bins that did not refuse for good
	next int     // bins from next on were never examined
}

// scanBins walks sc in bin order and returns the first bin try accepts.
// Bins try refuses for good leave the list unless keepAll is set; at most
// limit bins (when positive) are tried per call.
func (s *solver) scanBins(sc *binScan, keepAll bool, limit int, try func(*bin) reject) *bin {
	out := sc.live[:0]
	tried := 0
	for i, id := range sc.live {
		if limit > 0 && tried >= limit {
			sc.live = append(out, sc.live[i:]...)
			return nil
		}
		tried++
		r := try(s.bins[id])
		if r == accept {
			sc.live = append(out, sc.live[i:]...)
			return s.bins[id]
		}
		if r != rejectPermanent || keepAll {
			out = append(out, id)
		}
	}
	sc.live = out
	for sc.next < len(s.bins) && (limit <= 0 || tried < limit) {
		b := s.bins[sc.next]
		sc.next++
		tried++
		r := try(b)
		if r != rejectPermanent || keepAll {
			sc.live = append(sc.live, int32(b.id))
		}
		if r == accept {
			return b
		}
	}
	return nil
}

// quickTopo checks, before the costlier claim narrowing, the spread and
// affinity rules of lv (and the balance of class c's pods, see
// ownersCheck) whose topology key bin b already has as a label (the zone
// of every claim, say). It only ever answers accept or rejectTransient;
// topoCheck repeats every check in full.
func (s *solver) quickTopo(c *podClass, lv *level, b *bin) (reject, string) {
	for i := range lv.spreads {
		sc := &lv.spreads[i]
		if sc.g.key == LabelHostname {
			continue
		}
		d, ok := b.labels[sc.g.key]
		if ok && sc.g.counts[d]+sc.self-sc.g.globalMin(sc.minDomains) > sc.maxSkew {
			return rejectTransient, sc.g.desc
		}
	}
	for i := range lv.affinity {
		tc := &lv.affinity[i]
		d, ok := b.labels[tc.g.key]
		if ok && tc.g.counts[d] == 0 && (tc.g.total != 0 || !tc.self) {
			return rejectTransient, tc.g.desc
		}
	}
	if lv.balance {
		for _, g := range c.spreadBy {
			d, ok := b.labels[g.key]
			if ok && g.balancing() && g.counts[d]+1-g.globalMin(g.tsc.MinDomains) > g.tsc.MaxSkew {
				return rejectTransient, g.spreadByDesc
			}
		}
	}
	return accept, ""
}

// stickyLevel reports whether a level must never drop bins: a pod with
// hostname pod affinity may upgrade a full claim its target is on.
func stickyLevel(lv *level) bool {
	for _, tc := range lv.affinity {
		if tc.g.key == LabelHostname {
			return true
		}
	}
	return false
}

// zoneOnly reports whether every rule quickTopo checks for class c at
// level lv is on the zone (hostname spreads it skips), so that its answer
// is the same for every claim in a zone while one pod is being placed.
func zoneOnly(c *podClass, lv *level) bool {
	if lv.zoneQuick == 0 {
		lv.zoneQuick = 1
		for i := range lv.spreads {
			if k := lv.spreads[i].g.key; k != LabelZone && k != LabelHostname {
				lv.zoneQuick = -1
			}
		}
		for i := range lv.affinity {
			if lv.affinity[i].g.key != LabelZone {
				lv.zoneQuick = -1
			}
		}
		for _, g := range c.spreadBy {
			if g.key != LabelZone && g.key != LabelHostname {
				lv.zoneQuick = -1
			}
		}
	}
	return lv.zoneQuick > 0
}

// quickTopoZone is quickTopo for claim b, remembered per zone while
// s.zoneMemoOn (one pod's first-fit or growing scan at one level: the
// counts do not change during it).
func (s *solver) quickTopoZone(c *podClass, lv *level, b *bin) (reject, string) {
	if !s.zoneMemoOn {
		return s.quickTopo(c, lv, b)
	}
	z := b.claim.zone
	for i := range s.zoneMemo {
		if m := &s.zoneMemo[i]; m.zone == z {
			return m.r, m.why
		}
	}
	r, w := s.quickTopo(c, lv, b)
	s.zoneMemo = append(s.zoneMemo, quickMemo{zone: z, r: r, why: w})
	return r, w
}

// quickMemo is one zone's quickTopo answer.
type quickMemo struct {
	zone string
	r    reject
	why  string
}

// memoZones turns quickTopoZone's memo on for one scan of class c at
// level lv when zoneOnly allows it; the returned func turns it off.
func (s *solver) memoZones(c *podClass, lv *level) func() {
	if !zoneOnly(c, lv) {
		return func() {}
	}
	s.zoneMemo = s.zoneMemo[:0]
	s.zoneMemoOn = true
	return func() { s.zoneMemoOn = false }
}
