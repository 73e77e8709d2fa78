;; Many fibers sharing a data structure. A shared vector of 64 lists (the "table") is
;; built once; 200 fibers each walk the whole table to compute a checksum, allocate
;; garbage of their own while doing so (so collections run while fibers are parked and
;; running), and store their result in their own slot of a shared results vector. The main
;; fiber joins them all and checks that every fiber saw the same table.

(define table-size 64)
(define fiber-count 200)

(define (iota n)
  (let loop ((i (- n 1)) (acc '()))
    (if (< i 0) acc (loop (- i 1) (cons i acc)))))

(define table (make-vector table-size '()))
(for-each (lambda (i) (vector-set! table i (map (lambda (j) (* i j)) (iota 100))))
          (iota table-size))

(define (table-checksum)
  (let loop ((i 0) (sum 0))
    (if (= i table-size)
        sum
        (loop (+ i 1) (+ sum (apply + (vector-ref table i)))))))

(define results (make-vector fiber-count #f))

(define (worker id)
  (lambda ()
    (let loop ((round 0) (garbage '()))
      (when (< round 3)
        (yield)
        (loop (+ round 1) (cons (make-vector 100 id) (map (lambda (x) (* x 2)) (iota 50))))))
    (let ((sum (table-checksum)))
      (vector-set! results id (list id sum))
      sum)))

(define fibers (map (lambda (id) (spawn (worker id))) (iota fiber-count)))
(define sums (map join fibers))

(display "fibers: ") (display (length fibers)) (newline)
(display "checksum: ") (display (car sums)) (newline)
(display "all equal: ")
(display (let loop ((s sums)) (or (null? s) (and (= (car s) (car sums)) (loop (cdr s))))))
(newline)
(display "every slot filled by its fiber: ")
(display (let loop ((i 0))
           (or (= i fiber-count)
               (and (equal? (vector-ref results i) (list i (car sums))) (loop (+ i 1))))))
(newline)

;; Fibers that spawn fibers: a parallel tree sum.
(define (psum lo hi)
  (if (< (- hi lo) 1000)
      (let loop ((i lo) (s 0)) (if (= i hi) s (loop (+ i 1) (+ s i))))
      (let* ((mid (quotient (+ lo hi) 2))
             (left (spawn (lambda () (psum lo mid))))
             (right (psum mid hi)))
        (+ (join left) right))))
(display "parallel sum: ") (display (psum 0 100000)) (newline)
(display "join twice: ") (let ((f (spawn (lambda () 'done)))) (join f) (display (join f))) (newline)
