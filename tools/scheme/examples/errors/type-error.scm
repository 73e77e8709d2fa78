;; car of a number, two calls deep.
(define (first-of xs) (car xs))
(define (head-of-head xs)
  (first-of (first-of xs)))
(display (head-of-head '((1 2) 3)))
(newline)
(display (head-of-head '(7 8)))
