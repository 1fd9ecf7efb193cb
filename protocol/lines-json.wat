;; The inside of a JSON array of strings, from lines joined by '\n', 16 bytes at a time:
;; `a\nb` becomes `a","b` (the caller adds `["` and `"]`), escaped exactly as V8's JSON.stringify
;; escapes: `\"`, `\\`, `\b` `\t` `\f` `\r`, and `\u00xx` for the other control characters. V8 (Node
;; 20) escapes a string for JSON one character at a time, and that with splitting the lines was a
;; third of the agent's main thread on busy logs; WebAssembly's 128-bit SIMD does the same work
;; several times faster (docs/performance.md). Compiled by scripts/build-wasm.ts into
;; lines-json-wasm.ts.
(module
  (memory (export "memory") 1)
  ;; How many line ends the last call found.
  (global $line_ends (export "lineEnds") (mut i32) (i32.const 0))

  ;; Writes what `byte` (a control character, '"' or '\') becomes at `at`; returns its length.
  (func $escape (param $byte i32) (param $at i32) (result i32)
    (if (i32.or (i32.eq (local.get $byte) (i32.const 34)) (i32.eq (local.get $byte) (i32.const 92)))
      (then
        (i32.store8 (local.get $at) (i32.const 92))
        (i32.store8 offset=1 (local.get $at) (local.get $byte))
        (return (i32.const 2))))
    ;; \b \t, then \f \r: the short forms JSON.stringify uses.
    (if (i32.eq (local.get $byte) (i32.const 8))
      (then (i32.store16 (local.get $at) (i32.const 0x625c)) (return (i32.const 2))))
    (if (i32.eq (local.get $byte) (i32.const 9))
      (then (i32.store16 (local.get $at) (i32.const 0x745c)) (return (i32.const 2))))
    (if (i32.eq (local.get $byte) (i32.const 12))
      (then (i32.store16 (local.get $at) (i32.const 0x665c)) (return (i32.const 2))))
    (if (i32.eq (local.get $byte) (i32.const 13))
      (then (i32.store16 (local.get $at) (i32.const 0x725c)) (return (i32.const 2))))
    ;; `\u00` then two lowercase hex digits; the first is 0 or 1, as the byte is below 32.
    (i32.store (local.get $at) (i32.const 0x3030755c))
    (i32.store8 offset=4 (local.get $at)
      (i32.add (i32.const 48) (i32.shr_u (local.get $byte) (i32.const 4))))
    (i32.store8 offset=5 (local.get $at)
      (i32.add
        (i32.and (local.get $byte) (i32.const 15))
        (select (i32.const 87) (i32.const 48)
          (i32.ge_u (i32.and (local.get $byte) (i32.const 15)) (i32.const 10)))))
    (i32.const 6))

  ;; Reads `length` bytes at `input` and writes the result at `output`, which must have room for
  ;; 6 * length + 16 bytes (a whole vector is stored before it is known how much of it counts).
  ;; Returns the result's length, or -1 when a byte is not ASCII: the caller then uses
  ;; JSON.stringify. Sets `lineEnds`.
  (func (export "linesJson") (param $input i32) (param $length i32) (param $output i32) (result i32)
    (local $in i32) (local $out i32) (local $chunk v128) (local $special i32) (local $at i32)
    (local $byte i32) (local $ends i32)
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
        ;; The first special byte: the bytes before it are already stored; it is written in its
        ;; place, and the next vector starts right after it.
        (local.set $at (i32.ctz (local.get $special)))
        (local.set $byte
          (i32.load8_u (i32.add (i32.add (local.get $input) (local.get $in)) (local.get $at))))
        (local.set $out (i32.add (local.get $out) (local.get $at)))
        (local.set $in (i32.add (local.get $in) (i32.add (local.get $at) (i32.const 1))))
        (if (i32.eq (local.get $byte) (i32.const 10))
          (then
            ;; `","` as a little-endian word; its fourth byte is overwritten by what follows.
            (i32.store (i32.add (local.get $output) (local.get $out)) (i32.const 0x00222c22))
            (local.set $out (i32.add (local.get $out) (i32.const 3)))
            (local.set $ends (i32.add (local.get $ends) (i32.const 1)))
            (br $vectors)))
        (if (i32.ge_u (local.get $byte) (i32.const 128)) (then (return (i32.const -1))))
        (local.set $out
          (i32.add (local.get $out)
            (call $escape (local.get $byte) (i32.add (local.get $output) (local.get $out)))))
        (br $vectors)))
    ;; The last 0 to 15 bytes, one at a time.
    (block $bytes_done
      (loop $bytes
        (br_if $bytes_done (i32.ge_u (local.get $in) (local.get $length)))
        (local.set $byte (i32.load8_u (i32.add (local.get $input) (local.get $in))))
        (local.set $in (i32.add (local.get $in) (i32.const 1)))
        (if (i32.eq (local.get $byte) (i32.const 10))
          (then
            (i32.store (i32.add (local.get $output) (local.get $out)) (i32.const 0x00222c22))
            (local.set $out (i32.add (local.get $out) (i32.const 3)))
            (local.set $ends (i32.add (local.get $ends) (i32.const 1)))
            (br $bytes)))
        (if (i32.ge_u (local.get $byte) (i32.const 128)) (then (return (i32.const -1))))
        (if (i32.or
              (i32.lt_u (local.get $byte) (i32.const 32))
              (i32.or (i32.eq (local.get $byte) (i32.const 34)) (i32.eq (local.get $byte) (i32.const 92))))
          (then
            (local.set $out
              (i32.add (local.get $out)
                (call $escape (local.get $byte) (i32.add (local.get $output) (local.get $out)))))
            (br $bytes)))
        (i32.store8 (i32.add (local.get $output) (local.get $out)) (local.get $byte))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (br $bytes)))
    (global.set $line_ends (local.get $ends))
    (local.get $out)))
