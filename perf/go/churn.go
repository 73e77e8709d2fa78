// churn: a large long-lived heap under a steady churn of pointer updates, the shape of
// perf/churn.cc (see there for what it stresses and the exact operations).
package main

import (
	"fmt"
	"time"
)

type churnLeaf struct{ payload [8]uint64 }

type churnRecord struct {
	child   *churnLeaf
	unused  *churnRecord
	payload [6]uint64
}

const chunkSlots = 1024

func newRecord(seed uint64) *churnRecord {
	leaf := &churnLeaf{}
	for i := range leaf.payload {
		leaf.payload[i] = seed + uint64(i)
	}
	r := &churnRecord{child: leaf}
	for i := range r.payload {
		r.payload[i] = seed
	}
	return r
}

func churn(o options) {
	def := int64(1024)
	if o.quick() {
		def = 128
	}
	liveMB := o.num("live-mb", def)
	slots := uint64(liveMB) * (1 << 20) / (64 + 64 + 8)
	ops := o.num("ops", int64(slots)*4)

	t0 := time.Now()
	nchunks := (slots + chunkSlots - 1) / chunkSlots
	spine := make([]*[chunkSlots]*churnRecord, nchunks)
	for c := range spine {
		spine[c] = new([chunkSlots]*churnRecord)
	}
	slot := func(i uint64) **churnRecord { return &spine[i/chunkSlots][i%chunkSlots] }
	for i := uint64(0); i < slots; i++ {
		*slot(i) = newRecord(i)
	}
	t1 := time.Now()
	r := rng{42}
	var checksum int64
	for op := int64(0); op < ops; op++ {
		s := slot(r.below(slots))
		checksum += int64((*s).child.payload[0] & 0xff)
		*s = newRecord(uint64(op))
		a := *slot(r.below(slots))
		b := *slot(r.below(slots))
		a.child, b.child = b.child, a.child
	}
	t2 := time.Now()
	report(fmt.Sprintf("churn/%dMiB", liveMB), t2.Sub(t0),
		fmt.Sprintf("build_s=%.4g churn_s=%.4g ops=%d check=%d",
			t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), ops, checksum))
}
