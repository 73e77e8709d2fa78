;; Calling a number.
(define n 5)
(display (n 1))
