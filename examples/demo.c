/* The tricolor demo: what a language runtime's heap goes through, at a glance.
 *
 * A long-lived structure (a 2^16-bucket hash table of records, about 40 MiB) persists for
 * the whole run while 64 fibers on every processor build and discard binary trees, look
 * records up and replace some of them (gc_write_ptr into old objects: the write barrier
 * at work). Collection runs concurrently: the gctrace line of each cycle goes to stderr,
 * a heap-trace dump is written, and at the end a summary is printed with the path of the
 * report that tools/heaptrace/report.py makes from the dump.
 *
 *   demo [seconds] [trace-path]     (defaults: 6 s, demo-trace.jsonl)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tricolor/fiber.h"
#include "tricolor/gc.h"

typedef struct Node {
  struct Node* left;
  struct Node* right;
  int64_t value;
} Node;

typedef struct Record {
  struct Record* next; /* bucket chain */
  char* name;          /* noscan string */
  Node* tree;          /* a small tree owned by the record */
  uint64_t key;
  uint64_t check;      /* key * golden ratio: verified on every lookup */
} Record;

enum { kBuckets = 1 << 16, kRecords = 200000, kFibers = 64 };

static const gc_type* node_type;
static const gc_type* record_type;
static Record** table; /* a root: the long-lived structure */
static double g_seconds = 6;
static uint64_t g_start_ns;
static uint64_t g_trees, g_nodes, g_lookups, g_replaced, g_errors; /* per-fiber sums */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

static Node* make_tree(int depth, uint64_t* count) {
  Node* n = gc_alloc(sizeof(Node), node_type);
  (*count)++;
  n->value = depth;
  if (depth > 0) {
    gc_write_ptr(&n->left, make_tree(depth - 1, count));
    gc_write_ptr(&n->right, make_tree(depth - 1, count));
  }
  return n;
}

static int64_t check_tree(const Node* n) {
  return n->left ? 1 + check_tree(n->left) + check_tree(n->right) : 1;
}

static Record* new_record(uint64_t key) {
  Record* r = gc_alloc(sizeof(Record), record_type);
  char* name = gc_alloc_noscan(24);
  snprintf(name, 24, "rec-%llu", (unsigned long long)key);
  r->key = key;
  r->check = key * 0x9e3779b97f4a7c15ull;
  gc_write_ptr(&r->name, name);
  uint64_t unused = 0;
  gc_write_ptr(&r->tree, make_tree(2, &unused));
  return r;
}

static void table_insert(Record* r) {
  Record** slot = &table[mix(r->key) % kBuckets];
  gc_write_ptr(&r->next, *slot);
  gc_write_ptr(slot, r);
}

static Record* table_find(uint64_t key) {
  for (Record* r = table[mix(key) % kBuckets]; r; r = r->next)
    if (r->key == key) return r;
  return NULL;
}

/* Replaces the record for `key` in its chain by a fresh one: the old record becomes garbage
 * while other fibers may still be walking past it. */
static void table_replace(uint64_t key) {
  Record** prev = &table[mix(key) % kBuckets];
  for (Record* r = *prev; r; prev = &r->next, r = r->next) {
    if (r->key != key) continue;
    Record* fresh = new_record(key);
    gc_write_ptr(&fresh->next, r->next);
    gc_write_ptr(prev, fresh);
    return;
  }
}

typedef struct Worker {
  int id;
  uint64_t trees, nodes, lookups, replaced, errors;
} Worker;

static void worker(void* arg) {
  Worker* w = arg;
  uint64_t rng = mix((uint64_t)w->id + 1);
  uint64_t deadline = g_start_ns + (uint64_t)(g_seconds * 1e9);
  while (now_ns() < deadline) {
    /* Short-lived garbage: a tree of depth 8..14, checked, then dropped. */
    int depth = 8 + (int)(rng % 7);
    uint64_t n = 0;
    Node* t = make_tree(depth, &n);
    if (check_tree(t) != (int64_t)n) w->errors++;
    w->trees++;
    w->nodes += n;
    /* The long-lived structure: lookups, and a few replacements. */
    for (int i = 0; i < 64; i++) {
      rng = mix(rng);
      uint64_t key = rng % kRecords;
      Record* r = table_find(key);
      w->lookups++;
      if (!r || r->check != key * 0x9e3779b97f4a7c15ull || check_tree(r->tree) != 7) w->errors++;
      if (i % 16 == 0) {
        table_replace(key);
        w->replaced++;
      }
    }
    gc_yield();
  }
}

