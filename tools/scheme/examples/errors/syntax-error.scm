;; A list that is never closed: reported at the line where it opens.
(display "before the error")
(newline)
(define (broken x)
  (if (> x 0)
      (display x)
