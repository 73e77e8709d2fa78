;; A misspelt name.
(define (square x) (* x x))
(display (square 4))
(newline)
(display (sqaure 5))
