// The hybrid write barrier's slow path (INV-BARRIER-1):
//
//   gc_write_ptr(slot, v):  shade(*slot); shade(v); *slot = v     while marking
//
// Go's Yuasa-deletion + Dijkstra-insertion barrier (proposal 17503), in the unconditional
// form Go ships: both the old and the new value are shaded, whatever the colour of the
// current stack. Shading goes through a per-thread buffer (WbBuf) so the common barrier
// takes no lock and no atomic read-modify-write; a full buffer is flushed into the mark
// work queue; a value in the thread's last black allocation run is not queued (WbBuf::needs).
// The flag read by the inline fast path changes only with the world stopped,
// so a thread between two safepoints sees one value throughout a barrier.
#include <mutex>

#include "gc/collector.h"
#include "gc/mark.h"
#include "gc/stacks.h"
#include "gc/thread.h"
#include "tricolor/gc.h"
#include "trace/log.h"

extern "C" {
TRICOLOR_API uint32_t tricolor_barrier_on = 0;
}

namespace tricolor::internal {

[[gnu::noinline]] void flush_wbuf(ThreadState* t) {
  if (t->wbuf.n == 0) return;
  mark_state().busy.fetch_add(1, std::memory_order_seq_cst);
  GcWork w;
  grey_pointers(t->wbuf.buf, size_t(t->wbuf.n), w);
  t->wbuf.n = 0;
  w.dispose();
  mark_state().busy.fetch_sub(1, std::memory_order_seq_cst);
}

void shade_if_marking(const void* p) {
  if (!__atomic_load_n(&tricolor_barrier_on, __ATOMIC_RELAXED) || !p) return;
  ThreadState* t = current_thread();
  if (t && !t->in_user_region()) {
    if (t->wbuf.n == WbBuf::kEntries) flush_wbuf(t);
    t->wbuf.buf[t->wbuf.n++] = reinterpret_cast<uintptr_t>(p);
    return;
  }
  mark_state().busy.fetch_add(1, std::memory_order_seq_cst);
  GcWork w;
  grey_pointer(reinterpret_cast<uintptr_t>(p), w);
  w.dispose();
  mark_state().busy.fetch_sub(1, std::memory_order_seq_cst);
}

}  // namespace tricolor::internal

using namespace tricolor::internal;

namespace {

// Queues what the barrier owes a shade: the old and the new value, unless null or black.
inline void record(ThreadState* t, void* old, void* value) {
  WbBuf& b = t->wbuf;
  uintptr_t lo = t->cache.black_lo, hi = t->cache.black_hi;
  if (WbBuf::needs(reinterpret_cast<uintptr_t>(old), lo, hi)) b.buf[b.n++] = reinterpret_cast<uintptr_t>(old);
  if (WbBuf::needs(reinterpret_cast<uintptr_t>(value), lo, hi)) b.buf[b.n++] = reinterpret_cast<uintptr_t>(value);
}

// The barrier's rare cases, out of line so that the common one needs no stack frame: a
// NULL slot, an unattached thread, a thread inside a blocking region of its own, a full
// buffer.
[[gnu::noinline]] void write_ptr_rare(void* slot, void* value) {
  if (__builtin_expect(slot == nullptr, 0)) {
    // The value is dropped, not lost: the caller still holds it (it is an argument).
    log_error("gc_write_ptr(NULL, %p): no slot to store into; the store is dropped", value);
    return;
  }
  void** s = static_cast<void**>(slot);
  // Relaxed: the slot's old value; this thread's own earlier stores are seen in order.
  void* old = __atomic_load_n(s, __ATOMIC_RELAXED);
  ThreadState* t = current_thread();
  if (!t) {
    static std::once_flag once;
    std::call_once(once, [] {
      log_error("gc_write_ptr from a thread that is not attached (call gc_thread_attach)");
    });
    shade_if_marking(old);
    shade_if_marking(value);
  } else if (t->in_user_region()) {
    // The collector counts the thread as stopped and may be flushing its buffer: the
    // values are shaded directly, as for an unattached thread.
    static std::once_flag once;
    std::call_once(once, [] {
      log_error("gc_write_ptr inside gc_blocking_begin/end (a blocking region touches no "
                "heap pointer); stored, and shaded directly");
    });
    shade_if_marking(old);
    shade_if_marking(value);
  } else {
    if (t->wbuf.n + 2 > WbBuf::kEntries) flush_wbuf(t);
    record(t, old, value);
  }
  __atomic_store_n(s, value, __ATOMIC_RELAXED);  // see gc_write_ptr in gc.h
}

}  // namespace

extern "C" void tricolor_write_ptr_slow(void* slot, void* value) {
  ThreadState* t = current_thread();
  // No cache: not attached, or inside a blocking region of its own (or a stress build).
  if (__builtin_expect(slot == nullptr || tricolor_tls_cache == nullptr ||
                       t->wbuf.n + 2 > WbBuf::kEntries, 0))
    return write_ptr_rare(slot, value);  // a tail call
  void** s = static_cast<void**>(slot);
  // Relaxed: the slot's old value; this thread's own earlier stores are seen in order.
  void* old = __atomic_load_n(s, __ATOMIC_RELAXED);
  record(t, old, value);
  __atomic_store_n(s, value, __ATOMIC_RELAXED);  // see gc_write_ptr in gc.h
}
