;; Proper tail calls: each loop below runs a million iterations in constant stack. A
;; non-tail version of any of them would exhaust the stack (see errors/deep-recursion.scm).

(define (count-down n) (if (= n 0) 'done (count-down (- n 1))))
(display (count-down 1000000)) (newline)

(define (my-even? n) (if (= n 0) #t (my-odd? (- n 1))))
(define (my-odd? n) (if (= n 0) #f (my-even? (- n 1))))
(display (my-even? 1000001)) (newline)

(define (loop-cond n acc)
  (cond ((= n 0) acc)
        ((even? n) (loop-cond (- n 1) (+ acc 2)))
        (else (loop-cond (- n 1) (+ acc 1)))))
(display (loop-cond 1000000 0)) (newline)

(define (loop-and n) (and #t (or #f (if (= n 0) 'and-or-done (loop-and (- n 1))))))
(display (loop-and 1000000)) (newline)

(define (loop-let n) (let ((m (- n 1))) (let* ((k m)) (if (< k 0) 'let-done (begin (loop-let k))))))
(display (loop-let 1000000)) (newline)

(define (loop-when n) (when (> n 0) (loop-when (- n 1))))
(loop-when 1000000)
(display "when-done") (newline)

(display (let loop ((i 0) (acc 0)) (if (= i 1000000) acc (loop (+ i 1) (+ acc i))))) (newline)

(define (apply-loop n) (if (= n 0) 'apply-done (apply apply-loop (list (- n 1)))))
(display (apply-loop 10000)) (newline)
