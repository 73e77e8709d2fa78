// blocking_region and thread_attachment: the RAII guards over gc.h's thread API.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "support.h"
#include "tricolor/gc.hpp"

using namespace tricolor::cpptest;
using tricolor::member;


TEST_CASE("a thread attached by a thread_attachment allocates and is counted as a stack",
          "[cpp][guards]") {
  ensure_heap();
  gc_stats before;
  gc_read_stats(&before);
  std::atomic<uint64_t> during{0};
  std::atomic<bool> ok{false};
  std::thread th([&] {
    tricolor::thread_attachment attach;
    ok = attach.ok();
    gc_stats s;
    gc_read_stats(&s);
    during = s.stacks;
    ListNode* n = tricolor::make<ListNode>();
    n->next = tricolor::make<ListNode>();
    REQUIRE(gc_base(n->next.get()) == n->next.get());
  });
  {
    tricolor::blocking_region wait;
    th.join();
  }
  gc_stats after;
  gc_read_stats(&after);
  REQUIRE(ok);
  REQUIRE(during == before.stacks + 1);
  REQUIRE(after.stacks == before.stacks);  // detached when the guard went out of scope
}

TEST_CASE("a thread waiting in a blocking_region does not hold up a collection",
          "[cpp][guards]") {
  ensure_heap();
  // The main thread waits on a condition variable inside a blocking_region while another
  // attached thread runs full collections, which stop the world: they complete because the
  // waiting thread counts as stopped. The second region nests inside the first.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  gc_stats before;
  gc_read_stats(&before);
  std::thread th([&] {
    tricolor::thread_attachment attach;
    for (int i = 0; i < 3; i++) gc_collect();
    {
      tricolor::blocking_region lock_wait;
      std::lock_guard<std::mutex> g(mu);
      done = true;
    }
    cv.notify_all();
  });
  {
    tricolor::blocking_region outer;
    tricolor::blocking_region inner;
    std::unique_lock<std::mutex> g(mu);
    cv.wait(g, [&] { return done; });
  }
  {
    tricolor::blocking_region wait;
    th.join();
  }
  gc_stats after;
  gc_read_stats(&after);
  REQUIRE(after.num_gc >= before.num_gc + 3);
  ListNode* n = tricolor::make<ListNode>();  // the main thread runs heap code again after the regions
  REQUIRE(gc_base(n) == n);
}

TEST_CASE("a thread_attachment on an attached thread leaves it attached, and guards nest",
          "[cpp][guards]") {
  ensure_heap();  // gc_init attached this thread
  REQUIRE(gc_thread_is_attached() == 1);
  {
    tricolor::thread_attachment again;
    REQUIRE(again.ok());
  }
  bool still_attached = gc_thread_is_attached() == 1;
  if (!still_attached) gc_thread_attach();  // so that the cases after this one still run
  CHECK(still_attached);
  ListNode* n = tricolor::make<ListNode>();
  REQUIRE(gc_base(n) == n);

  // On a thread of its own: the inner guard ends, the outer one still holds the attachment.
  bool inner_ok = false, attached_after_inner = false, allocated = false,
       attached_after_outer = true;
  std::thread th([&] {
    {
      tricolor::thread_attachment outer;
      {
        tricolor::thread_attachment inner;
        inner_ok = inner.ok();
      }
      attached_after_inner = gc_thread_is_attached() == 1;
      if (attached_after_inner) {
        ListNode* m = tricolor::make<ListNode>();
        allocated = gc_base(m) == m;
      }
    }
    attached_after_outer = gc_thread_is_attached() == 1;
  });
  {
    tricolor::blocking_region wait;
    th.join();
  }
  REQUIRE(inner_ok);
  REQUIRE(attached_after_inner);
  REQUIRE(allocated);
  REQUIRE(!attached_after_outer);  // the outer guard detached what it attached
}
