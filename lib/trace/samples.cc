// The sampled objects still in the heap: see samples.h.
#include "trace/samples.h"

#include <map>
#include <mutex>

#include "alloc/mspan.h"

namespace tricolor::internal {

namespace {
std::mutex g_mu;
// Ordered by address, so the records of one span are one range of the map.
std::map<uintptr_t, SampleRecord>& g_live = *new std::map<uintptr_t, SampleRecord>;  // g_mu; leaked: swept at exit
uint64_t g_next_id = 1;  // g_mu
}  // namespace

SampleRecord samples_remember(mspan* s, uintptr_t p, const char* type, uint64_t size,
                              uint64_t weight) {
  std::lock_guard<std::mutex> g(g_mu);
  SampleRecord r{g_next_id++, p, type, size, weight};
  // A record can be left at this address only if the table was cleared meanwhile (the
  // sweep forgets each dead object): replace it without counting it twice.
  if (g_live.insert_or_assign(p, r).second) s->nsampled++;
  return r;
}

void samples_take_dead(mspan* s, std::vector<SampleRecord>* dead) {
  std::lock_guard<std::mutex> g(g_mu);
  uint32_t left = 0;
  for (auto it = g_live.lower_bound(s->start); it != g_live.end() && it->first < s->limit;) {
    uint32_t idx = s->object_index(it->first);
    if (s->mark_bit(idx)) {
      left++;
      ++it;
      continue;
    }
    dead->push_back(it->second);
    it = g_live.erase(it);
  }
  s->nsampled = left;
}

void samples_clear() {
  std::lock_guard<std::mutex> g(g_mu);
  g_live.clear();
}

}  // namespace tricolor::internal
