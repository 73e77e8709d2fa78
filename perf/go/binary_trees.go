// binary_trees: the Benchmarks Game's binary-trees, the shape of perf/binary_trees.cc
// (see there for what it stresses). --threads=N goroutines share each depth's trees.
package main

import (
	"fmt"
	"sync"
	"time"
)

type btNode struct{ left, right *btNode }

func btMake(d int) *btNode {
	if d <= 0 {
		return &btNode{}
	}
	l := btMake(d - 1)
	r := btMake(d - 1)
	return &btNode{left: l, right: r}
}

func (n *btNode) check() int64 {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

func binaryTrees(o options) {
	def := int64(21)
	if o.quick() {
		def = 18
	}
	maxDepth := int(o.num("depth", def))
	threads := int(o.num("threads", 1))
	const minDepth = 4

	t0 := time.Now()
	total := btMake(maxDepth + 1).check()
	longLived := btMake(maxDepth)
	sums := make([]int64, threads)
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func(tid int) {
			defer wg.Done()
			var sum int64
			for d := minDepth; d <= maxDepth; d += 2 {
				iters := int64(1) << (maxDepth - d + minDepth)
				for i := int64(tid); i < iters; i += int64(threads) {
					sum += btMake(d).check()
				}
			}
			sums[tid] = sum
		}(t)
	}
	wg.Wait()
	for _, s := range sums {
		total += s
	}
	total += longLived.check()
	wall := time.Since(t0)
	report(fmt.Sprintf("binary_trees/d%d/t%d", maxDepth, threads), wall, fmt.Sprintf("check=%d", total))
}
