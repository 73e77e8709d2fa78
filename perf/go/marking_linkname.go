//go:build !go1.23

// marking: whether the write barrier is on, read from the runtime's own flag. See
// write_barrier.go for why and marking_portable.go for toolchains that refuse the link.
package main

import (
	_ "unsafe" // go:linkname
)

// barrierEnabled is the first byte of the runtime's writeBarrier (mgc.go), its field
// `enabled`: set from the start of the mark phase until the end of mark termination, the
// analogue of tricolor_barrier_on. Compiled code reads that byte the same way before every
// heap pointer store. Declared as a bool, not as the runtime's struct, so that nothing here
// depends on the rest of its layout. Go 1.23 forbids such links into the runtime.
//
//go:linkname barrierEnabled runtime.writeBarrier
var barrierEnabled bool

// markFlagExact: marking() is the barrier flag itself, not an approximation.
const markFlagExact = true

// marking reports whether the write barrier is on (a mark phase is running).
func marking() bool { return barrierEnabled }
