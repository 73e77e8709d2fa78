;; binary-trees (the Benchmarks Game program, after Hans Boehm's GCBench): build many
;; short-lived complete binary trees of growing depth beside one long-lived tree, and
;; count their nodes. Stresses allocation of small objects and the collector's throughput.
;; A tree is a pair of subtrees; a leaf is a pair of empty lists.
;;   scheme binary-trees.scm [max-depth]     (default 12; the classic benchmark uses 16..21)

(define (make-tree depth)
  (if (= depth 0)
      (cons '() '())
      (cons (make-tree (- depth 1)) (make-tree (- depth 1)))))

(define (check-tree tree)
  (if (null? (car tree))
      1
      (+ 1 (check-tree (car tree)) (check-tree (cdr tree)))))

(define min-depth 4)
(define max-depth
  (let ((args (command-line)))
    (if (and (pair? args) (pair? (cdr args))) (string->number (cadr args)) 12)))

(define (report label depth check)
  (display label) (display " of depth ") (display depth)
  (display "\t check: ") (display check) (newline))

(let ((stretch (+ max-depth 1)))
  (report "stretch tree" stretch (check-tree (make-tree stretch))))

(define long-lived (make-tree max-depth))

(let loop ((depth min-depth))
  (when (<= depth max-depth)
    (let ((iterations (expt 2 (+ (- max-depth depth) min-depth))))
      (let count ((i 0) (check 0))
        (if (< i iterations)
            (count (+ i 1) (+ check (check-tree (make-tree depth))))
            (begin
              (display iterations) (display "\t trees")
              (report "" depth check)))))
    (loop (+ depth 2))))

(report "long lived tree" max-depth (check-tree long-lived))
