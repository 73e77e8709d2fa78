;; A closure-heavy workload: counters and accumulators that share state, function
;; composition, Church numerals, a message-passing "object" system, and a continuation-
;; passing loop. Every call allocates an environment frame; many frames outlive their call.

(define (make-counter)
  (let ((n 0))
    (lambda () (set! n (+ n 1)) n)))

(define (make-accumulator total)
  (lambda (x) (set! total (+ total x)) total))

(define (compose . fs)
  (if (null? fs)
      (lambda (x) x)
      (lambda (x) ((car fs) ((apply compose (cdr fs)) x)))))

(define (make-adder k) (lambda (x) (+ x k)))

;; Counters: 1000 closures, each called a different number of times.
(define counters
  (let build ((i 0) (acc '()))
    (if (= i 1000) acc (build (+ i 1) (cons (make-counter) acc)))))
(define total-calls
  (let loop ((cs counters) (k 1) (sum 0))
    (if (null? cs)
        sum
        (let call ((j 0) (last 0))
          (if (< j (modulo k 17))
              (call (+ j 1) ((car cs)))
              (loop (cdr cs) (+ k 1) (+ sum last)))))))
(display "counter calls: ") (display total-calls) (newline)

;; Accumulators share nothing; a pipeline of 50 composed adders.
(define acc (make-accumulator 100))
(for-each acc '(1 2 3 4 5))
(display "accumulated: ") (display (acc 0)) (newline)
(define add-1275 (apply compose (map make-adder (let up ((i 50) (l '())) (if (= i 0) l (up (- i 1) (cons i l)))))))
(display "composed adders: ") (display (add-1275 0)) (newline)

;; Church numerals.
(define zero (lambda (f) (lambda (x) x)))
(define (succ n) (lambda (f) (lambda (x) (f ((n f) x)))))
(define (plus m n) (lambda (f) (lambda (x) ((m f) ((n f) x)))))
(define (mult m n) (lambda (f) (m (n f))))
(define (church->int n) ((n (lambda (k) (+ k 1))) 0))
(define (int->church k) (if (= k 0) zero (succ (int->church (- k 1)))))
(display "church 12*34+5: ")
(display (church->int (plus (mult (int->church 12) (int->church 34)) (int->church 5))))
(newline)

;; Message passing: bank accounts as closures over their balance.
(define (make-account balance)
  (define (withdraw amount)
    (if (>= balance amount)
        (begin (set! balance (- balance amount)) balance)
        "insufficient funds"))
  (define (deposit amount) (set! balance (+ balance amount)) balance)
  (lambda (m . args)
    (cond ((eq? m 'withdraw) (apply withdraw args))
          ((eq? m 'deposit) (apply deposit args))
          ((eq? m 'balance) balance)
          (else (error "unknown request" m)))))
(define accounts (map make-account '(10 20 30 40 50)))
(for-each (lambda (a) (a 'deposit 100) (a 'withdraw 25)) accounts)
(display "balances: ") (display (map (lambda (a) (a 'balance)) accounts)) (newline)
(display "overdraft: ") (display ((car accounts) 'withdraw 1000)) (newline)

;; Continuation-passing sum of 1..200000: every step allocates a closure that the next
;; step calls in tail position.
(define (cps-sum n k)
  (if (= n 0)
      (k 0)
      (cps-sum (- n 1) (lambda (s) (k (+ s n))))))
(display "cps sum: ") (display (cps-sum 2000 (lambda (s) s))) (newline)
(define (sum-to n)
  (let loop ((i 0) (k (lambda (s) s)))
    (if (> i n) (k 0) (loop (+ i 1) (let ((i i) (k k)) (lambda (s) (+ i (k s))))))))
(display "closure chain: ") (display (sum-to 3000)) (newline)

;; Many short-lived closures: a million calls to fresh adders.
(define (churn n acc)
  (if (= n 0) acc (churn (- n 1) ((make-adder n) acc))))
(display "churn: ") (display (churn 300000 0)) (newline)
