/* What the library writes to stderr during a few calls, for tests that check a misuse's
 * message: fd 2 goes to a temporary file between capture_begin and capture_end, and the
 * text is copied back to the real stderr afterwards (so the test's log still shows it).
 * Compiles as C11 and as C++. Not thread-safe: one capture at a time, and whatever another
 * thread writes meanwhile lands in it too. */
#ifndef TRICOLOR_TEST_CAPTURE_H_
#define TRICOLOR_TEST_CAPTURE_H_

#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct capture {
  int saved_fd; /* the real stderr */
  FILE* file;   /* where fd 2 points meanwhile */
} capture;

static inline int capture_begin(capture* c) {
  fflush(stderr);
  c->file = tmpfile();
  c->saved_fd = dup(2);
  if (!c->file || c->saved_fd < 0 || dup2(fileno(c->file), 2) < 0) return -1;
  return 0;
}

/* Ends the capture; copies what was written (NUL-terminated, cut to size - 1) into buf. */
static inline const char* capture_end(capture* c, char* buf, size_t size) {
  fflush(stderr);
  dup2(c->saved_fd, 2);
  close(c->saved_fd);
  size_t n = 0;
  if (c->file) {
    rewind(c->file);
    n = fread(buf, 1, size - 1, c->file);
    fclose(c->file);
  }
  buf[n] = '\0';
  fputs(buf, stderr);
  return buf;
}

#endif /* TRICOLOR_TEST_CAPTURE_H_ */
