//! Compile-fail tests: one misuse of `#[once]` per file in `tests/ui/`, with the compiler's
//! output in the `.stderr` beside it. Regenerate with `TRYBUILD=overwrite` and review.
//!
//! Every file calls its function from `main`: the original item is still emitted beside the
//! error, so the only error is the one about the misuse.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
