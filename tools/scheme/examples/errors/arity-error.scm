;; A procedure of two arguments called with three.
(define (add a b) (+ a b))
(display (add 1 2))
(newline)
(display
  (add 1 2 3))
