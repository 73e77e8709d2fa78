/* The context switch: see context.h. Two routines per architecture, a few instructions each.
 *
 *   tricolor_ctx_switch(void** save_sp, void* new_sp)
 *     pushes the callee-saved registers on the current stack (the return address is already
 *     there, pushed by the call), stores the stack pointer in *save_sp, loads new_sp, pops the
 *     registers saved there and returns into the other context.
 *   tricolor_ctx_entry
 *     where a new context "returns" to the first time: calls start(a0, a1) with the values
 *     that ctx_make put in callee-saved register slots. start never returns.
 *
 * Only what the ABI makes callee-saved is saved (no signal mask, no system call, unlike
 * swapcontext); the floating-point control words (MXCSR, x87 CW, FPCR) are not saved, so a
 * fiber must not change them. */

#if defined(__x86_64__)

  .text
  .globl tricolor_ctx_switch
  .hidden tricolor_ctx_switch
  .type tricolor_ctx_switch, @function
  .p2align 4
tricolor_ctx_switch:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  /* Not ret: the return-stack predictor holds this context's caller, never the other's, so
   * a ret here is mispredicted on every switch. An indirect jump goes through the indirect
   * branch predictor, which learns the targets of a regular pattern of switches (raw
   * ping-pong switch: about a third of the time of ret on an AMD Zen 3). */
  popq %rcx
  jmpq *%rcx
  .cfi_endproc
  .size tricolor_ctx_switch, .-tricolor_ctx_switch

  .globl tricolor_ctx_entry
  .hidden tricolor_ctx_entry
  .type tricolor_ctx_entry, @function
  .p2align 4
tricolor_ctx_entry:
  .cfi_startproc
  .cfi_undefined rip  /* the outermost frame of a fiber: unwinders stop here */
  movq %r13, %rdi
  movq %r14, %rsi
  callq *%r12
  ud2
  .cfi_endproc
  .size tricolor_ctx_entry, .-tricolor_ctx_entry

#elif defined(__aarch64__)

  .text
  .globl tricolor_ctx_switch
  .hidden tricolor_ctx_switch
  .type tricolor_ctx_switch, %function
  .p2align 4
tricolor_ctx_switch:
  .cfi_startproc
  sub sp, sp, #160
  stp x19, x20, [sp, #0]
  stp x21, x22, [sp, #16]
  stp x23, x24, [sp, #32]
  stp x25, x26, [sp, #48]
  stp x27, x28, [sp, #64]
  stp x29, x30, [sp, #80]
  stp d8, d9, [sp, #96]
  stp d10, d11, [sp, #112]
  stp d12, d13, [sp, #128]
  stp d14, d15, [sp, #144]
  mov x9, sp
  str x9, [x0]
  mov sp, x1
  ldp x19, x20, [sp, #0]
  ldp x21, x22, [sp, #16]
  ldp x23, x24, [sp, #32]
  ldp x25, x26, [sp, #48]
  ldp x27, x28, [sp, #64]
  ldp x29, x30, [sp, #80]
  ldp d8, d9, [sp, #96]
  ldp d10, d11, [sp, #112]
  ldp d12, d13, [sp, #128]
  ldp d14, d15, [sp, #144]
  add sp, sp, #160
  ret
  .cfi_endproc
  .size tricolor_ctx_switch, .-tricolor_ctx_switch

  .globl tricolor_ctx_entry
  .hidden tricolor_ctx_entry
  .type tricolor_ctx_entry, %function
  .p2align 4
tricolor_ctx_entry:
  .cfi_startproc
  .cfi_undefined x30
  mov x0, x20
  mov x1, x21
  mov x29, xzr
  blr x19
  brk #0
  .cfi_endproc
  .size tricolor_ctx_entry, .-tricolor_ctx_entry

#else
#error "tricolor: the fiber context switch is implemented for x86-64 and aarch64"
#endif

  .section .note.GNU-stack,"",%progbits
