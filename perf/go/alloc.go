// alloc: what one allocation costs in the Go runtime, with no collection in the measured
// window; the shape of perf/alloc.cc (see there for what it stresses and how the figures are
// taken).
//
// For each size, kind and thread count, every goroutine allocates a batch of objects in a
// timed window; the batch is dropped and collected (runtime.GC) outside it. Automatic
// collection is off (debug.SetGCPercent(-1)), as tricolor's gc_percent = -1 and bdwgc's
// GC_disable(). One warm-up round, then --rounds timed rounds; the same figures as alloc.cc:
// ns_per_obj (thread CPU time in the windows per object of a thread) and wall_ns_per_obj.
//
// What the objects are, and how far the shape can follow the C++ program:
//
//   - scan: an array of size/8 pointers (every word a pointer, as tricolor's word type);
//     noscan: an array of size/8 uint64. For 8, 16, 64, 256, 4096 B and 100 KiB the type is
//     a fixed-size array, so each allocation is one runtime.newobject call, as `new(T)` in a
//     Go program; any other size is a slice (runtime.makeslice), slightly dearer. A noscan
//     object under 16 B goes to Go's tiny allocator, as in tricolor; 100 KiB is a large
//     object (straight from the mheap) in both. Go clears every object, as tricolor does.
//
//   - The object's address is stored into the batch, a slice that lives across the window,
//     so the allocation escapes and cannot be elided. The batch is on the Go heap, so that
//     store runs Go's write-barrier check (off: a load and a branch); alloc.cc stores into a
//     std::vector with a plain store.
//
//   - Go has no per-goroutine CPU clock. Each allocating goroutine is locked to its OS
//     thread (runtime.LockOSThread) and reads CLOCK_THREAD_CPUTIME_ID, which then counts
//     that goroutine alone: a locked goroutine's thread runs nothing else.
//
//   - Threads are goroutines (GOMAXPROCS is the caller's: compare.py sets it to tricolor's
//     procs), meeting at a reusable barrier between the phases of a round.
//
// Options as alloc.cc's:
//
//	gobench alloc [--threads=1] [--sizes=8,16,...] [--rounds=N] [--batch-mb=N] [--quick]
package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// fillFn allocates one object per entry of batch.
type fillFn func(batch []unsafe.Pointer)

// fillNew: one new(T) per entry. A type parameter per size keeps the loop free of any
// size computation: T is a fixed-size array, its type known to the allocation call.
func fillNew[T any](batch []unsafe.Pointer) {
	for i := range batch {
		batch[i] = unsafe.Pointer(new(T))
	}
}

// allocFns gives the scan and noscan allocation loops for size.
func allocFns(size int) (scan, noscan fillFn) {
	switch size {
	case 8:
		return fillNew[[1]unsafe.Pointer], fillNew[[1]uint64]
	case 16:
		return fillNew[[2]unsafe.Pointer], fillNew[[2]uint64]
	case 64:
		return fillNew[[8]unsafe.Pointer], fillNew[[8]uint64]
	case 256:
		return fillNew[[32]unsafe.Pointer], fillNew[[32]uint64]
	case 4096:
		return fillNew[[512]unsafe.Pointer], fillNew[[512]uint64]
	case 102400:
		return fillNew[[12800]unsafe.Pointer], fillNew[[12800]uint64]
	}
	words := (size + 7) / 8
	scan = func(batch []unsafe.Pointer) {
		for i := range batch {
			batch[i] = unsafe.Pointer(&make([]unsafe.Pointer, words)[0])
		}
	}
	noscan = func(batch []unsafe.Pointer) {
		for i := range batch {
			batch[i] = unsafe.Pointer(&make([]byte, size)[0])
		}
	}
	return scan, noscan
}

// cyclicBarrier: n goroutines wait until all have arrived; reusable (std::barrier's
// arrive_and_wait).
type cyclicBarrier struct {
	mu      sync.Mutex // guards waiting and phase
	cond    *sync.Cond
	n       int
	waiting int
	phase   uint64
}

