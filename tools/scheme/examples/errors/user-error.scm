;; The program raises its own error.
(define (safe-div a b)
  (if (= b 0)
      (error "safe-div: division by zero of" a)
      (/ a b)))
(display (safe-div 10 2))
(newline)
(safe-div 1 0)
