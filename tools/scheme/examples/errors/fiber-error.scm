;; An error inside a spawned fiber ends the whole program with its message.
(define f (spawn (lambda ()
  (vector-ref (make-vector 3 0) 5))))
(join f)
(display "not reached")
