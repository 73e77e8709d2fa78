;; Runaway allocation: a list that grows without end. Run under a memory limit
;; (TRICOLOR_MEMLIMIT=64MiB), the runtime reports the exhausted limit and exits with status 1.
(define (grow acc n)
  (grow (cons (make-vector 16 n) acc) (+ n 1)))
(grow '() 0)
