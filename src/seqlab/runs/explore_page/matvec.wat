;; matvec.wasm in text form: y (rows) = W (rows x cols, row-major) . x (cols), float32, cols a multiple of 4.
;; The explore page's step calls it for every W . h (seqlab/runs/explore_page/page.js, class Arena); W, x and y
;; live in the page's one memory (env.memory), 16-byte aligned, and are passed as byte offsets. Each row is
;; summed in four lanes (f32x4) and the lanes added as (l0 + l1) + (l2 + l3), the order page.js's plain
;; JavaScript path uses, so both engines give the same float32 result.
;; matvec.wasm holds exactly these instructions (tests/test_cell_copies.py runs it in node against numpy);
;; after an edit here, assemble it again (wat2wasm matvec.wat -o matvec.wasm) and rerun that test and
;; tests/test_explore_browser.py.
(module
  (import "env" "memory" (memory 1))
  (func (export "matvec") (param $w i32) (param $x i32) (param $y i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $c i32) (local $wp i32) (local $acc v128)
    (local.set $wp (local.get $w))
    (local.set $r (i32.const 0))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $acc (f32x4.splat (f32.const 0)))
        (local.set $c (i32.const 0))                                 ;; bytes into x
        (loop $column                                                ;; four columns at a time
          (local.set $acc
            (f32x4.add (local.get $acc)
              (f32x4.mul (v128.load (local.get $wp))
                         (v128.load (i32.add (local.get $x) (local.get $c))))))
          (local.set $wp (i32.add (local.get $wp) (i32.const 16)))
          (br_if $column
            (i32.lt_u (local.tee $c (i32.add (local.get $c) (i32.const 16)))
                      (i32.shl (local.get $cols) (i32.const 2)))))
        (f32.store (i32.add (local.get $y) (i32.shl (local.get $r) (i32.const 2)))
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
            (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))))
