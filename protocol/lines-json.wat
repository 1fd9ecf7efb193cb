;; The inside of a JSON array of strings, from lines joined by '\n', 16 bytes at a time:
;; `a\nb` becomes `a","b` (the caller adds `["` and `"]`). V8 (Node 20) escapes a string for
;; JSON one character at a time, and that with splitting the lines was a third of the agent's
;; main thread on busy logs; WebAssembly's 128-bit SIMD does the same work several times faster
;; (docs/performance.md). Compiled by scripts/build-wasm.ts into lines-json-wasm.ts.
(module
  (memory (export "memory") 1)

  ;; Reads `length` bytes at `input` and writes the result at `output`, which must have room
  ;; for 3 * length + 16 bytes (a whole vector is stored before it is known how much of it
  ;; counts). Returns the result's length, or -1 when a byte is not ASCII or JSON would escape
  ;; it (a control character other than '\n', '"' or '\'): the caller then uses JSON.stringify.
  (func (export "linesJson") (param $input i32) (param $length i32) (param $output i32) (result i32)
    (local $in i32) (local $out i32) (local $chunk v128) (local $special i32) (local $at i32)
    (local $byte i32)
    (block $vectors_done
      (loop $vectors
        (br_if $vectors_done
          (i32.gt_u (i32.add (local.get $in) (i32.const 16)) (local.get $length)))
        (local.set $chunk (v128.load (i32.add (local.get $input) (local.get $in))))
        (v128.store (i32.add (local.get $output) (local.get $out)) (local.get $chunk))
        ;; A signed compare with 32 flags both the control characters and every byte of 128
        ;; or more (negative as signed bytes).
        (local.set $special
          (i8x16.bitmask
            (v128.or
              (v128.or
                (i8x16.lt_s (local.get $chunk) (v128.const i8x16 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32))
                (i8x16.eq (local.get $chunk) (v128.const i8x16 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34)))
              (i8x16.eq (local.get $chunk) (v128.const i8x16 92 92 92 92 92 92 92 92 92 92 92 92 92 92 92 92)))))
        (if (i32.eqz (local.get $special))
          (then
            (local.set $in (i32.add (local.get $in) (i32.const 16)))
            (local.set $out (i32.add (local.get $out) (i32.const 16)))
            (br $vectors)))
        ;; The first special byte: a line end becomes `","`, anything else ends the fast path.
        ;; The bytes before it are already stored; the next vector starts right after it.
        (local.set $at (i32.ctz (local.get $special)))
        (if (i32.ne
              (i32.load8_u (i32.add (i32.add (local.get $input) (local.get $in)) (local.get $at)))
              (i32.const 10))
          (then (return (i32.const -1))))
        (local.set $out (i32.add (local.get $out) (local.get $at)))
        ;; `","` as a little-endian word; its fourth byte is overwritten by what follows.
        (i32.store (i32.add (local.get $output) (local.get $out)) (i32.const 0x00222c22))
        (local.set $out (i32.add (local.get $out) (i32.const 3)))
        (local.set $in (i32.add (local.get $in) (i32.add (local.get $at) (i32.const 1))))
        (br $vectors)))
    ;; The last 0 to 15 bytes, one at a time.
    (block $bytes_done
      (loop $bytes
        (br_if $bytes_done (i32.ge_u (local.get $in) (local.get $length)))
        (local.set $byte (i32.load8_u (i32.add (local.get $input) (local.get $in))))
        (if (i32.eq (local.get $byte) (i32.const 10))
          (then
            (i32.store (i32.add (local.get $output) (local.get $out)) (i32.const 0x00222c22))
            (local.set $out (i32.add (local.get $out) (i32.const 3))))
          (else
            (if (i32.or
                  (i32.or (i32.lt_u (local.get $byte) (i32.const 32))
                          (i32.ge_u (local.get $byte) (i32.const 128)))
                  (i32.or (i32.eq (local.get $byte) (i32.const 34))
                          (i32.eq (local.get $byte) (i32.const 92))))
              (then (return (i32.const -1))))
            (i32.store8 (i32.add (local.get $output) (local.get $out)) (local.get $byte))
            (local.set $out (i32.add (local.get $out) (i32.const 1)))))
        (local.set $in (i32.add (local.get $in) (i32.const 1)))
        (br $bytes)))
    (local.get $out)))
