// libFuzzer target: the public API driven by an operation stream, checked against a model.
//
// Input bytes are a program: each operation is one byte (the opcode) followed by its
// operands. Objects are held in 32 root slots (a registered root) and in a second, 8-slot
// area that the program registers and unregisters. Every object carries a tag (a unique
// number) at offset 0; the model (plain memory, ids only, never pointers) records each
// slot's tag and, for typed objects, the tags of their 4 pointer fields. After
// collections, thread hand-offs and at the end, every object reachable from the slots is
// compared with the model: a lost or reused object shows as a wrong tag.
//
//   op % 12:  0 alloc typed   1 alloc noscan (size)   2 alloc conservative (size)
//             3 store field (gc_write_ptr)   4 clear slot   5 gc_collect
//             6 gc_set_percent   7 a second thread attaches, allocates, stores, detaches
//             8 register/unregister the extra root area   9 check everything
//             10 absurd and zero sizes   11 gc_base/gc_size of interior pointers
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "tricolor/gc.h"

namespace {

constexpr int kSlots = 32;
constexpr int kExtra = 8;
constexpr int kFields = 4;

struct Obj {  // the typed object
  uint64_t tag;
  Obj* field[kFields];
};

enum Kind : uint8_t { kNone, kTyped, kNoscan, kConservative };

struct Model {        // what a slot should hold
  uint64_t tag = 0;
  Kind kind = kNone;
  uint32_t size = 0;
  uint64_t field_tag[kFields] = {};  // typed objects: tags of the field targets (0: NULL)
};

void* g_slots[kSlots + kExtra];  // [0, kSlots) always a root; the rest while registered
Model g_model[kSlots + kExtra];
bool g_extra_registered = false;
uint64_t g_next_tag = 1;
const gc_type* g_obj_type;

[[noreturn]] void die(const char* what, int slot, uint64_t expect, uint64_t found) {
  fprintf(stderr, "fuzz_api: %s: slot %d expected tag %llu, found %llu\n", what, slot,
          (unsigned long long)expect, (unsigned long long)found);
  abort();
}

void init_once() {
  static bool done = [] {
    gc_options o;
    gc_options_default(&o);
    o.gc_percent = 50;
    if (gc_init(&o) != 0) abort();
    size_t offs[kFields];
    for (int i = 0; i < kFields; i++) offs[i] = offsetof(Obj, field) + i * sizeof(void*);
    g_obj_type = gc_type_new("FuzzObj", sizeof(Obj), offs, kFields);
    gc_add_root(g_slots, kSlots * sizeof(void*));
    return true;
  }();
  (void)done;
}

uint8_t payload_byte(uint64_t tag, size_t i) { return uint8_t(tag * 131 + i * 7); }

void* make(Kind k, uint32_t size, Model* m) {
  uint64_t tag = g_next_tag++;
  void* p = nullptr;
  if (k == kTyped) {
    size = sizeof(Obj);
    p = gc_alloc(size, g_obj_type);
  } else if (k == kNoscan) {
    size = size < 8 ? 8 : size;
    p = gc_alloc_noscan(size);
  } else {
    size = size < 8 ? 8 : size;
    p = gc_alloc(size, nullptr);
  }
  if (!p) {
    fprintf(stderr, "fuzz_api: allocation of %u bytes failed\n", size);
    abort();
  }
  memcpy(p, &tag, 8);
  if (k != kTyped)
    for (size_t i = 8; i < size; i++) static_cast<uint8_t*>(p)[i] = payload_byte(tag, i);
  *m = Model{};
  m->tag = tag;
  m->kind = k;
  m->size = size;
  return p;
}

uint64_t tag_of(const void* p) {
  uint64_t t;
  memcpy(&t, p, 8);
  return t;
}

void check_slot(int i) {
  const Model& m = g_model[i];
  void* p = g_slots[i];
  if (m.kind == kNone) {
    if (p) die("a cleared slot holds an object", i, 0, tag_of(p));
    return;
  }
  // Noscan objects under 16 bytes share tiny blocks: their base is the block's.
  bool tiny = m.kind == kNoscan && m.size < 16;
  if (!p || (tiny ? gc_base(p) == nullptr : gc_base(p) != p)) {
    fprintf(stderr, "fuzz_api: slot %d holds %p, gc_base %p, gc_size %zu\n", i, p, gc_base(p), gc_size(p));
    die("an object is not allocated any more", i, m.tag, 0);
  }
  if (tag_of(p) != m.tag) die("wrong object", i, m.tag, tag_of(p));
  if (gc_size(p) < m.size) die("gc_size smaller than the allocation", i, m.size, gc_size(p));
  if (m.kind == kTyped) {
    Obj* o = static_cast<Obj*>(p);
    for (int f = 0; f < kFields; f++) {
      uint64_t want = m.field_tag[f];
      if (!want != !o->field[f]) die("field presence", i, want, o->field[f] ? tag_of(o->field[f]) : 0);
      if (want && tag_of(o->field[f]) != want) die("field target", i, want, tag_of(o->field[f]));
      if (want && !gc_base(o->field[f])) die("field target freed", i, want, 0);
    }
  } else {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    for (size_t k = 8; k < m.size; k += 1 + m.size / 64)
      if (b[k] != payload_byte(m.tag, k)) die("payload damaged", i, payload_byte(m.tag, k), b[k]);
  }
}

void check_all() {
  int n = kSlots + (g_extra_registered ? kExtra : 0);
  for (int i = 0; i < n; i++) check_slot(i);
}

struct Reader {
  const uint8_t* d;
  size_t n, i = 0;
  bool more() const { return i < n; }
  uint8_t u8() { return i < n ? d[i++] : 0; }
  uint32_t u16() {
    uint32_t lo = u8();  // two statements: the order of the reads is fixed
    return lo | uint32_t(u8()) << 8;
  }
};

int slot_index(Reader& r) {
  int n = kSlots + (g_extra_registered ? kExtra : 0);
  return r.u8() % n;
}

uint32_t alloc_size(Reader& r) {
  uint32_t s = r.u16();
  if (s & 0x8000) s = (s & 0x7fff) * 8;  // up to 256 KiB: large objects too
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  init_once();
  Reader r{data, size};
  int ops = 0;
  while (r.more() && ops++ < 2000) {
    uint8_t op = r.u8() % 12;
    switch (op) {
      case 0: {
        int i = slot_index(r);
        g_slots[i] = make(kTyped, 0, &g_model[i]);
        break;
      }
      case 1:
      case 2: {
        int i = slot_index(r);
        uint32_t s = alloc_size(r);
        g_slots[i] = make(op == 1 ? kNoscan : kConservative, s, &g_model[i]);
        break;
      }
      case 3: {  // slot i's field f = slot j's object
        int i = slot_index(r), j = slot_index(r), f = r.u8() % kFields;
        if (g_model[i].kind != kTyped) break;
        Obj* o = static_cast<Obj*>(g_slots[i]);
        gc_write_ptr(&o->field[f], g_slots[j]);
        g_model[i].field_tag[f] = g_model[j].tag;
        // A field keeps its target alive after the slot lets go; its model stays checkable
        // through the field only, so the slot's own model is what is compared.
        break;
      }
      case 4: {
        int i = slot_index(r);
        g_slots[i] = nullptr;
        g_model[i] = Model{};
        break;
      }
      case 5:
        gc_collect();
        check_all();
        break;
      case 6:
        gc_set_percent(int(r.u8()) - 20);  // negative: off
        break;
      case 7: {  // another thread allocates into slot i and links it to slot j
        int i = slot_index(r), j = slot_index(r);
        std::thread th([&] {
          if (gc_thread_attach() != 0) abort();
          void* target = g_slots[j];  // read before slot i's model changes (i may be j)
          uint64_t target_tag = g_model[j].tag;
          void* p = make(kTyped, 0, &g_model[i]);
          Obj* o = static_cast<Obj*>(p);
          gc_write_ptr(&o->field[0], target);
          g_model[i].field_tag[0] = target_tag;
          Model garbage;
          for (int k = 0; k < 50; k++) make(kNoscan, 64, &garbage);  // dies with the thread
          g_slots[i] = p;  // a root: plain store allowed
          gc_thread_detach();
        });
        gc_blocking_begin();
        th.join();
        gc_blocking_end();
        check_slot(i);
        break;
      }
      case 8:
        if (g_extra_registered) {
          gc_remove_root(g_slots + kSlots);
          for (int k = kSlots; k < kSlots + kExtra; k++) {
            g_slots[k] = nullptr;
            g_model[k] = Model{};
          }
        } else {
          gc_add_root(g_slots + kSlots, kExtra * sizeof(void*));
        }
        g_extra_registered = !g_extra_registered;
        break;
      case 9:
        check_all();
        break;
      case 10: {
        if (gc_alloc(SIZE_MAX - r.u8(), nullptr) != nullptr) abort();
        if (gc_alloc_noscan((size_t{1} << 47) + r.u8()) != nullptr) abort();
        void* z = gc_alloc(0, nullptr);
        if (!z || gc_size(z) == 0) abort();
        break;
      }
      case 11: {
        int i = slot_index(r);
        uint32_t off = r.u16();
        if (g_model[i].kind == kNone) break;
        // Noscan objects under 16 bytes share tiny blocks: their base is the block's.
        char* p = static_cast<char*>(g_slots[i]);
        bool tiny = g_model[i].kind == kNoscan && g_model[i].size < 16;
        char* base = tiny ? static_cast<char*>(gc_base(p)) : p;
        if (!base) abort();
        size_t n = gc_size(base);
        if (gc_base(base + off % n) != base) abort();
        break;
      }
    }
  }
  check_all();
  // Leave an empty heap for the next input.
  for (int i = 0; i < kSlots + kExtra; i++) {
    g_slots[i] = nullptr;
    g_model[i] = Model{};
  }
  if (g_extra_registered) {
    gc_remove_root(g_slots + kSlots);
    g_extra_registered = false;
  }
  gc_set_percent(50);
  return 0;
}