static void demo_main(void* arg) {
  (void)arg;
  for (uint64_t k = 0; k < kRecords; k++) table_insert(new_record(k));
  Worker ws[kFibers];
  gc_fiber* fs[kFibers];
  for (int i = 0; i < kFibers; i++) {
    memset(&ws[i], 0, sizeof ws[i]);
    ws[i].id = i;
    fs[i] = gc_go(worker, &ws[i]);
  }
  for (int i = 0; i < kFibers; i++) {
    gc_join(fs[i]);
    g_trees += ws[i].trees;
    g_nodes += ws[i].nodes;
    g_lookups += ws[i].lookups;
    g_replaced += ws[i].replaced;
    g_errors += ws[i].errors;
  }
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  if (argc > 1) g_seconds = atof(argv[1]);
  const char* trace = argc > 2 ? argv[2] : "demo-trace.jsonl";
  if (g_seconds <= 0) {
    fprintf(stderr, "usage: demo [seconds] [trace-path]\n");
    return 2;
  }
  gc_options o;
  gc_options_default(&o); /* TRICOLOR_* environment variables still apply */
  o.gctrace = 1;
  o.heap_trace = trace;
  if (gc_init(&o) != 0) return 1;

  size_t node_offs[] = {offsetof(Node, left), offsetof(Node, right)};
  node_type = gc_type_new("Node", sizeof(Node), node_offs, 2);
  size_t rec_offs[] = {offsetof(Record, next), offsetof(Record, name), offsetof(Record, tree)};
  record_type = gc_type_new("Record", sizeof(Record), rec_offs, 3);
  table = gc_alloc(kBuckets * sizeof(Record*), NULL);
  gc_add_root(&table, sizeof table);

  fprintf(stderr, "demo: %d fibers for %.0f s beside a table of %d records; one gctrace line per "
                  "cycle follows (fields: see README.md)\n", kFibers, g_seconds, kRecords);
  g_start_ns = now_ns();
  if (gc_run(demo_main, NULL) != 0) return 1;
  double wall = (double)(now_ns() - g_start_ns) / 1e9;

  /* Every record must still be there, intact. */
  uint64_t found = 0;
  for (uint64_t k = 0; k < kRecords; k++) {
    Record* r = table_find(k);
    found += r && r->check == k * 0x9e3779b97f4a7c15ull;
  }
  gc_stats s;
  gc_read_stats(&s);
  uint32_t n = s.num_gc < GC_PAUSE_RING ? s.num_gc : GC_PAUSE_RING;
  uint64_t pauses[GC_PAUSE_RING];
  for (uint32_t i = 0; i < n; i++) pauses[i] = s.pause_ns[i];
  qsort(pauses, n, sizeof pauses[0], cmp_u64);
  uint64_t p50 = n ? pauses[n / 2] : 0, p99 = n ? pauses[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] : 0;

  printf("\n== tricolor demo summary ==\n");
  printf("run:        %.1f s, %d fibers on %ld procs\n", wall, kFibers,
         o.procs ? (long)o.procs : sysconf(_SC_NPROCESSORS_ONLN)); /* gc_init's default */
  printf("work:       %llu trees (%llu nodes) built and dropped, %llu lookups, %llu records "
         "replaced\n", (unsigned long long)g_trees, (unsigned long long)g_nodes,
         (unsigned long long)g_lookups, (unsigned long long)g_replaced);
  printf("allocated:  %.0f MiB in %llu objects (%.0f MiB/s)\n", s.total_alloc / 1048576.0,
         (unsigned long long)s.mallocs, s.total_alloc / 1048576.0 / wall);
  printf("heap:       %.1f MiB live after the last mark, %.1f MiB in use, %.1f MiB from the OS\n",
         s.heap_marked / 1048576.0, s.heap_inuse / 1048576.0, s.heap_sys / 1048576.0);
  printf("collector:  %u cycles, pauses (2 per cycle, summed) p50 %.1f us, p99 %.1f us, max "
         "%.1f us; GC CPU %.1f%%\n", s.num_gc, p50 / 1e3, p99 / 1e3, s.pause_max_ns / 1e3,
         s.gc_cpu_fraction * 100);
  printf("integrity:  %llu of %d records intact, %llu errors seen by the fibers\n",
         (unsigned long long)found, kRecords, (unsigned long long)g_errors);
  printf("heap trace: %s\n", trace);
  gc_remove_root(&table);
  return found == kRecords && g_errors == 0 ? 0 : 1;
}
