//go:build go1.23

// marking without a link to the runtime's flag (see marking_linkname.go): the time during
// which the runtime.GC call that write_barrier.go makes is in flight. That window is wider
// than the mark phase: it also holds the start of the cycle before the barrier is turned on
// and the sweep that runtime.GC finishes before it returns. Blocks run then are counted
// as barrier-on blocks, so the figure is diluted by barrier-off stores.
package main

const markFlagExact = false

func marking() bool { return gcInFlight.Load() }
