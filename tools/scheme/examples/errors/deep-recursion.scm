;; A recursion that is not a tail call, ten million calls deep: the stack budget runs out
;; and the interpreter says so instead of crashing.
(define (sum-to n)
  (if (= n 0)
      0
      (+ n (sum-to (- n 1)))))
(display (sum-to 100))
(newline)
(display (sum-to 10000000))
