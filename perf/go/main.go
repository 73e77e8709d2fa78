// gobench: the Go runtime as the design's reference, running the same benchmark shapes as
// the C++ programs in perf/ (alloc, gcbench, binary_trees, churn, write_barrier) and
// printing the same RESULT lines. GOMAXPROCS is set by the caller (compare.py sets it to tricolor's procs).
// fibers, the peer of perf/fibers.cc, sets GOMAXPROCS itself and prints that program's
// `name value unit` lines instead (see fibers.go).
//
//	gobench alloc|gcbench|binary_trees|churn|write_barrier|fibers [--quick] [--key=value ...]
//
// Pauses: runtime.MemStats.PauseNs holds the per-cycle pause (the sum of a cycle's
// stop-the-world pauses) of the last 256 cycles: p99_pause_us and max_pause_us come from
// it; hist_max_pause_us is the upper bound of the highest non-empty bucket of the
// runtime/metrics histogram of every single pause since start. gc_cpu is GCCPUFraction.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

type options map[string]string

func parseOptions(args []string) options {
	o := options{}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			die("unexpected argument %q (options are --key=value)", a)
		}
		kv := strings.SplitN(a[2:], "=", 2)
		if len(kv) == 1 {
			o[kv[0]] = "1"
		} else {
			o[kv[0]] = kv[1]
		}
	}
	return o
}

func (o options) quick() bool { _, ok := o["quick"]; return ok }

func (o options) num(key string, def int64) int64 {
	s, ok := o[key]
	if !ok || s == "" {
		return def
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		die("--%s=%s is not a number", key, s)
	}
	return v
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(2)
}

// peakRSSKB is VmHWM from /proc/self/status, as in perf/harness.h (getrusage's Maxrss is
// carried over fork and exec from the parent process); Maxrss where /proc is missing.
func peakRSSKB() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
						return v
					}
				}
			}
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss
}

// cpuSeconds is the CPU time of the whole process (every thread, the collector's included).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// clockThreadCPUTimeID is Linux's CLOCK_THREAD_CPUTIME_ID, which package syscall does not name.
const clockThreadCPUTimeID = 3

// threadCPUNs is the CPU time of the calling OS thread, as perf/harness.h's thread_cpu_ns.
// It measures a goroutine only while that goroutine is locked to its thread
// (runtime.LockOSThread). A raw system call: it does not block, and the scheduler need not
// know of it.
func threadCPUNs() int64 {
	var ts syscall.Timespec
	_, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID,
		uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		die("clock_gettime(CLOCK_THREAD_CPUTIME_ID): %v", errno)
	}
	return ts.Nano()
}

func histMaxPauseUs() float64 {
	s := []metrics.Sample{{Name: "/gc/pauses:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := s[0].Value.Float64Histogram()
	for i := len(h.Counts) - 1; i >= 0; i-- {
		if h.Counts[i] > 0 {
			return h.Buckets[i+1] * 1e6
		}
	}
	return 0
}

// report prints one RESULT line; extra is appended verbatim.
func report(name string, wall time.Duration, extra string) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := int(ms.NumGC)
	if n > 256 {
		n = 256
	}
	ring := make([]uint64, 0, n)
	for i := 0; i < n; i++ {
		ring = append(ring, ms.PauseNs[(int(ms.NumGC)-1-i+256)%256])
	}
	sort.Slice(ring, func(a, b int) bool { return ring[a] < ring[b] })
	var max, p99 float64
	if n > 0 {
		max = float64(ring[n-1]) / 1e3
		idx := int(0.99*float64(n-1) + 0.5)
		p99 = float64(ring[idx]) / 1e3
	}
	line := fmt.Sprintf("RESULT name=%s impl=go time_s=%.4f cpu_s=%.3f peak_rss_kb=%d gc_cycles=%d "+
		"max_pause_us=%.1f p99_pause_us=%.1f pause_total_ms=%.2f gc_cpu=%.4f hist_max_pause_us=%.1f",
		name, wall.Seconds(), cpuSeconds(), peakRSSKB(), ms.NumGC, max, p99,
		float64(ms.PauseTotalNs)/1e6, ms.GCCPUFraction, histMaxPauseUs())
	if extra != "" {
		line += " " + extra
	}
	fmt.Println(line)
}

// rng is xorshift64*, as in perf/harness.h.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s ^= r.s >> 12
	r.s ^= r.s << 25
	r.s ^= r.s >> 27
	return r.s * 2685821657736338717
}
func (r *rng) below(n uint64) uint64 { return r.next() % n }

func main() {
	if len(os.Args) < 2 {
		die("usage: gobench alloc|gcbench|binary_trees|churn|write_barrier|fibers [--key=value ...]")
	}
	o := parseOptions(os.Args[2:])
	if impl, ok := o["impl"]; ok && impl != "go" {
		die("--impl=%s: gobench runs the Go runtime only", impl)
	}
	switch os.Args[1] {
	case "gcbench":
		gcbench(o)
	case "binary_trees":
		binaryTrees(o)
	case "churn":
		churn(o)
	case "fibers":
		fibers(o)
	case "alloc":
		alloc(o)
	case "write_barrier":
		writeBarrier(o)
	default:
		die("unknown benchmark %q", os.Args[1])
	}
}
