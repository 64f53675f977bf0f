//! Values exactly as written: the conversions a cell's JSON goes through on
//! its way to a warehouse column, each either exact or a refusal that says
//! why (`proto-spec/LOADER.md`, "Values arrive exactly as written"). Never a
//! rounding, a re-serialisation or a lossy cast that nobody sees.
//!
//! - [`timestamp`]: RFC 3339 into microseconds (offsets, leap days,
//!   fractions past microseconds truncated, impossible dates refused).
//! - [`decimal`]: a written number compared by exact value; which numbers
//!   a double holds.
//! - [`json_text`]: the text of a value inside an event as written, the
//!   json cell that carries it, and the equality of json values.

pub mod decimal;
pub mod json_text;
pub mod timestamp;

#[cfg(test)]
mod cases;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod roundtrip;
