//! Exit codes (docs/reference/exit-codes.md): the one place that turns an
//! outcome into a process status.

use ferry::ErrorClass;

/// Success (and `status`: fresh).
pub const OK: i32 = 0;
/// Error: I/O, target, lock.
pub const ERROR: i32 = 1;
/// Usage: bad arguments.
pub const USAGE: i32 = 2;
/// Refused by verification or trust; nothing changed.
pub const REFUSED: i32 = 3;
/// `status`: out of date.
pub const OUT_OF_DATE: i32 = 4;
/// `status`: extremely out of date.
pub const EXTREMELY_OUT_OF_DATE: i32 = 5;

/// The exit code of an error of `class`.
pub fn for_class(class: ErrorClass) -> i32 {
    match class {
        ErrorClass::Failure => ERROR,
        ErrorClass::Usage => USAGE,
        ErrorClass::Refused => REFUSED,
    }
}