func newCyclicBarrier(n int) *cyclicBarrier {
	b := &cyclicBarrier{n: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *cyclicBarrier) wait() {
	b.mu.Lock()
	phase := b.phase
	b.waiting++
	if b.waiting == b.n {
		b.waiting = 0
		b.phase++
		b.cond.Broadcast()
	} else {
		for phase == b.phase {
			b.cond.Wait()
		}
	}
	b.mu.Unlock()
}

type allocConfig struct {
	size       int
	scan       bool
	threads    int
	rounds     int
	batchBytes int
}

// allocRun returns the CPU ns per object of a thread and the elapsed ns per object of one
// thread, over the timed rounds.
func allocRun(c allocConfig) (cpuNsPerObj, wallNsPerObj float64) {
	perThread := c.batchBytes / c.size
	if perThread < 256 {
		perThread = 256
	}
	if perThread > 1<<20 {
		perThread = 1 << 20
	}
	scanFn, noscanFn := allocFns(c.size)
	fill := noscanFn
	if c.scan {
		fill = scanFn
	}
	batches := make([][]unsafe.Pointer, c.threads)
	for t := range batches {
		batches[t] = make([]unsafe.Pointer, perThread)
	}
	meet := newCyclicBarrier(c.threads)
	var mu sync.Mutex // guards the two sums
	var timedNs, timedCPUNs int64

	body := func(tid int) {
		runtime.LockOSThread() // the thread CPU clock then measures this goroutine
		defer runtime.UnlockOSThread()
		batch := batches[tid]
		for round := 0; round <= c.rounds; round++ {
			meet.wait()
			t0, c0 := time.Now(), threadCPUNs()
			fill(batch)
			c1 := threadCPUNs()
			if round > 0 { // round 0 warms up
				mu.Lock()
				timedCPUNs += c1 - c0
				mu.Unlock()
			}
			meet.wait()
			if tid == 0 && round > 0 {
				timedNs += int64(time.Since(t0))
			}
			for i, p := range batch {
				if p == nil {
					die("allocation of %d bytes failed", c.size)
				}
				batch[i] = nil // garbage for the collection below
			}
			meet.wait() // every batch is dropped
			if tid == 0 {
				runtime.GC() // collects and sweeps: the next window allocates from free spans
			}
			meet.wait()
		}
	}
	var wg sync.WaitGroup
	for t := 0; t < c.threads; t++ {
		wg.Add(1)
		go func(tid int) {
			defer wg.Done()
			body(tid)
		}(t)
	}
	wg.Wait()
	objects := float64(perThread * c.rounds)
	return float64(timedCPUNs) / float64(c.threads) / objects, float64(timedNs) / objects
}

func alloc(o options) {
	threads := int(o.num("threads", 1))
	defRounds, defBatchMB := int64(10), int64(32)
	if o.quick() {
		defRounds, defBatchMB = 3, 16
	}
	rounds := int(o.num("rounds", defRounds))
	batchMB := o.num("batch-mb", defBatchMB)
	if threads < 1 || rounds < 1 || batchMB < 1 {
		die("--threads, --rounds and --batch-mb must be at least 1")
	}
	var sizes []int
	spec, ok := o["sizes"]
	if !ok {
		spec = "8,16,64,256,4096,102400"
	}
	for _, f := range strings.Split(spec, ",") {
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			die("--sizes=%s: not a list of sizes in bytes", spec)
		}
		sizes = append(sizes, v)
	}
	debug.SetGCPercent(-1) // allocation only: collections happen between rounds, untimed

	for _, size := range sizes {
		for _, scan := range []bool{true, false} {
			c := allocConfig{size, scan, threads, rounds, int(batchMB) << 20}
			t0 := time.Now()
			cpu, wall := allocRun(c)
			kind := "noscan"
			if scan {
				kind = "scan"
			}
			report(fmt.Sprintf("alloc/%d/%s/t%d", size, kind, threads), time.Since(t0),
				fmt.Sprintf("ns_per_obj=%.4g wall_ns_per_obj=%.4g", cpu, wall))
		}
	}
}
