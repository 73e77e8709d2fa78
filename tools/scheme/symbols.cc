// The symbol table: every symbol is interned, so symbols compare by address.
//
// The table is itself a heap object (a SymbolTable with an array of hash chains) reachable
// from one root; it never drops a symbol, so the static Symbol* of the evaluator need no
// roots of their own. Fibers may intern concurrently (string->symbol): a mutex guards the
// table, and nothing that can reach a safepoint (an allocation) runs while it is held,
// because a fiber may move to another thread at a safepoint and a std::mutex must be
// unlocked by the thread that locked it. Waiting for the mutex happens in a blocking region
// so that a stop of the world never waits for a thread stuck on it.
#include <mutex>

#include "interp.h"

namespace scheme {
namespace {

heap::root<SymbolTable> g_table;
std::mutex g_table_mu;

uint64_t hash(std::string_view s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

void lock() {
  heap::blocking_region wait;
  g_table_mu.lock();
}

Symbol* find_locked(std::string_view name, uint64_t h) {
  for (Symbol* s = g_table->buckets[h % g_table->nbuckets]; s; s = s->next)
    if (s->name->view() == name) return s;
  return nullptr;
}

void insert_locked(Symbol* s, uint64_t h) {
  ref<Symbol>& head = g_table->buckets[h % g_table->nbuckets];
  s->next = head;
  head = s;
  g_table->count++;
}

// Rehashes into `fresh` (allocated by the caller before it took the lock).
void grow_locked(ref<Symbol>* fresh, uint64_t n) {
  SymbolTable* t = g_table;
  for (uint64_t i = 0; i < t->nbuckets; i++) {
    for (Symbol* s = t->buckets[i]; s;) {
      Symbol* next = s->next;
      ref<Symbol>& head = fresh[hash(s->name->view()) % n];
      s->next = head;
      head = s;
      s = next;
    }
  }
  t->buckets = fresh;
  t->nbuckets = n;
}

}  // namespace

void init_symbols() {
  SymbolTable* t = heap::make<SymbolTable>();
  t->tag = Tag::kTable;
  t->nbuckets = 256;
  t->buckets = heap::make_refs<Symbol>(t->nbuckets);
  g_table = t;
}

Symbol* intern(std::string_view name) {
  uint64_t h = hash(name);
  lock();
  Symbol* s = find_locked(name, h);
  g_table_mu.unlock();
  if (s) return s;
  Symbol* fresh = heap::make<Symbol>(make_string(name));  // allocates: outside the lock
  lock();
  s = find_locked(name, h);  // another fiber may have interned it meanwhile
  if (!s) {
    insert_locked(fresh, h);
    s = fresh;
  }
  uint64_t n = g_table->count > 2 * g_table->nbuckets ? 4 * g_table->nbuckets : 0;
  g_table_mu.unlock();
  if (n) {
    ref<Symbol>* buckets = heap::make_refs<Symbol>(n);
    lock();
    if (g_table->nbuckets < n) grow_locked(buckets, n);
    g_table_mu.unlock();
  }
  return s;
}

}  // namespace scheme
