// gcbench: Boehm's GCBench, the shape of perf/gcbench.cc (see there for what it stresses).
package main

import (
	"fmt"
	"time"
)

type gcNode struct {
	left, right *gcNode
	i, j        int32
}

func treeSize(depth int) int64 { return (int64(1) << (depth + 1)) - 1 }

func populate(depth int, n *gcNode) {
	if depth <= 0 {
		return
	}
	depth--
	n.left = &gcNode{}
	n.right = &gcNode{}
	populate(depth, n.left)
	populate(depth, n.right)
}

func makeTree(depth int) *gcNode {
	if depth <= 0 {
		return &gcNode{}
	}
	l := makeTree(depth - 1)
	r := makeTree(depth - 1)
	return &gcNode{left: l, right: r}
}

func countNodes(n *gcNode) int64 {
	if n == nil {
		return 0
	}
	return 1 + countNodes(n.left) + countNodes(n.right)
}

var sinkNode *gcNode

func gcbench(o options) {
	q := o.quick()
	def := func(full, quick int64) int64 {
		if q {
			return quick
		}
		return full
	}
	stretch := int(o.num("stretch", def(18, 16)))
	longLivedDepth := int(o.num("long-lived", def(16, 14)))
	arraySize := int(o.num("array", 500000))
	minDepth := int(o.num("min-depth", 4))
	maxDepth := int(o.num("max-depth", def(16, 14)))

	t0 := time.Now()
	sinkNode = makeTree(stretch)
	sinkNode = nil

	longLived := &gcNode{}
	populate(longLivedDepth, longLived)
	array := make([]float64, arraySize)
	for i := 0; i < arraySize/2; i++ {
		array[i] = 1.0 / float64(i)
	}
	var nodes int64
	for d := minDepth; d <= maxDepth; d += 2 {
		iters := 2 * treeSize(stretch) / treeSize(d)
		for i := int64(0); i < iters; i++ {
			t := &gcNode{}
			populate(d, t)
			sinkNode = t
			nodes += treeSize(d)
		}
		for i := int64(0); i < iters; i++ {
			sinkNode = makeTree(d)
			nodes += treeSize(d)
		}
	}
	sinkNode = nil
	if countNodes(longLived) != treeSize(longLivedDepth) || array[1000] != 1.0/1000 {
		die("gcbench: the long-lived data did not survive")
	}
	wall := time.Since(t0)
	report(fmt.Sprintf("gcbench/%d-%d", stretch, longLivedDepth), wall, fmt.Sprintf("nodes=%d", nodes))
}
