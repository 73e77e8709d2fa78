// write_barrier: what a heap pointer store costs in the Go runtime, with the write barrier
// off and on; the shape of perf/write_barrier.cc (see there for what it stresses), the same
// loops, sizes and RESULT lines (wb/plain, wb/off, wb/on).
//
// Three loops do the same work: blocks of 4096 stores, each writing a pointer taken from a
// table of --values random heap objects into the first word of one of 512 holder objects
// (32 KiB, allocated one after the other: the stores hit L1). Each block is a function of
// its own (go:noinline), as in the C++ program. Go cannot store a pointer into the heap
// without the barrier check, so the three stores are:
//
//	wb/plain  h.next = uintptr(unsafe.Pointer(v))  into holders whose type has no pointers
//	          (a uintptr field where the others have a pointer): a plain 8-byte store
//	wb/off    h.next = v  with no collection running: the compiled barrier check (a load
//	          of the runtime's flag and a branch), then the store
//	wb/on     h.next = v  during the mark phase of a real cycle: the buffered barrier
//	          (old and new value into the per-P buffer, shaded when it fills), then the store
//
// The loops also carry Go's bounds check on the values table, alike in all three; the
// barrier loops check the holder for nil with an instruction of its own, which the plain
// loop folds into its store (the barrier makes the store conditional).
//
// How "on" is arranged: the program builds a heap of --heap-mb (64-byte nodes linked at
// random, so marking is slow: cache misses on every object) with automatic collection off
// (debug.SetGCPercent(-1), which also keeps cycles out of the plain and off loops), then
// starts a cycle by calling runtime.GC in another goroutine. That cycle is an ordinary
// background cycle (mark workers at 25% of GOMAXPROCS plus idle Ps), the same as one the
// pacer starts; the calling goroutine only waits. Go has no public "marking now" flag, so
// marking() (marking_linkname.go) reads the runtime's own write-barrier flag through a
// go:linkname; with a toolchain that refuses the link it falls back to "runtime.GC has not
// returned" (marking_portable.go), which also spans the cycle's start and its sweep, and
// the RESULT line says so (exact_flag=0). While marking() holds, the loop runs store
// blocks, each timed in thread CPU time (the goroutine is locked to its thread), and counts a
// block only when marking() held before and after it. There are no safepoint calls between
// blocks: Go preempts the loop asynchronously to scan its stack and for mark termination.
// Repeated for --cycles.
//
//	gobench write_barrier [--heap-mb=512] [--values=4096] [--cycles=3] [--blocks=N] [--quick]
package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"
)

type wbNode struct {
	next    *wbNode
	other   *wbNode
	payload [6]uint64
}

// wbPlainNode is wbNode without pointers: the target of the plain store.
type wbPlainNode struct {
	next    uintptr
	other   uintptr
	payload [6]uint64
}

const (
	wbHolders = 512 // 32 KiB of holder objects: the stores hit L1
	wbBlock   = 4096
)

// gcInFlight is set before the collecting goroutine starts and cleared when its runtime.GC
// returns (marking_portable.go's approximation of the mark phase).
var gcInFlight atomic.Bool

//go:noinline
func storeBlockPlain(holders *[wbHolders]*wbPlainNode, values []*wbNode, vmask, i int) {
	for k := 0; k < wbBlock; k, i = k+1, i+1 {
		h := holders[i&(wbHolders-1)]
		v := values[(i*7)&vmask]
		h.next = uintptr(unsafe.Pointer(v))
	}
}

//go:noinline
func storeBlockBarrier(holders *[wbHolders]*wbNode, values []*wbNode, vmask, i int) {
	for k := 0; k < wbBlock; k, i = k+1, i+1 {
		h := holders[i&(wbHolders-1)]
		v := values[(i*7)&vmask]
		h.next = v
	}
}

