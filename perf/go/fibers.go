// fibers: what goroutines cost, the Go peer of perf/fibers.cc (see there for what it
// stresses). The same figures, taken the same way, on the same counts:
//
//   - goroutine_yield_switch: two goroutines each call runtime.Gosched n times on
//     GOMAXPROCS=1; the time from before the first spawn until both are joined, over 2n
//     switches (fiber_yield_switch: gc_yield between two fibers on one P).
//   - goroutine_spawn_join, goroutine_spawn_join_batch1000: `go` of an empty goroutine, its
//     run, and the join, one at a time and in batches of 1000, on GOMAXPROCS=1 (ns per
//     goroutine). The join is a sync.WaitGroup: Add(batch) before the spawns, Wait after
//     them; the goroutine's body is the Done call. tricolor joins each fiber (gc_join).
//   - binary_trees_goroutines_1p, binary_trees_goroutines_2p: binary-trees with the work
//     split of perf/fibers.cc (16 chunks per depth, one goroutine per chunk, all spawned,
//     then all joined through a WaitGroup) on GOMAXPROCS=1 and 2, and the speed-up
//     binary_trees_goroutines_speedup_2p = 1p / 2p.
//
// Micro-benchmarks are the median of 3 runs (--quick) or 5; binary-trees the median of 1
// (--quick) or 3. perf/fibers.cc runs each configuration in a fresh process; here one
// process sets GOMAXPROCS itself for each and collects (runtime.GC) before each, so that
// the garbage of one does not pace the next. The GOMAXPROCS of the environment is ignored.
//
//	gobench fibers [--depth=N] [--quick]     (binary-trees depth, default 18, at least 6)
//
// Output: one `name value unit` line per figure, as perf/fibers.cc prints.
package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"
)

func printFigure(name string, value float64, unit string) {
	fmt.Printf("%s %.6g %s\n", name, value, unit)
}

// median is the median of reps runs of f, which returns a figure.
func median(reps int, f func() float64) float64 {
	v := make([]float64, 0, reps)
	for i := 0; i < reps; i++ {
		v = append(v, f())
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

// ---- Switch ------------------------------------------------------------------------------

func goroutineYieldNs(quick bool) float64 {
	n := 2000000
	if quick {
		n = 200000
	}
	var wg sync.WaitGroup
	yielder := func() {
		for i := 0; i < n; i++ {
			runtime.Gosched()
		}
		wg.Done()
	}
	t0 := time.Now()
	wg.Add(2)
	go yielder()
	go yielder()
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(2*n) // two switches per round trip
}

// ---- Spawn + run + join ----------------------------------------------------------------

// spawnWG joins the empty goroutines: a package variable, so that `go emptyGoroutine()`
// needs no closure (an empty fiber gets a null argument).
var spawnWG sync.WaitGroup

func emptyGoroutine() { spawnWG.Done() }

func goroutineSpawnNs(batch int, quick bool) float64 {
	n := 1000000
	if quick {
		n = 100000
	}
	t0 := time.Now()
	for done := 0; done < n; done += batch {
		spawnWG.Add(batch)
		for i := 0; i < batch; i++ {
			go emptyGoroutine()
		}
		spawnWG.Wait()
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

// ---- binary-trees --------------------------------------------------------------------------

// btChunk is one unit of work: iters trees of depth d (btMake and check: binary_trees.go).
type btChunk struct {
	d     int
	iters int64
	sum   int64
}

func btChunks(maxDepth int) []btChunk {
	var cs []btChunk
	for d := 4; d <= maxDepth; d += 2 {
		iters := int64(1) << (maxDepth - d + 4)
		per := iters / 16 // 16 chunks per depth
		if per < 1 {
			per = 1
		}
		for done := int64(0); done < iters; done += per {
			n := per
			if iters-done < n {
				n = iters - done
			}
			cs = append(cs, btChunk{d: d, iters: n})
		}
	}
	return cs
}

func (c *btChunk) run(wg *sync.WaitGroup) {
	var s int64
	for i := int64(0); i < c.iters; i++ {
		s += btMake(c.d).check()
	}
	c.sum = s
	wg.Done()
}

// binaryTreesGoroutines runs the program's own shape: a stretch tree, a long-lived tree,
// then every chunk in its own goroutine. It returns the seconds taken and the checksum.
func binaryTreesGoroutines(depth int) (float64, int64) {
	cs := btChunks(depth)
	t0 := time.Now()
	btMake(depth + 1).check()
	longLived := btMake(depth)
	var wg sync.WaitGroup
	wg.Add(len(cs))
	for i := range cs {
		go cs[i].run(&wg)
	}
	wg.Wait()
	cs[0].sum += longLived.check() - longLived.check() // keeps the long-lived tree to the end
	wall := time.Since(t0).Seconds()
	var total int64
	for _, c := range cs {
		total += c.sum
	}
	return wall, total
}

// ---- Configurations --------------------------------------------------------------------------

func fibers(o options) {
	depth := int(o.num("depth", 18))
	if depth < 6 {
		depth = 6
	}
	quick := o.quick()
	reps, breps := 5, 3
	if quick {
		reps, breps = 3, 1
	}
	printFigure("binary_trees_goroutines_depth", float64(depth), "levels")

	// One P.
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	runtime.GC()
	printFigure("goroutine_yield_switch", median(reps, func() float64 { return goroutineYieldNs(quick) }), "ns")
	printFigure("goroutine_spawn_join", median(reps, func() float64 { return goroutineSpawnNs(1, quick) }), "ns")
	printFigure("goroutine_spawn_join_batch1000",
		median(reps, func() float64 { return goroutineSpawnNs(1000, quick) }), "ns")
	var sum1 int64
	t1 := median(breps, func() float64 { t, s := binaryTreesGoroutines(depth); sum1 = s; return t })
	printFigure("binary_trees_goroutines_1p", t1, "s")
	printFigure("binary_trees_goroutines_checksum", float64(sum1), "nodes")

	// Two P's.
	runtime.GOMAXPROCS(2)
	runtime.GC()
	var sum2 int64
	t2 := median(breps, func() float64 { t, s := binaryTreesGoroutines(depth); sum2 = s; return t })
	printFigure("binary_trees_goroutines_2p", t2, "s")
	printFigure("binary_trees_goroutines_speedup_2p", t1/t2, "x")
	if sum1 != sum2 {
		die("binary-trees checksums differ: %d %d", sum1, sum2)
	}
}