func writeBarrier(o options) {
	defHeapMB, defCycles, defBlocks := int64(512), int64(3), int64(100000)
	if o.quick() {
		defHeapMB, defCycles, defBlocks = 128, 2, 20000
	}
	heapMB := o.num("heap-mb", defHeapMB)
	nvalues := int(o.num("values", 4096))
	cycles := int(o.num("cycles", defCycles))
	offBlocks := o.num("blocks", defBlocks)
	if nvalues < 1 || nvalues&(nvalues-1) != 0 {
		die("--values must be a power of two")
	}
	runtime.LockOSThread() // the thread CPU clock then measures this goroutine
	defer runtime.UnlockOSThread()
	debug.SetGCPercent(-1)

	// The heap: n nodes in a table, each linked to a random other.
	n := uint64(heapMB) << 20 / (uint64(unsafe.Sizeof(wbNode{})) + 8)
	table := make([]*wbNode, n)
	for i := range table {
		table[i] = &wbNode{}
	}
	r := rng{7}
	for i := range table {
		table[i].other = table[r.below(n)]
	}
	holders := new([wbHolders]*wbNode)
	for i := range holders { // fresh and contiguous: cache-resident targets
		holders[i] = &wbNode{next: table[r.below(n)]}
	}
	plainHolders := new([wbHolders]*wbPlainNode)
	for i := range plainHolders {
		plainHolders[i] = &wbPlainNode{}
	}
	values := make([]*wbNode, nvalues)
	for i := range values {
		values[i] = table[r.below(n)]
	}
	runtime.GC() // start from a finished cycle: the barrier is off
	vmask := nvalues - 1

	// Thread CPU ns per store over `blocks` blocks.
	timed := func(block func(i int), blocks int64) float64 {
		t0 := threadCPUNs()
		for b := int64(0); b < blocks; b++ {
			block(int(b) * wbBlock)
		}
		return float64(threadCPUNs()-t0) / float64(blocks*wbBlock)
	}
	// Plain and off alternate in five rounds; the best round of each is kept (noise only
	// ever adds time).
	plain, off := 1e9, 1e9
	for round := 0; round < 5; round++ {
		p := timed(func(i int) { storeBlockPlain(plainHolders, values, vmask, i) }, offBlocks/5)
		if marking() {
			die("a cycle started during the plain loop")
		}
		b := timed(func(i int) { storeBlockBarrier(holders, values, vmask, i) }, offBlocks/5)
		if marking() {
			die("a cycle started during the barrier-off loop")
		}
		if p < plain {
			plain = p
		}
		if b < off {
			off = b
		}
	}

	// Barrier on: one runtime.GC per cycle in another goroutine, measured while marking.
	var onNs, onStores int64
	var onWall time.Duration
	for c := 0; c < cycles; c++ {
		done := make(chan struct{})
		gcInFlight.Store(true)
		go func() {
			runtime.GC()
			gcInFlight.Store(false)
			close(done)
		}()
		for !marking() {
			select {
			case <-done:
				die("the cycle ended before its mark phase was seen (--heap-mb too small?)")
			default:
				runtime.Gosched()
			}
		}
		w0 := time.Now()
		for i := 0; ; i += wbBlock {
			before := marking()
			t0 := threadCPUNs()
			storeBlockBarrier(holders, values, vmask, i)
			t1 := threadCPUNs()
			after := marking()
			if before && after {
				onNs += t1 - t0
				onStores += wbBlock
			}
			if !after {
				break
			}
		}
		onWall += time.Since(w0)
		<-done
	}
	on := 0.0
	if onStores > 0 {
		on = float64(onNs) / float64(onStores)
	}
	runtime.KeepAlive(table)
	exact := 0
	if markFlagExact {
		exact = 1
	}

	stores := float64(offBlocks * wbBlock)
	report("wb/plain", time.Duration(plain*stores), fmt.Sprintf("ns_per_store=%.4g", plain))
	report("wb/off", time.Duration(off*stores),
		fmt.Sprintf("ns_per_store=%.4g over_plain_ns=%.4g", off, off-plain))
	report("wb/on", onWall, fmt.Sprintf("ns_per_store=%.4g over_off_ns=%.4g stores=%d mark_wall_s=%.4g exact_flag=%d",
		on, on-off, onStores, onWall.Seconds(), exact))
}
